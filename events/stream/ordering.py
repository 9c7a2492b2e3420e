"""Puts a stream's heard events back in ``seq`` order.

Each commit publishes its events after it commits, so two writers of one store may
publish in the opposite order of their commits: event 6 is heard a few milliseconds
before event 5. Reading the log at each such jump cost every open stream of the store a
database query per out-of-order publish, which under many concurrent writers was most of
what the events process did. A stream keeps what it heard past a gap here instead, and
reads the log only when the gap has not moved for ``patience`` seconds
(EVENTS_STREAM_GAP_SECONDS: a publish really lost) or when it is told it missed events.
"""

from .hub import Heard


class InOrder:
    """The frames of events after ``last``, released in ``seq`` order, each once; and
    when the stream should stop waiting for a gap to fill. Times are the caller's clock
    (the event loop's)."""

    def __init__(self, last: int, patience: float):
        self.last = last
        self.patience = patience
        self._ahead: dict[int, bytes] = {}
        self._gap_since: float | None = None

    def add(self, heard: Heard) -> None:
        if heard.seq > self.last:
            self._ahead[heard.seq] = heard.frame

    def take(self, now: float) -> list[bytes]:
        """The frames that follow ``last`` with no gap; ``last`` moves past them. A gap
        left open is timed from ``now`` if these filled the one before it (under steady
        writes a new gap opens as the last fills, and each gets its full patience), and
        keeps its time otherwise."""
        frames = []
        while (frame := self._ahead.pop(self.last + 1, None)) is not None:
            frames.append(frame)
            self.last += 1
        if not self._ahead:
            self._gap_since = None
        elif frames or self._gap_since is None:
            self._gap_since = now
        return frames

    def deadline(self) -> float | None:
        """When the open gap is given up on and the log read; None: no gap is open."""
        return None if self._gap_since is None else self._gap_since + self.patience

    def overdue(self, now: float) -> bool:
        deadline = self.deadline()
        return deadline is not None and now >= deadline

    def sent_up_to(self, seq: int) -> None:
        """Events up to ``seq`` went out otherwise (a page read from the log)."""
        if seq > self.last:
            self.last = seq
            self._ahead = {key: frame for key, frame in self._ahead.items() if key > seq}

    def log_read(self) -> None:
        """The stream read the log to its end. Everything heard before was published
        after its commit, so the log held it: what still waits is no event of this log
        (a standby that lost commits it had published, another deployment on the same
        channel), and is dropped rather than sent one day in place of the real event."""
        self._ahead.clear()
        self._gap_since = None
