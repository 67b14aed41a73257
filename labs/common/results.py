"""The lab contract (v2): measured claims → ``summary.json``, a readable printout, an exit code.

A lab builds a :class:`LabResult` from :class:`Claim` objects whose ``measured`` numbers are
the evidence, then :func:`finish` (called by :func:`lab_main`) stamps it with the resolved
params, the git commit, the time, the duration and the library versions, validates it against
the JSON Schema ``summary.schema.json`` and writes it. Tests, CI and the evidence index read it
back through :func:`read_summary` only.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from labs.common.paths import project_root

SCHEMA_VERSION = 2
SCHEMA_FILE = Path(__file__).with_name("summary.schema.json")
# Libraries whose version decides the numbers; recorded in every summary.
KEY_LIBRARIES = (
    "scikit-learn", "numpy", "pandas", "scipy", "mlflow", "evidently", "prefect", "dvc",
)  # fmt: skip


# Every claim is shown able to fail: the printout and the evidence index say where.
AUDIT_LINE = "each shown to fail under a counterfactual (`make claims-audit`)"


class SummaryError(ValueError):
    """A ``summary.json`` that does not follow the contract (names the file and the problem)."""


CLAIM_KINDS = ("measured", "model")
# How a check that did not run is recorded: it fails its claim, it is never a ✓.
NOT_CHECKED = "not_checked"


@dataclass(frozen=True)
class Claim:
    """One statement of the interview answer, with the numbers that decide it.

    ``kind`` says what the numbers are: ``measured`` (the lab observed them) or ``model``
    (a calculation on stated inputs, e.g. a cost model on a price list; shown as such).
    """

    id: str
    statement: str
    passed: bool
    measured: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "measured"

    def __post_init__(self) -> None:
        if self.kind not in CLAIM_KINDS:
            raise ValueError(f"claim {self.id!r}: kind must be in {CLAIM_KINDS}, got {self.kind!r}")

    @property
    def checked(self) -> bool:
        """False when the check behind the claim did not run (the claim then fails)."""
        return NOT_CHECKED not in self.measured

    @classmethod
    def not_checked(cls, id: str, statement: str, why: str, **measured: Any) -> Claim:
        """A claim whose check could not run (a tool missing, a timeout): ✗, with the reason."""
        return cls(id, statement, passed=False, measured={NOT_CHECKED: why, **measured})


@dataclass
class LabResult:
    """Everything a lab run shows: its claims, the files it wrote, its MLflow run."""

    lab: str
    question: str
    claims: list[Claim] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    mlflow: dict[str, Any] = field(default_factory=dict)
    # Stamped by :func:`finish` unless the lab set them.
    params: dict[str, Any] = field(default_factory=dict)
    git_commit: str | None = None
    git_dirty: bool | None = None
    generated_at: str | None = None
    duration_s: float | None = None
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.claims) and all(c.passed for c in self.claims)

    def claim(self, claim_id: str) -> Claim:
        for c in self.claims:
            if c.id == claim_id:
                return c
        raise KeyError(f"lab {self.lab!r} has no claim {claim_id!r}")

    def to_dict(self) -> dict[str, Any]:
        data = _plain(asdict(self))
        claims = data.pop("claims")
        return {
            "schema_version": SCHEMA_VERSION,
            "lab": data.pop("lab"),
            "question": data.pop("question"),
            "passed": self.passed,
            "claims": claims,
            **data,
        }


def stamp(result: LabResult, *, params: Any = None, started: float | None = None) -> LabResult:
    """Fill in what the contract records about a run: resolved params, git commit and dirty
    flag, UTC time, duration since ``started`` (``time.perf_counter()``), library versions."""
    if params is not None and not result.params:
        plain = asdict(params) if hasattr(params, "__dataclass_fields__") else params
        result.params = _plain(plain)
    if result.git_commit is None:
        result.git_commit, result.git_dirty = git_state()
    if result.generated_at is None:
        result.generated_at = datetime.now(UTC).isoformat(timespec="seconds")
    if result.duration_s is None and started is not None:
        result.duration_s = round(time.perf_counter() - started, 2)
    if not result.versions:
        result.versions = library_versions()
    return result


def write_summary(result: LabResult, out_dir: Path) -> Path:
    """Validate and write ``summary.json`` in ``out_dir`` (atomically: a reader never sees half
    a file); return its path. Fields the lab left unset are stamped first."""
    if not result.claims:
        raise ValueError(f"lab {result.lab!r} produced no claims: nothing was demonstrated")
    stamp(result)
    data = result.to_dict()
    validate_summary(data, source=f"lab {result.lab!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "summary.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    tmp.replace(path)
    return path


@cache
def summary_schema() -> dict[str, Any]:
    """The JSON Schema every ``summary.json`` follows."""
    return json.loads(SCHEMA_FILE.read_text())


def validate_summary(data: Any, *, source: str = "summary") -> None:
    """Raise :class:`SummaryError` naming the first field that breaks the schema."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(summary_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise SummaryError(f"{source}: {where}: {first.message}")
    for c in data["claims"]:
        if NOT_CHECKED in c["measured"] and c["passed"]:
            raise SummaryError(f"{source}: claim {c['id']} was not checked but is marked passed")
    claimed = all(c["passed"] for c in data["claims"])
    if data["passed"] != claimed:
        raise SummaryError(f"{source}: passed={data['passed']} but the claims say {claimed}")


@dataclass(frozen=True)
class Summary:
    """A validated ``summary.json``, typed: what the evidence index and the tests read."""

    lab: str
    question: str
    passed: bool
    claims: tuple[Claim, ...]
    params: Mapping[str, Any]
    artifacts: tuple[str, ...]
    mlflow: Mapping[str, Any]
    git_commit: str | None
    git_dirty: bool | None
    generated_at: datetime
    duration_s: float | None
    versions: Mapping[str, str]
    path: Path
    schema_version: int = SCHEMA_VERSION

    def claim(self, claim_id: str) -> Claim:
        for c in self.claims:
            if c.id == claim_id:
                return c
        raise KeyError(f"summary of {self.lab!r} has no claim {claim_id!r}")


def read_summary(path: Path) -> Summary:
    """Read and validate one ``summary.json``; :class:`SummaryError` if it breaks the contract."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SummaryError(f"{path}: no such summary (has the lab run?)") from None
    except json.JSONDecodeError as err:
        raise SummaryError(f"{path}: not JSON ({err})") from None
    validate_summary(data, source=str(path))
    return Summary(
        lab=data["lab"],
        question=data["question"],
        passed=data["passed"],
        claims=tuple(Claim(**c) for c in data["claims"]),  # kind defaults to "measured"
        params=data["params"],
        artifacts=tuple(data["artifacts"]),
        mlflow=data["mlflow"],
        git_commit=data["git_commit"],
        git_dirty=data["git_dirty"],
        generated_at=datetime.fromisoformat(data["generated_at"]),
        duration_s=data["duration_s"],
        versions=data["versions"],
        path=Path(path),
        schema_version=data["schema_version"],
    )


def git_state(root: Path | None = None) -> tuple[str | None, bool | None]:
    """The commit checked out at ``root`` and whether tracked files differ from it
    (``(None, None)`` outside a git checkout)."""
    root = root or project_root()
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None, None
    return head, bool(status.strip())


def library_versions() -> dict[str, str]:
    """Python and the :data:`KEY_LIBRARIES` that are installed."""
    versions = {"python": ".".join(map(str, sys.version_info[:3]))}
    for name in KEY_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def format_summary(result: LabResult) -> str:
    """The printout: the question, each claim with ✓/✗ and its numbers, where to look next."""
    lines = [f"Lab {result.lab} — {result.question}", ""]
    for c in result.claims:
        mark = "✓" if c.passed else "✗"
        tag = "" if c.checked else " [not checked]"
        tag += " [model: a calculation on stated inputs]" if c.kind == "model" else ""
        lines.append(f"  {mark} {c.id}{tag}: {c.statement}")
        numbers = ", ".join(f"{k}={_fmt(v)}" for k, v in c.measured.items())
        if numbers:
            lines.append(f"      {numbers}")
    held = sum(c.passed for c in result.claims)
    lines += ["", f"{held}/{len(result.claims)} claims hold; {AUDIT_LINE}."]
    if result.artifacts:
        lines.append("Look at:")
        lines += [f"  {a}" for a in result.artifacts]
    if result.mlflow.get("experiment"):
        lines.append(
            f"MLflow: experiment {result.mlflow['experiment']!r} "
            f"(run {result.mlflow.get('run_id', '?')}) — {_mlflow_ui()}"
        )
    return "\n".join(lines)


def _mlflow_ui() -> str:
    """Where to see the run: a tracking server's own UI (``MLFLOW_TRACKING_URI`` is its URL,
    e.g. the team stack's), else the local store through ``make mlflow-ui``."""
    import os

    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if uri.startswith(("http://", "https://")):
        return f"its UI: {uri.rstrip('/')}"
    return "`make mlflow-ui`, http://127.0.0.1:5000"


def finish(result: LabResult, out_dir: Path) -> int:
    """Write the summary, print it, and return the exit code (0 only if every claim holds)."""
    path = write_summary(result, out_dir)
    print(format_summary(result))
    print(f"Summary: {artifact_path(path)}")
    return 0 if result.passed else 1


def artifact_path(path: Path) -> str:
    """How a file is listed in ``artifacts``: relative to the repo root when inside it."""
    try:
        return str(path.resolve().relative_to(project_root()))
    except ValueError:
        return str(path.resolve())


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _plain(value: Any) -> Any:
    """Numpy scalars and arrays, tuples and paths → JSON types; NaN → None."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy scalar or array
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def claim_metrics(claims: list[Claim]) -> dict[str, float]:
    """Each claim's verdict and numeric measurements, as MLflow metric names and values."""
    metrics: dict[str, float] = {}
    for c in claims:
        metrics[f"claim.{c.id}.passed"] = float(c.passed)
        for key, value in c.measured.items():
            if isinstance(value, bool | int | float) and math.isfinite(float(value)):
                metrics[f"{c.id}.{key}"] = float(value)
    return metrics


def log_claims(claims: list[Claim]) -> None:
    """Log :func:`claim_metrics` into the active MLflow run."""
    import mlflow

    mlflow.log_metrics(claim_metrics(claims))
