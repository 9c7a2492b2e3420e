"""``InOrder``: what a stream heard goes out in seq order, each event once."""

from events.stream.hub import Heard
from events.stream.ordering import InOrder


def heard(seq: int) -> Heard:
    return Heard(seq, b"frame %d" % seq)


def test_events_heard_past_a_gap_wait_for_the_ones_before_them():
    order = InOrder(last=4)
    order.add(heard(6))
    order.add(heard(7))

    assert order.take() == []
    assert order.waiting

    order.add(heard(5))

    assert order.take() == [b"frame 5", b"frame 6", b"frame 7"]
    assert (order.last, order.waiting) == (7, False)


def test_what_was_sent_already_is_not_sent_again():
    order = InOrder(last=4)
    order.add(heard(3))
    order.add(heard(4))
    order.add(heard(5))
    order.add(heard(5))

    assert order.take() == [b"frame 5"]


def test_the_log_fills_a_gap_and_what_waited_past_it_follows():
    order = InOrder(last=4)
    order.add(heard(6))
    order.add(heard(9))

    order.sent_up_to(7)  # the log had 5..7

    assert order.take() == []
    assert order.waiting  # 9 waits for 8
    order.sent_up_to(9)
    assert (order.take(), order.waiting, order.last) == ([], False, 9)


def test_a_log_read_behind_what_was_sent_changes_nothing():
    order = InOrder(last=5)
    order.sent_up_to(3)

    assert order.last == 5
