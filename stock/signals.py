"""Signals the stock services send after their transaction has committed."""

from django.dispatch import Signal

# Sent once per committed stock operation with
#   kind:   the MovementKind of the operation (a transfer sends transfer_out), or
#           None for a change that is no movement (a new reorder point)
#   levels: the StockLevel rows it changed, with their values after the change
#   reservations: the Reservations a reserve made, or a commit, release or expiry ended
# Receivers refresh caches and raise alerts; they must not write stock themselves.
stock_changed = Signal()

# Sent once a set-based seeding (stock_seed_levels) has committed, with
#   store_ids, product_ids: the pairs of their cross product now have levels
# It carries no levels: there may be millions.
stock_levels_seeded = Signal()
