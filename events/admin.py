from .webhooks import admin  # noqa: F401 - the webhooks' pages
