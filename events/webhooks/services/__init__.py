"""Writes of the webhooks: subscriptions (``subscriptions``), the delivery of the event
log to them (``delivery``), and the messages that have a worker do it (``messages``)."""

from .delivery import delivery_redeliver, subscription_deliver
from .messages import send_deliver, send_dispatch, stores_dispatch, webhooks_sweep
from .subscriptions import (
    signing_secrets,
    subscription_create,
    subscription_delete,
    subscription_rotate_secret,
    subscription_update,
)

__all__ = [
    "delivery_redeliver",
    "send_deliver",
    "send_dispatch",
    "signing_secrets",
    "stores_dispatch",
    "subscription_create",
    "subscription_delete",
    "subscription_deliver",
    "subscription_rotate_secret",
    "subscription_update",
    "webhooks_sweep",
]
