"""Signals of the event log."""

from django.dispatch import Signal

# Sent once the transaction that wrote them has committed, with
#   events: the StockEvents it wrote (every store's, each with its ``seq``), in seq order
#           per store
# Receivers fan them out (the live stream's Redis channel, webhook deliveries); they must
# not fail the change, which has committed: ``stock.services`` sends it robustly.
stock_events_committed = Signal()
