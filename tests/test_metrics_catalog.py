"""What is said about /metrics matches what it exposes: the README's table lists every
metric, and the Grafana dashboard (ops/grafana/inventory.json) queries only metrics that
a scrape of the real endpoint declares."""

import json
import re

import pytest

from tests.metrics import PROMETHEUS_TEXT
from tests.processes import ROOT

pytestmark = pytest.mark.django_db

DASHBOARD = ROOT / "ops" / "grafana" / "inventory.json"
README = (ROOT / "README.md").read_text()

# PromQL's keywords: they read like metric names but are none.
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"} | {
    "offset",
    "bool",
    "and",
    "or",
    "unless",
}
SERIES_OF = {
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
}


def declared(body: str) -> dict[str, str]:
    """Every metric a /metrics body declares (``# TYPE`` lines), by name, with its type.
    The ``_created`` series prometheus_client adds beside a counter or histogram belong to
    it and are left out."""
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", body, re.M))
    return {
        name: kind
        for name, kind in types.items()
        if not (
            name.endswith("_created")
            and ({name[: -len("_created")], name[: -len("_created")] + "_total"} & set(types))
        )
    }


def queryable(metrics: dict[str, str]) -> set[str]:
    """The series names a query can use: a histogram's ``_bucket``, ``_count``, ``_sum``."""
    return {
        name + suffix for name, kind in metrics.items() for suffix in SERIES_OF.get(kind, ("",))
    }


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression reads: what is left once strings, label
    matchers, ranges, grouping clauses, functions and keywords are taken out."""
    expression = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)
    expression = re.sub(r"\{[^}]*\}", " ", expression)
    expression = re.sub(r"\[[^\]]*\]", " ", expression)
    expression = re.sub(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expression
    )
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*", expression):
        if expression[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match.group() not in PROMQL_KEYWORDS:
            names.add(match.group())
    return names


@pytest.fixture
def exposed(client) -> dict[str, str]:
    """The metrics the real /metrics view declares, scraped through the test client."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"] in PROMETHEUS_TEXT
    return declared(response.content.decode())


def dashboard_expressions() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


# --- the reading of queries itself ---------------------------------------------------------


def test_metric_names_are_read_out_of_a_query_and_nothing_else():
    query = (
        'histogram_quantile(0.95, sum by (le, view) (rate(a_seconds_bucket{view="x y"}'
        "[$__rate_interval]))) / on (job) group_left b_total + 1e3 * max(c) offset 5m"
    )

    assert metric_names(query) == {"a_seconds_bucket", "b_total", "c"}


def test_a_metric_the_endpoint_does_not_declare_is_caught(exposed):
    typo = "sum(rate(inventory_stock_operation_total[5m]))"

    assert metric_names(typo) - queryable(exposed) == {"inventory_stock_operation_total"}


# --- the dashboard ----------------------------------------------------------------------


def test_the_dashboard_is_importable_as_it_is():
    """Grafana's import (and file provisioning) takes it as is: a dashboard object with
    unique panel ids inside the 24-column grid, every query on the ``datasource``
    variable (a Prometheus chosen in the dashboard, no ``__inputs`` to fill in)."""
    dashboard = json.loads(DASHBOARD.read_text())

    assert "__inputs" not in dashboard and "id" not in dashboard
    assert dashboard["uid"] == "inventory-overview" and dashboard["schemaVersion"] >= 36
    (variable,) = dashboard["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == (
        "datasource",
        "datasource",
        "prometheus",
    )
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]


def test_the_dashboard_shows_each_part_of_the_service():
    titles = " | ".join(title for title, _ in dashboard_expressions()).lower()
    used = set().union(*(metric_names(expression) for _, expression in dashboard_expressions()))

    for what in ("requests", "latency", "stock", "cache", "audit", "replica", "queue", "fail"):
        assert what in titles, what
    assert {
        "django_http_requests_total_by_view_transport_method_total",
        "django_http_requests_latency_seconds_by_view_method_bucket",
        "inventory_stock_operations_total",
        "inventory_cache_events_total",
        "inventory_audit_backlog_events",
        "inventory_replica_lag_seconds",
        "inventory_replica_up",
        "inventory_celery_queue_messages",
        "inventory_celery_task_failures_total",
    } <= used


def test_every_metric_the_dashboard_queries_is_exposed_by_the_endpoint(exposed):
    missing = {
        title: sorted(metric_names(expression) - queryable(exposed))
        for title, expression in dashboard_expressions()
        if metric_names(expression) - queryable(exposed)
    }

    assert len(dashboard_expressions()) >= 15
    assert missing == {}


# --- the README ------------------------------------------------------------------------


def readme_metrics_table() -> set[str]:
    """The metric names in the first column of the README's table of metrics."""
    section = README.split("### Metrics and alerts", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([a-z_:]+)`", row.split(" | ")[0])}


def test_the_readme_lists_every_metric_the_endpoint_exposes_and_no_other(exposed):
    listed = readme_metrics_table()

    assert sorted(set(exposed) - listed) == []
    assert sorted(listed - set(exposed)) == []
