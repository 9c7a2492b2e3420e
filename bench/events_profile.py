"""Where a webhook delivery's CPU goes, for ``events_bench.py``: the delivery services
run in the bench's own process, without Celery, on events written here, against the
bench's receiver (still listening). Compared with the worker's CPU per delivery in the
runs, what is left is Celery's share: the dispatch message after each commit and a
deliver message per subscription, each received, decoded and acknowledged.

Run after the servers stopped (no worker takes the dispatch messages these writes
send): the first pass is timed, the second profiled (cProfile inflates what it sees).
"""

import cProfile
import io
import pstats
import time

from common import cpu_by_pid, cpu_used_since

# Runs as small as the bench's, where a run's own statements weigh most.
SMALL_RUN, SMALL_RUNS = 12, 40


def profile_deliveries(store_code: str, writes: int) -> list[str]:
    """Report lines: CPU per delivery of this process and of PostgreSQL, and the
    functions that took most of it."""
    from accounts.models import User
    from catalog.models import Product
    from events.webhooks.models import WebhookSubscription
    from events.webhooks.services import subscription_deliver
    from stock.services import stock_receive
    from stores.models import Store

    store = Store.objects.get(code=store_code)
    product = Product.objects.order_by("pk").first()
    admin = User.objects.get(username="bench-admin")
    subscriptions = list(
        WebhookSubscription.objects.filter(store=store, is_active=True).values_list("pk", flat=True)
    )

    def write(count: int = writes) -> None:
        for _ in range(count):
            stock_receive(store=store, product=product, quantity=1, actor=admin)

    def deliver_all() -> int:
        return sum(subscription_deliver(pk, limit=writes) for pk in subscriptions)

    def small_runs(backend: list[int]) -> tuple[float, float, int]:
        """Runs of SMALL_RUN events each, as a coalescing window carries them under the
        bench's write rate: CPU per delivery of this process and of PostgreSQL, the
        writes' own apart."""
        own = db = 0.0
        delivered = 0
        for _ in range(SMALL_RUNS):
            write(SMALL_RUN)
            before, started = cpu_by_pid(backend), time.process_time()
            delivered += sum(subscription_deliver(pk) for pk in subscriptions)
            own += time.process_time() - started
            db += cpu_used_since(before, backend)
        return 1000 * own / max(delivered, 1), 1000 * db / max(delivered, 1), delivered

    write()
    deliver_all()  # first queries, connections, imports
    write()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = [cursor.fetchone()[0]]  # this process's one connection
    backends = cpu_by_pid(backend)
    started = time.process_time()
    delivered = deliver_all()
    own_ms = 1000 * (time.process_time() - started) / max(delivered, 1)
    db_ms = 1000 * cpu_used_since(backends, backend) / max(delivered, 1)
    small_own_ms, small_db_ms, small_delivered = small_runs(backend)
    write()
    profiler = cProfile.Profile(time.process_time)  # CPU, as the worker's figure
    profiler.enable()
    profiled = deliver_all()
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(10)
    services = io.StringIO()
    pstats.Stats(profiler, stream=services).sort_stats("cumulative").print_stats(
        r"events/webhooks/(services/\w+|client)\.py", 8
    )
    lines = [
        f"a webhook delivery without Celery ({delivered} deliveries: {writes} writes x "
        f"{len(subscriptions)} subscriptions; the writes made before): {own_ms:.2f} ms of CPU "
        f"in one process (the receiver's apart), {db_ms:.2f} ms of its PostgreSQL backend's",
        f"  in runs of {SMALL_RUN} events each ({small_delivered} deliveries: a coalescing "
        f"window's at about 120 writes/s): {small_own_ms:.2f} ms of CPU, {small_db_ms:.2f} ms "
        "of PostgreSQL's",
        f"  the functions that took most of it ({profiled} deliveries under cProfile, by "
        "own CPU time; each delivery's statements are the calls of execute):",
    ]
    table = text.getvalue().splitlines()
    header = next(index for index, line in enumerate(table) if "ncalls" in line)
    lines += [f"  {line}" for line in table[header : header + 11] if line.strip()]
    lines.append("  the webhook services' functions, by cumulative CPU time:")
    table = services.getvalue().splitlines()
    header = next(index for index, line in enumerate(table) if "ncalls" in line)
    lines += [f"  {line}" for line in table[header : header + 9] if line.strip()]
    return lines
