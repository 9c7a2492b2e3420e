"""Webhooks: a store's event log POSTed to the URLs its managers subscribe, signed the
Standard Webhooks way, at least once (see ``services``)."""
