"""Puts a stream's heard events back in ``seq`` order.

Each commit publishes its events after it commits, so two writers of one store may
publish in the opposite order of their commits: event 6 is heard a few milliseconds
before event 5. Reading the log at each such jump cost every open stream of the store a
database query per out-of-order publish, which under many concurrent writers was most of
what the events process did. A stream keeps what it heard past a gap here instead, and
reads the log only when the gap has not filled after ``EVENTS_STREAM_GAP_SECONDS`` (a
publish really lost) or when it is told it missed events.
"""

from .hub import Heard


class InOrder:
    """The frames of events after ``last``, released in ``seq`` order, each once."""

    def __init__(self, last: int):
        self.last = last
        self._ahead: dict[int, bytes] = {}

    def add(self, heard: Heard) -> None:
        if heard.seq > self.last:
            self._ahead[heard.seq] = heard.frame

    def take(self) -> list[bytes]:
        """The frames that follow ``last`` with no gap; ``last`` moves past them."""
        frames = []
        while (frame := self._ahead.pop(self.last + 1, None)) is not None:
            frames.append(frame)
            self.last += 1
        return frames

    @property
    def waiting(self) -> bool:
        """Events were heard past a gap: the events in between are still to come."""
        return bool(self._ahead)

    def sent_up_to(self, seq: int) -> None:
        """Events up to ``seq`` went out otherwise (read from the log)."""
        if seq > self.last:
            self.last = seq
            self._ahead = {key: frame for key, frame in self._ahead.items() if key > seq}
