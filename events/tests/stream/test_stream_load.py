"""500 streams open on one events process while another process changes stock through
``stock.services``: every client gets every event, once and in order."""

import asyncio

import pytest

from tests.factories import ProductFactory

from .conftest import NEEDS_REDIS, finish, readers, seqs, start_writer, stream_client

pytestmark = [NEEDS_REDIS, pytest.mark.postgresql("the events process reads the test database")]

STREAMS = 500


def test_500_open_streams_each_get_every_event_in_order(
    events_server, events_env, store, product, viewer_token
):
    products = [product, ProductFactory(sku="MUG")]
    commits = 50
    total = commits * len(products)

    async def main():
        async with stream_client(events_server) as client:
            opened = [asyncio.Event() for _ in range(STREAMS)]
            tasks = readers(client, store, viewer_token, STREAMS, until_seq=total, opened=opened)
            await asyncio.wait_for(asyncio.gather(*(event.wait() for event in opened)), 60)
            # Every stream is open and subscribed: another process changes the stock.
            writer = start_writer(events_env, store, products, commits)
            output = await asyncio.to_thread(finish, writer)
            return output, await asyncio.wait_for(asyncio.gather(*tasks), 60)

    output, streams = asyncio.run(main())

    assert "written" in output, output
    assert len(streams) == STREAMS
    expected = list(range(1, total + 1))
    assert [stream for stream in streams if seqs(stream) != expected] == []
