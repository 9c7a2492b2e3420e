"""Read replicas: which database alias serves a read, and how far each replica lags.

The rule (README, "Read replicas"): every write, every read inside a transaction, every
read that decides a sale and every read in a request that wrote goes to the primary;
other reads may go to a replica that has replayed the client's last write.
"""
