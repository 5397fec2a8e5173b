"""Starting the web processes (auth web, portal web) under gunicorn, one way for both.

``providerctl auth web`` and ``providerctl portal web`` exec
``python -m gunicorn --config python:services.common.gunicorn_conf … APP`` with
``PC_WEB_SERVICE`` naming the service; the config module reads the rest from
the environment (see its docstring for the variables).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

CONFIG_MODULE = "python:services.common.gunicorn_conf"
APPS = {"auth": "services.auth.web.wsgi:app", "portal": "services.portal.web.wsgi:app"}
SERVICE_ENV = "PC_WEB_SERVICE"


def cpu_count() -> int:
    """CPUs this process may use: the cgroup's CPU limit when there is one (a container's
    ``resources.limits.cpu``), else the CPUs it may run on."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def default_workers() -> int:
    """gunicorn's rule of thumb, two per CPU plus one (each worker also runs threads)."""
    return 2 * cpu_count() + 1


def gunicorn_argv(service: str, bind: str, workers: int) -> list[str]:
    """The command line of a web process; settings not named here come from the environment."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        CONFIG_MODULE,
        "--bind",
        bind,
        "--workers",
        str(workers),
        APPS[service],
    ]


def exec_gunicorn(service: str, bind: str, workers: int) -> None:
    """Replace this process with gunicorn, so signals from the supervisor or the
    container runtime reach its master directly."""
    os.environ[SERVICE_ENV] = service
    argv = gunicorn_argv(service, bind, workers)
    os.execv(argv[0], argv)  # noqa: S606 - our own interpreter and fixed arguments
