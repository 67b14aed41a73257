"""The lab contract: measured claims → ``summary.json``, a readable printout, an exit code.

A lab builds a :class:`LabResult` from :class:`Claim` objects whose ``measured`` numbers are
the evidence, then calls :func:`finish`. Tests, CI and the evidence index read the same JSON.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labs.common.paths import project_root


@dataclass(frozen=True)
class Claim:
    """One statement of the interview answer, with the numbers that decide it."""

    id: str
    statement: str
    passed: bool
    measured: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class LabResult:
    """Everything a lab run shows: its claims, the files it wrote, its MLflow run."""

    lab: str
    question: str
    claims: list[Claim] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    mlflow: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.claims) and all(c.passed for c in self.claims)

    def claim(self, claim_id: str) -> Claim:
        for c in self.claims:
            if c.id == claim_id:
                return c
        raise KeyError(f"lab {self.lab!r} has no claim {claim_id!r}")

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))


def write_summary(result: LabResult, out_dir: Path) -> Path:
    """Write ``summary.json`` in ``out_dir``; return its path."""
    if not result.claims:
        raise ValueError(f"lab {result.lab!r} produced no claims: nothing was demonstrated")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "summary.json"
    path.write_text(json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n")
    return path


def format_summary(result: LabResult) -> str:
    """The printout: the question, each claim with ✓/✗ and its numbers, where to look next."""
    lines = [f"Lab {result.lab} — {result.question}", ""]
    for c in result.claims:
        mark = "✓" if c.passed else "✗"
        lines.append(f"  {mark} {c.id}: {c.statement}")
        numbers = ", ".join(f"{k}={_fmt(v)}" for k, v in c.measured.items())
        if numbers:
            lines.append(f"      {numbers}")
    held = sum(c.passed for c in result.claims)
    lines += ["", f"{held}/{len(result.claims)} claims hold."]
    if result.artifacts:
        lines.append("Look at:")
        lines += [f"  {a}" for a in result.artifacts]
    if result.mlflow.get("experiment"):
        lines.append(
            f"MLflow: experiment {result.mlflow['experiment']!r} "
            f"(run {result.mlflow.get('run_id', '?')}) — `make mlflow-ui`, http://127.0.0.1:5000"
        )
    return "\n".join(lines)


def finish(result: LabResult, out_dir: Path) -> int:
    """Write the summary, print it, and return the exit code (0 only if every claim holds)."""
    path = write_summary(result, out_dir)
    print(format_summary(result))
    print(f"Summary: {artifact_path(path)}")
    return 0 if result.passed else 1


def lab_main(topic: str, section: str, params_cls: type, run: Callable[..., LabResult]) -> int:
    """The body of every ``python -m labs.<topic>``: parameters from ``params.yaml`` →
    ``section``, progress lines stamped with the seconds since start, then :func:`finish`.

    Exit 0 if every claim holds, 1 if one fails, 2 with a one-line message for bad parameters
    or a registry move refused on purpose."""
    from labs.common.params import ParamsError, params_for
    from labs.common.paths import reports_dir
    from labs.common.registry import RegistryError

    try:
        params = params_for(params_cls, section)
    except (ParamsError, ValueError, TypeError) as err:  # a missing key or a value out of range
        print(f"lab {topic}: error in params.yaml → {section}: {err}", file=sys.stderr)
        return 2
    start = time.perf_counter()

    def echo(line: str) -> None:
        print(f"[{time.perf_counter() - start:5.1f}s] {line}" if line else "", flush=True)

    out_dir = reports_dir(topic)
    try:
        result = run(params, out_dir, echo=echo)
    except RegistryError as err:  # a registry move refused on purpose; bugs keep their traceback
        print(f"lab {topic}: error: {err}", file=sys.stderr)
        return 2
    return finish(result, out_dir)


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
