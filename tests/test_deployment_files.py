"""The image and docker-compose start the same bin/run commands the entry-point tests run.

No Docker engine runs on the development and CI machines, so the files are checked here
(and by `docker-compose config -q` in CI) rather than by building them.
"""

import json
import re

import yaml

from tests.processes import ROOT

# The bin/run subcommands that tests/test_entrypoints.py starts.
TESTED_COMMANDS = {"migrate", "collectstatic", "web", "worker", "beat", "ping-web", "ping-worker"}


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


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

    assert set(app_services) == {"migrate", "web", "worker", "beat"}
    for name, service in app_services.items():
        assert service["command"][0] in TESTED_COMMANDS, name


def test_long_running_services_have_health_checks():
    services = compose()["services"]

    for name in ("db", "redis", "web", "worker"):
        assert services[name]["healthcheck"]["test"], name
    for name in ("web", "worker"):
        check = " ".join(services[name]["healthcheck"]["test"][1:])
        assert re.match(r"bin/run (ping-web|ping-worker)\b", check), name


def test_app_services_wait_for_migrations_and_healthy_dependencies():
    services = compose()["services"]

    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
