"""WAL positions (PostgreSQL's ``pg_lsn``, written ``16/B374D848``) as consistency tokens.

A token is the primary's WAL position after a client's write committed; a replica that
has replayed up to it has the write. Positions compare as the 64-bit numbers they are.
"""

import re

LSN = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")

# Beyond any position a replica reaches: what a token that cannot be read stands for,
# so that its request is answered by the primary (never staler than the client's write).
UNREACHABLE = 1 << 64


def position(text: str | None) -> int | None:
    """The position ``text`` names; None for no text; ``UNREACHABLE`` for text that is no
    position (a client's garbled header must not buy it a stale answer)."""
    if text is None:
        return None
    match = LSN.fullmatch(text.strip())
    if match is None:
        return UNREACHABLE
    return (int(match[1], 16) << 32) | int(match[2], 16)


def token(position: int) -> str:
    """``position`` as PostgreSQL writes it, the form of ``X-Consistency-Token``."""
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"
