"""What the testing lab leaves for people: the printed table (one row per kind of test), the
stress-ramp plot, the A/B false-positive plot and ``details.json`` with every number."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from labs.testing.claims import stress_verdicts, unit_verdict


def kind_rows(results: dict[str, Any], params: Any) -> list[dict[str, str]]:
    """One row per kind of test: the planted defect, how each candidate fared, the numbers."""
    unit = {k: unit_verdict(v) for k, v in results["unit"].items()}
    g, inter, ab = results["gate"], results["integration"], results["ab"]
    stress = stress_verdicts(results, params)
    rg, rb = results["robustness"]["correct"], results["robustness"]["overfit_unvalidated"]
    bad_gate = g["verdicts"]["degraded"]

    def verdict(passed: bool) -> str:
        return "passes" if passed else "FAILS"

    def knee(users: int | None) -> str:
        return f"{users} users" if users is not None else f"> {max(params.stress_users)} users"

    return [
        {
            "test": "unit (hypothesis)",
            "defect planted": "batch statistics + category order",
            "correct": verdict(unit["correct"]["passed"]),
            "defective": verdict(unit["batch_statistics"]["passed"]),
            "numbers": "defective fails " + ", ".join(unit["batch_statistics"]["failed_tests"]),
        },
        {
            "test": "integration (HTTP)",
            "defect planted": "trained on a renamed column",
            "correct": verdict(inter["correct"]["failed_requests"] == 0),
            "defective": verdict(inter["renamed_column"]["failed_requests"] == 0),
            "numbers": f"max |Δp| {inter['correct']['max_abs_dp']:.1g}; defective "
            f"{inter['renamed_column']['failed_requests']}/{inter['renamed_column']['requests']}"
            " requests failed",
        },
        {
            "test": "performance gate",
            "defect planted": f"{params.label_noise:.0%} scrambled labels",
            "correct": verdict(g["verdicts"]["correct"].passed),
            "defective": verdict(bad_gate.passed),
            "numbers": f"margin {g['thresholds']['margin']:.4f} (2σ); ECE "
            f"{g['verdicts']['correct'].metrics['calibration_error']:.3f} vs "
            f"{bad_gate.metrics['calibration_error']:.3f}",
        },
        {
            "test": "stress (locust)",
            "defect planted": f"{stress['slow_copies']}-copy bagged ensemble "
            f"({stress['slow_one_row_ms']:.0f} ms a call)",
            "correct": f"knee {knee(stress['correct_knee_users'])}",
            "defective": f"knee {knee(stress['slow_knee_users'])}",
            "numbers": f"p99 at {stress['users'][-1]} users: "
            f"{stress['correct_p99_ms'][-1]:.0f} vs {stress['slow_p99_ms'][-1]:.0f} ms",
        },
        {
            "test": "A/B (simulated)",
            "defect planted": f"peeking at {params.ab_looks} looks",
            "correct": f"A/A FPR {ab['aa_fixed'].value:.3f}",
            "defective": f"A/A FPR {ab['aa_peeking'].value:.3f}",
            "numbers": f"n/arm {ab['n_per_arm']}, power {ab['power_fixed'].value:.3f}; "
            f"Pocock FPR {ab['aa_pocock'].value:.3f}",
        },
        {
            "test": "robustness (CheckList)",
            "defect planted": "overfit tree, no validation",
            "correct": verdict(rg["corrupt"]["refused"] == rg["corrupt"]["cases"]),
            "defective": verdict(rb["corrupt"]["refused"] == rb["corrupt"]["cases"]),
            "numbers": f"flips {rg['invariance']['flipped_share']:.1%} vs "
            f"{rb['invariance']['flipped_share']:.1%}; more calls lower risk "
            f"{rg['directional']['violation_share']:.1%} vs "
            f"{rb['directional']['violation_share']:.1%}; corrupt: "
            f"{rb['corrupt']['crashed']} crash, {rb['corrupt']['silent']} silent",
        },
    ]


def matrix_rows(table: dict[str, dict[str, bool | None]]) -> list[dict[str, str]]:
    """One row per candidate, one column per kind of test: FAILS it, passes, or not run."""
    from labs.testing.matrix import FAULTS, KINDS

    def cell(fails: bool | None) -> str:
        return "—" if fails is None else ("FAILS" if fails else "passes")

    return [
        {"candidate": row if row == "correct" else f"{row} (for {FAULTS[row]})"}
        | {kind: cell(cells[kind]) for kind in KINDS}
        for row, cells in table.items()
    ]


def format_table(results: dict[str, Any], params: Any) -> str:
    from labs.common.tables import text_table

    return (
        text_table(kind_rows(results, params), title="Six kinds of tests, planted defects:")
        + "\n\n"
        + text_table(
            matrix_rows(results["matrix"]),
            title="Each kind on each planted fault (— not run: needs a server of its own):",
        )
    )


def plot_stress(ramps: dict[str, Any], budget_ms: float, path: Path) -> Path:
    """p99 latency per step of the ramp, both candidates, with the budget line."""
    from labs.common.plots import new_figure, save_figure

    fig, ax = new_figure()
    labels = (("correct", "correct (compiled scorer)"), ("slow_ensemble", "bagged ensemble"))
    for name, label in labels:
        steps = ramps[name].steps
        ax.plot([s["users"] for s in steps], [s["p99_ms"] for s in steps], "o-", label=label)
    ax.axhline(budget_ms, color="#c44e52", linestyle="--", label=f"p99 budget {budget_ms:g} ms")
    ax.set_xscale("log", base=2)
    users = [s["users"] for s in ramps["correct"].steps]
    ax.set_xticks(users, [str(u) for u in users])
    ax.set_yscale("log")
    ax.set_xlabel("concurrent users (locust step)")
    ax.set_ylabel("p99 latency (ms)")
    ax.set_title("Stress ramp: where p99 leaves its budget")
    ax.legend()
    save_figure(fig, path)
    return path


def plot_ab(ab: dict[str, Any], alpha: float, power: float, path: Path) -> Path:
    """False-positive rates (A/A fixed horizon, peeking, Pocock) and power, with 95 % CIs."""
    from labs.common.plots import new_figure, save_figure

    fig, (left, right) = new_figure(1, 2)
    names = [("aa_fixed", "fixed horizon"), ("aa_peeking", "peeking"), ("aa_pocock", "Pocock")]
    rates = [ab[k] for k, _ in names]
    left.bar(
        [label for _, label in names],
        [r.value for r in rates],
        yerr=[[r.value - r.low for r in rates], [r.high - r.value for r in rates]],
        capsize=6,
    )
    left.axhline(alpha, color="#c44e52", linestyle="--", label=f"α = {alpha:g}")
    left.set_ylim(0, max(0.3, max(r.high for r in rates) * 1.1))
    left.set_ylabel("A/A experiments 'significant'")
    left.set_title("A/A false positives (95 % CI)")
    left.legend()
    powers = [ab["power_fixed"], ab["power_pocock"]]
    right.bar(
        ["fixed horizon", "Pocock"],
        [r.value for r in powers],
        yerr=[[r.value - r.low for r in powers], [r.high - r.value for r in powers]],
        capsize=6,
    )
    right.axhline(power, color="#c44e52", linestyle="--", label=f"planned power {power:g}")
    right.set_ylim(0, 1)
    right.set_ylabel("true uplift detected")
    right.set_title(f"Power at n = {ab['n_per_arm']} per arm")
    right.legend()
    save_figure(fig, path)
    return path


def write_details(results: dict[str, Any], path: Path) -> Path:
    """Every measured number, as JSON."""
    path.write_text(json.dumps(_plain(results), indent=1, allow_nan=False) + "\n")
    return path


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalars
        return _plain(value.item())
    return value
