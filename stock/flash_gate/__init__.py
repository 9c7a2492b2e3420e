"""The flash-sale gate: Redis admits buyers of a hot stock level before the database.

While a level's gate is on, Redis holds one token per available unit. A purchase or a
reservation takes its units' tokens first (``admit``); a buyer who finds none gets the
usual refusal without a database query, and once a process has seen the level sold out
it refuses the next buyers without asking Redis either, for a moment. An admitted buyer
goes on to the normal guarded change, which stays the only judge: if it refuses, the
tokens go back (``Admission.refund``).

The tokens never exceed what the database has available: an admission holds its units
until its change has committed, and every committed change tells the gate its new
values (``heard_of_changes``, from ``stock_changed``), newer versions only. The
reconciler (beat, and after Redis failed or lost its keys) reseeds them from the
database. Redis down: the gate fails open and the database decides, as without a gate.

- ``tokens``: the state in Redis and its Lua scripts;
- ``process``: what each process knows without asking (gated levels, sold-out flags);
- ``admission``: what the stock services call;
- ``services``: switching gates, reseeding, their state for the API and the admin.
"""

from .admission import Admission, admit, heard_of_changes, settled

__all__ = ["Admission", "admit", "heard_of_changes", "settled"]
