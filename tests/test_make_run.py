"""`make run`, the newcomer's first command: it serves on PORT (8000 unless set), and when
that port is taken it says so and stops before it installs, migrates or seeds anything.

Each run uses a scratch SQLite file (DATABASE_URL), so the repository's db.sqlite3 is
never touched, and make runs in its own process group, stopped whole at the end.
"""

import shutil
import socket
import subprocess
import urllib.request

import pytest

from tests.processes import ROOT, free_port, project_env, stop, wait_until

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make on PATH")


@pytest.fixture
def make(tmp_path):
    """Start ``make <args>`` with ``env``; returns (process, log path)."""
    processes = []

    def start(args: list[str], env: dict[str, str]):
        log = tmp_path / f"make-{len(processes)}.log"
        # Run as a newcomer does, not as a sub-make of `make test` (which would print
        # "Entering directory" lines and pass its own flags down).
        env = {k: v for k, v in env.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
        with open(log, "w") as output:
            process = subprocess.Popen(
                ["make", *args],
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.append(process)
        return process, log

    yield start
    for process in processes:
        stop(process)


@pytest.fixture
def taken_port():
    """A port with a listening socket on it, as a running server holds it."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


@pytest.mark.parametrize("given_as", ["argument", "environment"])
def test_make_run_on_a_taken_port_says_so_before_touching_anything(
    make, taken_port, tmp_path, given_as
):
    database = tmp_path / "db.sqlite3"
    env = project_env(DATABASE_URL=f"sqlite:///{database}")
    args = ["run"]
    if given_as == "argument":
        args.append(f"PORT={taken_port}")
    else:
        env["PORT"] = str(taken_port)

    process, log = make(args, env)
    process.wait(timeout=60)

    output = log.read_text()
    assert process.returncode != 0
    assert output.startswith(
        f"Port {taken_port} is taken (Address already in use): another server, perhaps an "
        f"earlier `make run`, listens on 127.0.0.1:{taken_port}. Stop it, or choose another "
        f"port: make run PORT={taken_port + 1}\n"
    ), output
    assert "manage.py" not in output
    assert not database.exists()


def test_make_run_refuses_a_port_that_is_not_a_number(make, tmp_path):
    database = tmp_path / "db.sqlite3"

    process, log = make(["run", "PORT=80a"], project_env(DATABASE_URL=f"sqlite:///{database}"))
    process.wait(timeout=60)

    assert process.returncode != 0
    assert log.read_text().startswith("PORT='80a' is not a port number (1-65535).\n")
    assert not database.exists()


def home_page(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            return response.read().decode()
    except OSError:
        return None


def test_make_run_serves_the_seeded_demo_on_the_port_given(make, tmp_path):
    port = free_port()
    database = tmp_path / "db.sqlite3"

    process, log = make([f"PORT={port}", "run"], project_env(DATABASE_URL=f"sqlite:///{database}"))

    assert wait_until(
        lambda: process.poll() is not None or home_page(port) is not None, timeout=180
    ), log.read_text()[-3000:]
    assert process.poll() is None, log.read_text()[-3000:]
    assert 'href="/admin/login/?next=/"' in home_page(port)
    output = log.read_text()
    assert "Demo logins (new passwords on every run):" in output
    assert "Demo stores, and each login's role there:" in output
    assert f"Open http://127.0.0.1:{port}/ : the home page links each login's stores." in output
    assert database.exists()
