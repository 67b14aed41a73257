"""Containers without a Docker daemon: what ``mlflow models generate-dockerfile`` writes, and
the project's own Dockerfile for the serving app, rendered from the lock file and checked.

Building needs Docker (see the lab's README); everything here reads and writes text only.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The packages the serving app imports, recorded in an image label for ``docker inspect``.
SERVING_STACK = (
    "fastapi", "uvicorn", "pydantic", "prometheus-client", "mlflow", "scikit-learn", "skops",
    "pandas",
)  # fmt: skip
INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "MAINTAINER",
}  # fmt: skip
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)==([^\s;\\]+)", re.MULTILINE)
SERVING_USER, SERVING_UID, PORT = "serving", 10001, 8000


def lock_pins(lock_text: str) -> dict[str, set[str]]:
    """``name → versions`` pinned in a ``uv pip compile`` lock (a name can have one version
    per platform marker)."""
    pins: dict[str, set[str]] = {}
    for name, version in _PIN.findall(lock_text):
        pins.setdefault(_normal(name), set()).add(version)
    return pins


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def render_dockerfile(lock_text: str, python_version: str | None = None) -> str:
    """The serving app's Dockerfile: the interpreter version the lock was made for, every
    package from the lock with its hashes and nothing resolved at build time, the project's
    code, a non-root user, a health check on ``/ready``, bound to 0.0.0.0 inside."""
    python_version = python_version or ".".join(map(str, sys.version_info[:3]))
    pins = lock_pins(lock_text)
    stack = " ".join(f"{n}=={min(pins[n])}" for n in SERVING_STACK if len(pins.get(n, ())) == 1)
    probe = (
        f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{PORT}/ready', timeout=2)"
    )
    start = (
        f"exec python -m labs.common.serving.server --host 0.0.0.0 --port {PORT} "
        '--model-uri "$MODEL_URI" --log-path /app/logs/predictions.sqlite'
    )
    return f"""\
# The churn model's serving app (labs.common.serving) — written by `make lab-packaging`
# (labs/packaging/container.py) from requirements.lock; do not edit by hand.
# Build from the repository root:  docker build -f labs/packaging/Dockerfile -t churn-serving .
FROM python:{python_version}-slim-bookworm
LABEL org.opencontainers.image.title="churn-serving" serving.stack="{stack}"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    DO_NOT_TRACK=true MLFLOW_DISABLE_TELEMETRY=true
WORKDIR /app
# Every package exactly as locked, verified by hash; --no-deps: nothing is resolved at build.
COPY requirements.lock /app/requirements.lock
RUN python -m pip install --no-cache-dir --no-deps --require-hashes -r /app/requirements.lock
COPY labs /app/labs
ENV PYTHONPATH=/app
RUN useradd --create-home --uid {SERVING_UID} {SERVING_USER} \\
    && mkdir -p /app/logs && chown {SERVING_USER} /app/logs
USER {SERVING_USER}
# The model comes from the registry at start-up: set MLFLOW_TRACKING_URI to the MLflow server.
ENV MODEL_URI=models:/churn-model@champion
EXPOSE {PORT}
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \\
    CMD {json.dumps(["python", "-c", probe])}
CMD {json.dumps(["sh", "-c", start])}
"""


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions of a Dockerfile (comments dropped, continuation lines joined); a
    ``ValueError`` for an unknown instruction or a bad exec-form (JSON) argument list."""
    logical, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    if current.strip():
        raise ValueError(f"dangling continuation: {current[:60]!r}")
    out = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        if keyword.upper() not in INSTRUCTIONS:
            raise ValueError(f"unknown instruction {keyword!r}")
        args = args.strip()
        exec_form = args.split(" CMD ", 1)[1].strip() if keyword.upper() == "HEALTHCHECK" else args
        if keyword.upper() in ("CMD", "ENTRYPOINT", "HEALTHCHECK") and exec_form.startswith("["):
            json.loads(exec_form)  # raises on a malformed exec form
        out.append(Instruction(keyword.upper(), args))
    if not out or out[0].keyword not in ("FROM", "ARG"):
        raise ValueError("a Dockerfile starts with FROM (or ARG)")
    return out


def check_dockerfile(text: str, lock_text: str) -> dict[str, Any]:
    """What a reviewer checks in a Dockerfile, measured: base image, final user, health
    check, unpinned installs, label pins that disagree with the lock."""
    steps = parse_dockerfile(text)
    pins = lock_pins(lock_text)
    users = [s.args.split(":")[0] for s in steps if s.keyword == "USER"]
    final_user = users[-1] if users else "root"
    runs = [s.args for s in steps if s.keyword == "RUN"]
    stated = {
        _normal(n): v for s in steps for n, v in re.findall(r"([\w.-]+)==([\w.+!-]+)", s.args)
    }
    return {
        "instructions": len(steps),
        "base_image": next(s.args for s in steps if s.keyword == "FROM"),
        "final_user": final_user,
        "runs_as_root": final_user in ("root", "0"),
        "healthcheck": any(s.keyword == "HEALTHCHECK" for s in steps),
        "installs_from_lock_with_hashes": any(
            "--require-hashes" in r and "requirements.lock" in r and "--no-deps" in r for r in runs
        ),
        "unpinned_installs": _unpinned_installs(runs),
        "pins_stated": len(stated),
        "pins_not_in_lock": sorted(
            f"{n}=={v}" for n, v in stated.items() if v not in pins.get(n, ())
        ),
        "entrypoint": next(
            (s.args for s in reversed(steps) if s.keyword in ("CMD", "ENTRYPOINT")), ""
        ),
    }


def _unpinned_installs(runs: list[str]) -> list[str]:
    """Packages a RUN step installs without a version (apt, pip) or fetches at 'latest'."""
    found: list[str] = []
    for run in runs:
        for command in re.split(r"&&|;|\|\|", run):
            words = command.replace("\\", " ").split()
            if "install" not in words:
                continue
            before = words[: words.index("install")]
            rest = [w for w in words[words.index("install") + 1 :] if not w.startswith("-")]
            if any(w in ("apt-get", "apt") for w in before):
                found += [f"apt:{w}" for w in rest if "=" not in w]
            elif any(w.endswith("pip") for w in before) and "-r" not in words:
                found += [f"pip:{w}" for w in rest if "==" not in w]
        if "git ls-remote" in run or "tail -1" in run:
            found.append("git:latest-tag")
    return found


def generate_mlflow_context(model_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Run ``mlflow models generate-dockerfile`` (its click command, in this process: no
    second MLflow import) and inspect what it wrote."""
    from click.testing import CliRunner
    from mlflow.models.cli import commands

    result = CliRunner().invoke(
        commands, ["generate-dockerfile", "-m", str(model_dir), "-d", str(out_dir)]
    )
    if result.exit_code != 0:
        raise RuntimeError(f"mlflow models generate-dockerfile failed: {result.output[-500:]}")
    dockerfile = (out_dir / "Dockerfile").read_text()
    requirements = sorted(out_dir.glob("model_dir/*/requirements.txt"))
    req_lines = [
        line.strip()
        for path in requirements
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return {
        "files": sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file()),
        "requirements": req_lines,
        "requirements_pinned": sum("==" in r for r in req_lines),
        "dockerfile": dockerfile,
    }
