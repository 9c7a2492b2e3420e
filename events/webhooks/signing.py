"""Standard Webhooks signing (https://www.standardwebhooks.com/), by the
``standardwebhooks`` library that receivers use to verify.

A secret is ``whsec_`` and the base64 of 32 random bytes; the HMAC-SHA256 key is those
bytes. ``webhook-signature`` holds one ``v1,<base64>`` per secret, space-separated:
during a rotation the previous secret signs too, so a receiver that still knows only the
old one keeps verifying until it has switched.
"""

import base64
import json
import secrets
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def message_id(payload: dict) -> str:
    """The Standard Webhooks message id of an event's delivery (``<store>:<seq>``): the
    same for every attempt, so receivers deduplicate by it."""
    return f"{payload['store']}:{payload['seq']}"


def body_of(payload: dict) -> str:
    """The JSON body sent (and signed): compact, keys in a fixed order."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


def headers_for(
    *, message_id: str, body: str, at: datetime, secrets_signing: list[str]
) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body`` sent at ``at`` (UTC)."""
    signatures = [
        Webhook(secret).sign(msg_id=message_id, timestamp=at, data=body)
        for secret in secrets_signing
    ]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
