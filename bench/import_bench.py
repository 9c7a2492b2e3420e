"""How fast ``import_stock`` applies a large CSV file: rows per second on PostgreSQL.

    .venv/bin/python bench/import_bench.py          (make bench-import)

- Data: a scratch database (BENCH_DATABASE_URL, default ``inventory_bench_import``;
  created, migrated with ``bin/run migrate``, dropped at the end) with BENCH_STORES (200)
  stores x BENCH_PRODUCTS (500) products, every level seeded by ``stock_seed_levels``:
  100,000 levels. Cache and broker: a private ``redis-server`` on a free port (or
  BENCH_REDIS_URL, an empty Redis database), so that each batch's after-commit cache
  refresh is paid for as in a deployment.
- Files, one row per level (100,000 rows), written before the clock starts:

  - ``set``: the export (``export_stock``, with its version column), every count
    changed: 100,000 compare-and-set counts, a movement and an audit outbox entry each;
  - ``adjust``: ``store,sku,delta``, +1 each, ``--reason found``: 100,000 adjustments;
  - ``unchanged``: the export as it is: every row read, checked and skipped, nothing
    written;
  - ``refused``: the adjustments, the last row taking more than is there: everything
    applied, the one refusal found, all rolled back (the cost of all or nothing).

- Each import is ``call_command("import_stock", FILE)`` in this process, timed from
  reading the file to the command's return (the transaction committed, the
  ``stock_changed`` receivers run); the part spent reading and checking the file
  (``parse_stock_csv``: CSV, the stores and SKUs looked up) is timed apart. BENCH_REPEATS
  (3) rounds of the four, in that order; the table shows medians.
- The audit outbox rows are written in the import's own statements; relaying them into
  the hash-chained log is a worker's job afterwards and is not timed here (no worker
  runs).
- Checks (exit 1 if one fails): every level's on_hand is what the last file said, the
  refused imports changed nothing, each applied row wrote exactly one movement, and
  every level equals the sums of its ledger (one grouped pass).

Needs PostgreSQL on 127.0.0.1 (or BENCH_DATABASE_URL), ``createdb``/``dropdb``/``psql``,
``redis-server`` on PATH unless BENCH_REDIS_URL is set.
"""

import io
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import (  # noqa: E402
    checked,
    drop_database,
    log,
    pg_args,
    refuse_existing_database,
    scratch_redis,
)

from tests.processes import project_env  # noqa: E402

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/inventory_bench_import"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "")  # empty: a private redis-server
STORES = int(os.environ.get("BENCH_STORES", "200"))
PRODUCTS = int(os.environ.get("BENCH_PRODUCTS", "500"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
SCENARIOS = ("set", "adjust", "unchanged", "refused")


def seed() -> None:
    from catalog.models import Product
    from stock.services import stock_seed_levels
    from stores.models import Store

    stores = Store.objects.bulk_create(
        [Store(code=f"bench-{n:05d}", name=f"Bench store {n}") for n in range(STORES)]
    )
    products = Product.objects.bulk_create(
        [
            Product(sku=f"BENCH-{n:05d}", name=f"Bench product {n}", price=Decimal("1"))
            for n in range(PRODUCTS)
        ]
    )
    stock_seed_levels(stores=stores, products=products)


def levels() -> dict[tuple[str, str], tuple[int, int]]:
    from stock.models import StockLevel

    return {
        (code, sku): (on_hand, version)
        for code, sku, on_hand, version in StockLevel.objects.values_list(
            "store__code", "product__sku", "on_hand", "version"
        )
    }


def export(path: Path) -> list[str]:
    from django.core.management import call_command

    call_command("export_stock", str(path), stdout=io.StringIO())
    return path.read_text().splitlines()


def write_files(work: Path, round_: int) -> dict[str, tuple[Path, list[str], dict]]:
    """Each scenario's file (but ``unchanged``'s, exported when its turn comes), its
    extra arguments and the on_hand it should leave, from the levels as they are now."""
    lines = export(work / f"export-{round_}.csv")
    counts, after_counts = [lines[0]], {}
    for line in lines[1:]:
        code, sku, on_hand, *rest = line.split(",")
        new = (int(on_hand) + 7) % 1000
        counts.append(",".join([code, sku, str(new), *rest]))
        after_counts[(code, sku)] = new
    counted = work / f"set-{round_}.csv"
    counted.write_text("\n".join(counts) + "\n")
    keys = sorted(after_counts)
    adjusted = work / f"adjust-{round_}.csv"
    adjusted.write_text("store,sku,delta\n" + "".join(f"{code},{sku},1\n" for code, sku in keys))
    # The same adjustments, but the last takes 999,999 units from a level of under 1,001.
    refused = work / f"refused-{round_}.csv"
    refused.write_text(adjusted.read_text().rsplit(",", 1)[0] + ",-999999\n")
    after_adjust = {key: on_hand + 1 for key, on_hand in after_counts.items()}
    return {
        "set": (counted, [], after_counts),
        "adjust": (adjusted, ["--reason", "found"], after_adjust),
        "unchanged": (work / f"unchanged-{round_}.csv", [], after_adjust),
        "refused": (refused, ["--reason", "correction"], after_adjust),
    }


def run_import(path: Path, args: list[str]) -> tuple[float, float, bool, str]:
    """(seconds in all, seconds reading and checking the file, applied?, output)."""
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from stock.operator_io import parse_stock_csv, read_text

    began = time.perf_counter()
    parse_stock_csv(read_text(str(path)))
    parsed = time.perf_counter() - began
    out, err = io.StringIO(), io.StringIO()
    began = time.perf_counter()
    try:
        call_command("import_stock", str(path), *args, stdout=out, stderr=err)
        applied = True
    except CommandError as error:
        applied = False
        out.write(f"{error}\n{err.getvalue()}")
    return time.perf_counter() - began, parsed, applied, out.getvalue().strip()


def ledger_problems() -> list[str]:
    """Levels that disagree with the sums of their movements, in one grouped pass."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*)
              FROM stock_stocklevel AS level
              LEFT JOIN (SELECT store_id, product_id, sum(delta_on_hand) AS on_hand,
                                sum(delta_reserved) AS reserved, count(*) AS changes
                           FROM stock_movement GROUP BY store_id, product_id) AS ledger
                     ON ledger.store_id = level.store_id
                    AND ledger.product_id = level.product_id
             WHERE level.on_hand <> coalesce(ledger.on_hand, 0)
                OR level.reserved <> coalesce(ledger.reserved, 0)
                OR level.version <> coalesce(ledger.changes, 0)
            """
        )
        drifting = cursor.fetchone()[0]
    return [f"{drifting} level(s) disagree with their ledger"] if drifting else []


def measure(work: Path) -> tuple[dict[str, list[dict]], list[str]]:
    from stock.models import Movement

    rows = STORES * PRODUCTS
    results = {scenario: [] for scenario in SCENARIOS}
    problems = []
    for round_ in range(REPEATS):
        files = write_files(work, round_)
        for scenario in SCENARIOS:
            path, args, expected = files[scenario]
            if scenario == "unchanged":
                export(path)
            movements = Movement.objects.count()
            seconds, parsed, applied, output = run_import(path, args)
            written = Movement.objects.count() - movements
            want_written = {"set": rows, "adjust": rows}.get(scenario, 0)
            if applied != (scenario != "refused"):
                problems.append(f"round {round_} {scenario}: {output}")
            if written != want_written:
                problems.append(
                    f"round {round_} {scenario}: {written} movements, not {want_written}"
                )
            if {key: on_hand for key, (on_hand, _) in levels().items()} != expected:
                problems.append(f"round {round_} {scenario}: the levels are not as the file says")
            results[scenario].append(
                {"seconds": seconds, "parsed": parsed, "output": output.splitlines()[0]}
            )
            log(f"round {round_ + 1}/{REPEATS} {scenario}: {seconds:.2f} s ({output})")
    return results, problems + ledger_problems()


def print_report(results: dict[str, list[dict]]) -> None:
    rows = STORES * PRODUCTS
    print()
    print(f"import_stock, {rows:,} rows ({STORES} stores x {PRODUCTS} products), "
          f"median of {REPEATS} round(s)")  # fmt: skip
    print(f"{'scenario':<10} {'seconds':>8} {'rows/s':>9} {'reading':>8}   runs (s)")
    for scenario in SCENARIOS:
        runs = results[scenario]
        seconds = statistics.median(run["seconds"] for run in runs)
        parsed = statistics.median(run["parsed"] for run in runs)
        each = " ".join(f"{run['seconds']:.2f}" for run in runs)
        print(f"{scenario:<10} {seconds:>8.2f} {rows / seconds:>9,.0f} {parsed:>7.2f}s   {each}")
    print("(reading: the part spent reading and checking the file, parse_stock_csv)")


def delete_keys(redis_client, prefix: str) -> None:
    """In a shared Redis database (empty when the run began): the cache keys and the
    Celery messages (audit relay requests) this run made."""
    for pattern in (f"{prefix}:*", "celery*", "_kombu.*", "unacked*"):
        keys = list(redis_client.scan_iter(match=pattern, count=1000))
        for start in range(0, len(keys), 1000):
            redis_client.delete(*keys[start : start + 1000])


def main() -> int:
    started = time.monotonic()
    for tool in ("createdb", "dropdb", "psql"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not on PATH")
    refuse_existing_database(DATABASE_URL)
    pg, database = pg_args(DATABASE_URL)
    work = Path(tempfile.mkdtemp(prefix="import-bench-"))
    prefix = f"bench-import-{uuid.uuid4().hex[:8]}"
    redis_server, redis_url, redis_client = scratch_redis(REDIS_URL, work)
    variables = dict(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=redis_url,
        CACHE_KEY_PREFIX=prefix,
        DEBUG="false",  # with DEBUG on, Django keeps every query in memory
        SECRET_KEY="import-bench-" + "x" * 50,
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="inventory_site.settings",
    )
    env = project_env(**variables)
    created, ok = False, False
    try:
        checked(["createdb", *pg, database], env, "createdb")
        created = True
        log(f"created database {database}; migrating")
        checked(["bin/run", "migrate"], env, "bin/run migrate", timeout=180)
        os.environ.update(variables)  # this process works on the same database
        import django

        django.setup()
        seed()
        log(f"seeded {STORES} stores x {PRODUCTS} products")
        results, problems = measure(work)
        print_report(results)
        for problem in problems:
            print(f"CHECK FAILED: {problem}")
        ok = not problems
    finally:
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        if created:
            drop_database(DATABASE_URL)
        if redis_server is not None:
            redis_server.stop()
        else:
            delete_keys(redis_client, prefix)
        shutil.rmtree(work, ignore_errors=True)
        log(f"dropped {database}, cleaned up (total {time.monotonic() - started:.0f}s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
