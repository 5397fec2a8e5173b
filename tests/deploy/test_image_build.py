"""The image's build, run outside a container.

No container engine runs here, so this test interprets deploy/Dockerfile itself:
the builder stage's WORKDIR, ENV, COPY and RUN instructions run in a scratch
directory standing for the image's root, with no uv on PATH (as in the
python:3.11-slim base); then the runtime stage is assembled from its COPY
instructions alone (its own RUN only adds a user) at the same path, and the
result is started: ``providerctl --help``, ``providerctl db upgrade``, the health
check. What it cannot prove is the base image itself (Debian's Python 3.11 there,
this machine's Python 3.11 here).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.support import DEPLOY, REPO
from tests.deploy.test_dockerfile import instructions

pytestmark = pytest.mark.integration

IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


def _map(root: Path, path: str, workdir: str) -> Path:
    absolute = path if path.startswith("/") else f"{workdir.rstrip('/')}/{path}"
    return root / absolute.lstrip("/")


def _copy(source: Path, destination: Path, *, from_context: bool = True) -> None:
    """COPY: from the build context (where .dockerignore drops bytecode), or from a stage (all of it)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        ignore = IGNORED if from_context else None
        shutil.copytree(source, destination, symlinks=True, ignore=ignore, dirs_exist_ok=True)
    else:
        shutil.copy2(source, destination)


def _env_assignments(argument: str, env: dict[str, str]) -> None:
    for assignment in argument.split():
        name, _, value = assignment.partition("=")
        env[name] = os.path.expandvars(value.replace("$PATH", env.get("PATH", "")))


def _outer_env() -> dict[str, str]:
    """This machine's environment (its certificates and package-index settings reach PyPI, as a
    build host's would), less what would steer uv, Python or our services."""
    steering = ("UV_", "VIRTUAL_ENV", "PYTHON", "PC_", "AUTH_", "PORTAL_", "NOTIFY_", "REDIS_")
    return {k: v for k, v in os.environ.items() if not k.startswith(steering)}


def _bare_path(tmp_path: Path) -> str:
    """A PATH with python3 and the usual system tools but no uv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(os.path.realpath(sys._base_executable))  # type: ignore[attr-defined]
    path = f"{bin_dir}:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
    for directory in path.split(":"):
        assert not (Path(directory) / "uv").exists(), f"uv in {directory}: the test needs a PATH without it"
    return path


def test_the_image_builds_from_its_dockerfile_and_its_commands_run(tmp_path: Path) -> None:
    steps = instructions((DEPLOY / "Dockerfile").read_text())
    builder_root = tmp_path / "builder"
    builder_root.mkdir()

    # ---- the builder stage ----
    env = {**_outer_env(), "PATH": _bare_path(tmp_path)}
    workdir = "/"
    for step in (s for s in steps if s.stage == 0):
        if step.keyword == "ENV":
            _env_assignments(step.argument, env)
        elif step.keyword == "WORKDIR":
            workdir = step.argument
            _map(builder_root, workdir, "/").mkdir(parents=True, exist_ok=True)
        elif step.keyword == "COPY":
            *sources, destination = step.argument.split()
            for source in sources:
                target = _map(builder_root, destination, workdir)
                if destination.endswith("/") or len(sources) > 1 or destination == "./":
                    target = target / Path(source).name
                _copy(REPO / source, target)
        elif step.keyword == "RUN":
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", step.argument],
                cwd=_map(builder_root, workdir, "/"),
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert result.returncode == 0, f"RUN {step.argument}\n{result.stdout}\n{result.stderr}"
    app = _map(builder_root, workdir, "/")
    assert (app / ".tools/bin/uv").exists(), "the builder installed uv itself, as on a machine without it"

    # ---- the runtime stage: only what it copies, at the same path as in the builder ----
    builder_root.rename(tmp_path / "builder-done")
    finished = tmp_path / "builder-done"
    builder_root.mkdir()  # the runtime's root lives where the builder's did (the venv points there)
    env = {**_outer_env(), "PATH": "/usr/bin:/bin"}
    workdir = "/"
    final = max(s.stage for s in steps)
    for step in (s for s in steps if s.stage == final):
        if step.keyword == "ENV":
            _env_assignments(step.argument.replace("/app", str(builder_root / "app")), env)
        elif step.keyword == "WORKDIR":
            workdir = step.argument
        elif step.keyword == "COPY":
            parts = step.argument.split()
            if parts[0].startswith("--from="):
                source, destination = parts[1], parts[2]
                _copy(
                    _map(finished, source, "/"), _map(builder_root, destination, workdir), from_context=False
                )
            else:
                source, destination = parts
                _copy(REPO / source, _map(builder_root, destination, workdir))
    runtime_app = _map(builder_root, workdir, "/")
    shutil.rmtree(finished)
    var_dir = tmp_path / "var"
    env.update(PC_VAR_DIR=str(var_dir), PC_ENV="production")

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv), cwd=runtime_app, env=env, capture_output=True, text=True, timeout=120
        )

    assert not (runtime_app / ".tools").exists() and not (runtime_app / "proto").exists()
    assert shutil.which("providerctl", path=env["PATH"]) == str(runtime_app / ".venv/bin/providerctl")

    helped = run("providerctl", "--help")
    assert helped.returncode == 0, helped.stderr
    for command in ("auth", "notify", "portal", "db", "run"):
        assert command in helped.stdout

    no_tools = run("python", "-c", "import grpc_tools")
    assert no_tools.returncode != 0 and "ModuleNotFoundError" in no_tools.stderr, (
        "build tools left in the image"
    )
    generated = run(
        "python", "-c", "import providercenter.auth.v1.token_pb2_grpc, providercenter.notify.v1.notify_pb2"
    )
    assert generated.returncode == 0, generated.stderr
    assert list((runtime_app / "services/auth/__pycache__").glob("*.pyc")), "bytecode compiled at build time"

    migrated = run("providerctl", "db", "upgrade", "auth", "notify", "portal")  # as compose and k8s run it
    assert migrated.returncode == 0, migrated.stderr
    assert {"auth.db", "notify.db", "portal.db"} <= {p.name for p in var_dir.iterdir()}

    assert run("python", str(runtime_app / "deploy/healthcheck.py"), "none").returncode == 0
