"""``InOrder``: what a stream heard goes out in seq order, each event once, and a gap
is given up on (the log read) only when it has not moved for its patience."""

from events.stream.hub import Heard
from events.stream.ordering import InOrder

PATIENCE = 0.5


def heard(seq: int) -> Heard:
    return Heard(seq, b"frame %d" % seq)


def in_order(last: int) -> InOrder:
    return InOrder(last, patience=PATIENCE)


def test_events_heard_past_a_gap_wait_for_the_ones_before_them():
    order = in_order(last=4)
    order.add(heard(6))
    order.add(heard(7))

    assert order.take(now=0) == []
    assert order.deadline() == PATIENCE

    order.add(heard(5))

    assert order.take(now=0.1) == [b"frame 5", b"frame 6", b"frame 7"]
    assert (order.last, order.deadline()) == (7, None)


def test_what_was_sent_already_is_not_sent_again():
    order = in_order(last=4)
    order.add(heard(3))
    order.add(heard(4))
    order.add(heard(5))
    order.add(heard(5))

    assert order.take(now=0) == [b"frame 5"]


def test_a_gap_that_opens_as_the_last_fills_is_timed_from_then():
    """Steady writers: each gap fills within moments and another opens. Timed from the
    first, the stream would read the log every patience for events on their way."""
    order = in_order(last=4)
    order.add(heard(6))
    order.take(now=0)
    order.add(heard(5))
    order.add(heard(8))

    assert order.take(now=0.4) == [b"frame 5", b"frame 6"]
    assert order.deadline() == 0.4 + PATIENCE
    assert not order.overdue(now=0.6)


def test_a_gap_that_does_not_move_keeps_its_time():
    order = in_order(last=4)
    order.add(heard(6))
    order.take(now=0)
    order.add(heard(8))

    assert order.take(now=0.3) == []
    assert order.deadline() == PATIENCE
    assert order.overdue(now=PATIENCE)


def test_the_log_fills_a_gap_and_what_waited_in_it_is_not_sent_again():
    order = in_order(last=4)
    order.add(heard(6))
    order.take(now=0)

    order.sent_up_to(7)  # a page of the log: 5..7
    order.log_read()

    assert (order.last, order.deadline()) == (7, None)
    order.add(heard(8))
    assert order.take(now=1) == [b"frame 8"]


def test_what_the_log_did_not_hold_is_dropped_not_sent_later_as_another_event():
    """Heard, yet not in the log read after it (a standby that lost commits it had
    published): it must not go out as seq 10 once the real 10 comes."""
    order = in_order(last=2)
    order.add(Heard(10, b"not of this log"))
    order.take(now=0)

    order.log_read()  # the log ends at 2

    assert order.deadline() is None
    for seq in range(3, 10):
        order.add(heard(seq))
    assert order.take(now=1) == [b"frame %d" % seq for seq in range(3, 10)]
    order.add(heard(10))
    assert order.take(now=2) == [b"frame 10"]


def test_a_log_read_behind_what_was_sent_changes_nothing():
    order = in_order(last=5)
    order.sent_up_to(3)

    assert order.last == 5
