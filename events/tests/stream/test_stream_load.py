"""500 streams open on one events process while another process commits stock events:
every client gets every event, once and in order."""

import asyncio
import subprocess
import sys

import httpx
import pytest

from tests.processes import ROOT

from .conftest import NEEDS_REDIS, read_stream, stream_path
from .writer import WRITER_SCRIPT

pytestmark = [NEEDS_REDIS, pytest.mark.postgresql("the events process reads the test database")]

STREAMS = 500


def test_500_open_streams_each_get_every_event_in_order(
    events_server, events_env, store, product, viewer_token
):
    commits, per_commit = 50, 2
    total = commits * per_commit
    script = WRITER_SCRIPT.format(
        store=store.pk, product=product.pk, commits=commits, per_commit=per_commit
    )

    async def main():
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{events_server}", timeout=60, limits=limits
        ) as client:
            opened = [asyncio.Event() for _ in range(STREAMS)]
            readers = [
                asyncio.create_task(
                    read_stream(
                        client,
                        stream_path(store),
                        headers={"Authorization": f"Token {viewer_token}"},
                        until_seq=total,
                        opened=event,
                    )
                )
                for event in opened
            ]
            await asyncio.wait_for(asyncio.gather(*(event.wait() for event in opened)), 60)
            # Every stream is open and subscribed: another process commits the events.
            writer = await asyncio.create_subprocess_exec(
                sys.executable, "manage.py", "shell", "-c", script,
                cwd=ROOT, env=events_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            )  # fmt: skip
            output, _ = await writer.communicate()
            return output.decode(), await asyncio.wait_for(asyncio.gather(*readers), 60)

    output, streams = asyncio.run(main())

    assert "written" in output, output
    assert len(streams) == STREAMS
    expected = list(range(1, total + 1))
    assert [stream for stream in streams if [e["id"] for e in stream] != expected] == []
