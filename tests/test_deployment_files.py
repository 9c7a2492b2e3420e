"""The image and docker-compose start the same bin/run commands the entry-point tests run.

No Docker engine runs on the development and CI machines, so the files are checked here
(and by `docker-compose config -q` in CI) rather than by building them.
"""

import json
import re
import shlex
from urllib.parse import urlsplit

import yaml

from tests.processes import ROOT, bare_env, run

# The bin/run subcommands that tests/test_entrypoints.py starts.
TESTED_COMMANDS = {
    "migrate",
    "collectstatic",
    "web",
    "events",
    "worker",
    "beat",
    "ping-web",
    "ping-worker",
}


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    return instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]


def image_environment() -> dict[str, str]:
    """The variables the final stage's ENV instructions set."""
    return dict(
        assignment.split("=", 1)
        for keyword, argument in final_stage()
        if keyword == "ENV"
        for assignment in shlex.split(argument)
    )


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def redis_options(service: dict) -> dict[str, str]:
    """``redis-server --name value ...`` as {name: value}."""
    command = service["command"]
    assert command[0] == "redis-server", command
    return dict(
        zip((name.removeprefix("--") for name in command[1::2]), command[2::2], strict=True)
    )


def test_the_image_is_multi_stage_and_runs_bin_run_as_a_non_root_user():
    instructions = dockerfile_instructions()
    stages = [argument for keyword, argument in instructions if keyword == "FROM"]
    assert len(stages) >= 2
    final_stage = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
    users = [argument for keyword, argument in final_stage if keyword == "USER"]
    assert users and users[-1] not in {"root", "0"}
    entrypoint = [json.loads(a) for k, a in final_stage if k == "ENTRYPOINT"]
    command = [json.loads(a) for k, a in final_stage if k == "CMD"]
    assert entrypoint == [["bin/run"]]
    assert command[-1][0] in TESTED_COMMANDS
    build_steps = [a for k, a in final_stage if k == "RUN" and "bin/run" in a]
    assert all(re.search(r"bin/run (\S+)", step)[1] in TESTED_COMMANDS for step in build_steps)


def test_every_app_service_runs_a_tested_bin_run_command():
    services = compose()["services"]
    app_services = {name: s for name, s in services.items() if "build" in s}

    assert set(app_services) == {"migrate", "web", "events", "worker", "beat"}
    for name, service in app_services.items():
        assert service["command"][0] in TESTED_COMMANDS, name


def test_the_image_runs_with_debug_off():
    """Whatever the settings' default: a container without SECRET_KEY refuses to start."""
    assert image_environment()["DEBUG"] == "false"


def test_the_images_static_files_step_succeeds_with_debug_off(tmp_path):
    """The build step, run as the image runs it: with the image's environment, DEBUG off,
    where the settings refuse a weak SECRET_KEY."""
    [step] = [a for k, a in final_stage() if k == "RUN" and "bin/run collectstatic" in a]
    environment = {**image_environment(), "STATIC_ROOT": str(tmp_path / "static")}
    del environment["PATH"]  # the image's venv is this interpreter's (first on PATH)

    result = run(["bash", "-c", step], bare_env(**environment))

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "static" / "staticfiles.json").exists()


def test_long_running_services_have_health_checks():
    services = compose()["services"]

    for name in ("db", "cache", "broker", "web", "events", "worker"):
        assert services[name]["healthcheck"]["test"], name
    for name in ("web", "events", "worker"):
        check = " ".join(services[name]["healthcheck"]["test"][1:])
        assert re.match(r"bin/run (ping-web|ping-worker)\b", check), name


def test_app_services_wait_for_migrations_and_healthy_dependencies():
    services = compose()["services"]

    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    for name in ("web", "events", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }


def test_the_cache_redis_is_bounded_and_evicts_only_keys_with_a_ttl():
    """volatile-lru: every cache entry and rate-limit counter has a TTL; the cache
    generation numbers have none, so eviction never drops one."""
    options = redis_options(compose()["services"]["cache"])

    assert re.fullmatch(r"\$\{CACHE_MAXMEMORY:-\d+mb\}", options["maxmemory"])
    assert options["maxmemory-policy"] == "volatile-lru"


def test_the_celery_broker_is_a_separate_redis_that_never_evicts_and_persists():
    services = compose()["services"]
    options = redis_options(services["broker"])

    assert re.fullmatch(r"\$\{BROKER_MAXMEMORY:-\d+mb\}", options["maxmemory"])
    assert options["maxmemory-policy"] == "noeviction"
    assert options["appendonly"] == "yes"
    assert [volume.split(":")[1] for volume in services["broker"]["volumes"]] == ["/data"]
    assert "redis" not in services


def test_the_app_caches_in_one_redis_and_queues_tasks_in_the_other():
    services = compose()["services"]

    for name in ("migrate", "web", "worker", "beat"):
        environment = services[name]["environment"]
        hosts = {
            variable: urlsplit(environment[variable]).hostname
            for variable in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")
        }
        assert hosts == {
            "REDIS_URL": "cache",
            "CELERY_BROKER_URL": "broker",
            "CELERY_RESULT_BACKEND": "broker",
        }, name
    for name in ("web", "worker", "beat"):
        depends_on = services[name]["depends_on"]
        assert depends_on["cache"] == depends_on["broker"] == {"condition": "service_healthy"}


def test_the_dashboard_of_web_streams_from_the_events_service_which_allows_webs_origin():
    """Without a proxy in front, web's dashboard opens the stream at the events service's
    published port, and that service answers CORS for web's published origin."""
    services = compose()["services"]
    web, events = services["web"], services["events"]

    def published(service: dict) -> str:
        host_port, container_port = service["ports"][0].split(":")
        assert container_port == "8000"  # bin/run's PORT in the image
        return f"http://localhost:{host_port}"

    assert default_of(web["environment"]["EVENTS_STREAM_URL"]) == published(events)
    assert default_of(events["environment"]["EVENTS_STREAM_ALLOWED_ORIGINS"]) == published(web)
    assert "EVENTS_STREAM_ALLOWED_ORIGINS" not in web["environment"]


def default_of(value: str) -> str:
    """The default of a ``${NAME-default}`` substitution."""
    name, _, default = value.removeprefix("${").removesuffix("}").partition("-")
    assert name.isupper() and default, value
    return default


def test_the_replica_service_is_optional_and_made_as_cis_replica():
    """Only with ``--profile replica``; a standby cloned with pg_basebackup -R from db
    (tests/test_compose_replica.py runs its scripts on real clusters)."""
    services = compose()["services"]
    replica = services["replica"]
    script = (ROOT / "ops" / "postgres" / "replica.sh").read_text()

    assert replica["profiles"] == ["replica"]
    assert all("profiles" not in service for name, service in services.items() if name != "replica")
    assert replica["image"] == services["db"]["image"]
    assert replica["entrypoint"] == ["bash", "/usr/local/bin/replica.sh"]
    assert "./ops/postgres/replica.sh:/usr/local/bin/replica.sh:ro" in replica["volumes"]
    assert "pg_basebackup" in script and "--write-recovery-conf --wal-method stream" in script
    assert replica["environment"]["PRIMARY_HOST"] == "db"
    assert replica["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert replica["healthcheck"]["test"]
    # The replica's password is the one db's init script gives the replication role.
    assert (
        replica["environment"]["PGPASSWORD"]
        == services["db"]["environment"]["REPLICATION_PASSWORD"]
    )
    assert (
        "./ops/postgres/replication.sh:/docker-entrypoint-initdb.d/replication.sh:ro"
        in services["db"]["volumes"]
    )


def test_the_app_reads_from_replicas_only_when_told_to():
    services = compose()["services"]

    for name in ("migrate", "web", "worker", "beat"):
        assert services[name]["environment"]["DATABASE_REPLICA_URLS"] == (
            "${DATABASE_REPLICA_URLS:-}"
        ), name
        assert "replica" not in services[name].get("depends_on", {}), name


def test_make_check_compose_checks_both_profiles():
    recipe = re.search(r"^check-compose:\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)

    commands = recipe[1].splitlines()
    assert [("--profile replica" in command, "config -q" in command) for command in commands] == [
        (False, True),
        (True, True),
    ]


def test_only_migrate_holds_the_owners_url_and_the_app_connects_as_its_role():
    """Least privilege: web, worker and beat cannot rewrite the ledger or the audit log,
    not even by reading the owner's password from their environment."""
    services = compose()["services"]
    migrate = services["migrate"]["environment"]
    owner = urlsplit(migrate["DATABASE_OWNER_URL"]).username

    for name in ("migrate", "web", "worker", "beat"):
        environment = services[name]["environment"]
        assert urlsplit(environment["DATABASE_URL"]).username == "inventory_app", name
        assert environment["DATABASE_APP_ROLE"] == "inventory_app", name
        assert ("DATABASE_OWNER_URL" in environment) == (name == "migrate"), name
    assert owner == services["db"]["environment"]["POSTGRES_USER"] != "inventory_app"
    assert migrate["DATABASE_APP_PASSWORD"] == "${DATABASE_APP_PASSWORD:-inventory_app}"
