"""What numbering a store's events costs (issue 17): writes per second to 8 products of
ONE store against 8 products in 8 stores, 8 threads, with the database's
synchronous_commit on (as deployed) and off, side by side in one run.

    .venv/bin/python bench/events_numbering.py     # make bench-events runs it too

A store's next ``seq`` is taken by its sequence row, locked until the change commits, so
that seqs follow commit order with no gap: a store's commits then flush the WAL one at a
time. The 8-store figure is the same work without that queue; with synchronous_commit
off (no flush to wait for under the lock) the two should meet, which names the cause.
"""

import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import (
    ROOT,
    checked,
    deployed_variables,
    drop_database,
    log,
    machine_load,
    median,
    pg_args,
    refuse_existing_database,
    scratch_redis,
)

from tests.processes import project_env

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/inventory_bench_numbering"
)
SECONDS = float(os.environ.get("BENCH_NUMBERING_SECONDS", "4"))
ROUNDS = int(os.environ.get("BENCH_NUMBERING_ROUNDS", "3"))
THREADS = 8


def writes_per_second(pairs, seconds: float, synchronous_commit: str) -> float:
    """``stock_receive`` of 1 unit in a loop, one thread per (store, product)."""
    from django.db import connection

    from stock.services import stock_receive

    counts = [0] * len(pairs)
    stop = time.monotonic() + seconds

    def work(index: int) -> None:
        store, product = pairs[index]
        with connection.cursor() as cursor:
            cursor.execute(f"SET synchronous_commit = {synchronous_commit}")
        while time.monotonic() < stop:
            stock_receive(store=store, product=product, quantity=1)
            counts[index] += 1
        connection.close()

    threads = [threading.Thread(target=work, args=(index,)) for index in range(len(pairs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / seconds


def main() -> int:
    refuse_existing_database(DATABASE_URL)
    work = Path(tempfile.mkdtemp(prefix="numbering-bench-"))
    # A Redis of its own, as deployed: the after-commit work goes to a broker nobody
    # consumes, not into the writing threads (eager).
    redis_server, redis_url, _ = scratch_redis("", work)
    variables = deployed_variables(
        database_url=DATABASE_URL, redis_url=redis_url, cache_prefix="numbering",
        secret="numbering",
    )  # fmt: skip
    env = project_env(**variables)
    pg, database = pg_args(DATABASE_URL)
    checked(["createdb", *pg, database], env, "createdb")
    try:
        checked(["bin/run", "migrate"], env, "bin/run migrate", timeout=180)
        os.environ.update(variables)
        import django

        django.setup()
        from catalog.models import Product
        from stores.models import Store

        stores = [Store.objects.create(code=f"numbering-{n}", name=f"N {n}") for n in range(8)]
        products = [
            Product.objects.create(sku=f"NUMBERING-{n}", name=f"N {n}", price="1.00")
            for n in range(THREADS)
        ]
        layouts = {
            "one store": [(stores[0], product) for product in products],
            "8 stores": list(zip(stores, products, strict=True)),
        }
        runs = {(name, sync): [] for name in layouts for sync in ("on", "off")}
        for name, sync in runs:  # warm-up
            writes_per_second(layouts[name], 1, sync)
        for round_ in range(ROUNDS):
            for name, sync in runs:
                runs[name, sync].append(writes_per_second(layouts[name], SECONDS, sync))
            log(f"round {round_ + 1}/{ROUNDS}: " + ", ".join(
                f"{name} sync {sync} {values[-1]:.0f}/s" for (name, sync), values in runs.items()
            ))  # fmt: skip
        print()
        print(f"Writes/s (stock_receive, {THREADS} threads in one process, {SECONDS:g} s per "
              f"run, medians of {ROUNDS}; machine load {machine_load()}):")  # fmt: skip
        for sync in ("on", "off"):
            one, eight = (median(runs[name, sync]) for name in layouts)
            print(f"  synchronous_commit {sync:<3}: one store {one:.0f}/s, 8 stores {eight:.0f}/s, "
                  f"one store / 8 stores {one / eight:.2f}")  # fmt: skip
        print(f"caveat: {os.cpu_count()} shared cores; read the ratios")
    finally:
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        drop_database(DATABASE_URL)
        redis_server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
