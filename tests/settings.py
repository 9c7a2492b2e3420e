"""The settings of the pytest process: the project's own, in development mode.

The project refuses to start without DEBUG or SECRET_KEY (a deployment that forgets them
must not fail open), so the test run turns DEBUG on for itself unless the environment says
otherwise, as `make run` does. Child processes the tests start get theirs from
``tests.processes.project_env``.
"""

import os

os.environ.setdefault("DEBUG", "true")

from inventory_site.settings import *  # noqa: E402, F403
