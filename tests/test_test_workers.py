"""The Redis databases each pytest-xdist worker of `make test` takes (tests/settings.py)."""

import pytest

from tests.settings import worker_redis_urls

CACHE, BROKER = "redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/1"


def test_each_worker_takes_the_next_database():
    assert worker_redis_urls({"REDIS_URL": CACHE}, "gw0") == {"REDIS_URL": CACHE}
    assert worker_redis_urls({"REDIS_URL": CACHE}, "gw1") == {
        "REDIS_URL": "redis://127.0.0.1:6379/1"
    }


def test_a_broker_on_a_database_of_its_own_never_becomes_another_workers_cache():
    urls = {"REDIS_URL": CACHE, "CELERY_BROKER_URL": BROKER, "CELERY_RESULT_BACKEND": CACHE}

    first, second = (worker_redis_urls(urls, worker) for worker in ("gw0", "gw1"))

    assert first == urls
    assert second == {
        "REDIS_URL": "redis://127.0.0.1:6379/2",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/3",
        "CELERY_RESULT_BACKEND": "redis://127.0.0.1:6379/2",
    }


def test_the_workers_databases_never_overlap_when_the_urls_leave_a_gap():
    urls = {"REDIS_URL": CACHE, "CELERY_BROKER_URL": "redis://127.0.0.1:6379/4"}

    taken = [
        database
        for worker in ("gw0", "gw1", "gw2")
        for url in worker_redis_urls(urls, worker).values()
        for database in [int(url.rsplit("/", 1)[1])]
    ]

    assert taken == [0, 4, 5, 9, 10, 14]


@pytest.mark.parametrize(
    "url, worker, refusal",
    [
        ("redis://127.0.0.1:6379?db=2", "gw1", "named in the URL's path"),
        ("amqp://guest@127.0.0.1//", "gw1", "named in the URL's path"),
        ("redis://127.0.0.1:6379/15", "gw1", "would need Redis database 16"),
    ],
)
def test_what_cannot_be_split_is_refused_not_shared(url, worker, refusal):
    with pytest.raises(ValueError, match=refusal):
        worker_redis_urls({"CELERY_BROKER_URL": url}, worker)
