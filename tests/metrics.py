"""Reading /metrics in tests: every sample by name and labels, and every metric declared."""

from prometheus_client.parser import text_string_to_metric_families

# Both are Prometheus' plain text format; prometheus_client >= 0.23 declares 1.0.0.
PROMETHEUS_TEXT = {
    "text/plain; version=0.0.4; charset=utf-8",
    "text/plain; version=1.0.0; charset=utf-8",
}

Samples = dict[tuple[str, frozenset], float]


def parse(body: str) -> Samples:
    """Every sample of a /metrics body by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def read_metrics(client) -> Samples:
    """Every sample of /metrics by (name, labels), read through the test client."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"] in PROMETHEUS_TEXT, response["Content-Type"]
    return parse(response.content.decode())


def sample(metrics: Samples, name: str, **labels) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


def by_label(metrics: Samples, name: str, label: str) -> dict[str, float]:
    """The samples of one name by the value of their one label (``{}`` when none)."""
    return {
        dict(labels)[label]: value
        for (sample_name, labels), value in metrics.items()
        if sample_name == name
    }
