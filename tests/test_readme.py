"""The README starts with the newcomer's path, and what it shows works here."""

import re

from django.urls import resolve

from tests.processes import ROOT

README = (ROOT / "README.md").read_text()


def sections() -> list[str]:
    return re.findall(r"^## (.+)$", README, re.M)


def start_here() -> str:
    return README.split("## Start here", 1)[1].split("\n## ", 1)[0]


def test_the_first_section_is_the_newcomers_path_and_reference_follows():
    assert sections()[0] == "Start here"
    assert sections().index("Configuration") > 0 and sections().index("Tests") > 0
    path = start_here()
    for what in ("make run", "make test", "Ctrl-C", "manager", "clerk", "berlin-01"):
        assert what in path, what
    assert len(re.findall(r"^curl |^TOKEN=\$\(curl ", path, re.M)) == 3


def test_every_url_it_shows_is_served():
    paths = set(re.findall(r"http://127\.0\.0\.1:8000(/[^\s`\"'|)]*)", start_here()))
    assert len(paths) >= 6, paths
    for path in paths:
        resolve(path)  # raises Resolver404 for a path the site does not serve


def test_it_points_to_no_file_outside_the_repository():
    # "../x" (a path up and out); "GET .../x" abbreviates an endpoint and is fine.
    assert re.findall(r"(?<!\.)\.\./\w", README) == []
