"""Kata benchmark: how long a learner waits for `make kata K=<id>` (goal ≤ 3 s) and for
`make kata-check` with the reference solution in place (goal ≤ 30 s on 2 cores), per kata, each
in a fresh process as the make targets run it. Prints figures (also in R, the wall time of
../shared/bench/ref_workload.py now); writes reports/bench/katas.json; exit 1 on a missed goal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
START_GOAL_S, CHECK_GOAL_S = 3.0, 30.0

# A check as `make kata-check` runs it, with the kata's reference solution as the learner's file.
CHECK = """
import shutil, sys, tempfile
from pathlib import Path
from labs.learning.katas.catalogue import kata
from labs.learning.katas.kata import draw_seed, learner_function, run_check

k = kata(sys.argv[1])
path = Path(tempfile.mkdtemp()) / k.file
shutil.copy(k.folder / "solution.py", path)
with learner_function(path, k.function, k.real_component()) as fn:
    results = run_check(k, fn, draw_seed(), learner_file=path)
sys.exit(0 if all(r.passed for r in results) else 1)
"""


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    return time.perf_counter() - start, done


def reference_r() -> float | None:
    ref = ROOT.parent / "shared" / "bench" / "ref_workload.py"
    if not ref.exists():
        return None
    wall, done = timed([PYTHON, str(ref)], dict(os.environ))
    return wall if done.returncode == 0 else None


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from labs.learning.katas.catalogue import KATAS

    r = reference_r()
    figures: dict[str, dict[str, float | bool]] = {}
    missed = []
    print(f"{'kata':40} {'start s':>8} {'check s':>8} {'solved':>7}")
    with tempfile.TemporaryDirectory(prefix="bench-katas-") as tmp:
        env = {
            **os.environ,
            "LABS_ROOT": tmp,  # `start` writes the workspace there, not in the user's checkout
            "MLFLOW_TRACKING_URI": f"sqlite:///{Path(tmp) / 'mlflow.db'}",
        }
        check_env = {k: v for k, v in env.items() if k != "LABS_ROOT"}
        for k in KATAS:
            start_s, started = timed([PYTHON, "-m", "labs.learning.katas.cli", "start", k.id], env)
            check_s, checked = timed([PYTHON, "-c", CHECK, k.id], check_env)
            solved = checked.returncode == 0
            figures[k.id] = {"start_s": start_s, "check_s": check_s, "solved": solved}
            print(f"{k.id:40} {start_s:8.2f} {check_s:8.1f} {'yes' if solved else 'NO':>7}")
            if started.returncode != 0 or start_s > START_GOAL_S or check_s > CHECK_GOAL_S:
                missed.append(k.id)
            if not solved:
                missed.append(k.id)
                print(checked.stdout[-1500:] + checked.stderr[-1500:])
    if r:
        worst = max(f["check_s"] for f in figures.values())  # type: ignore[type-var]
        print(f"\nR = {r:.1f} s: the slowest check is {worst / r:.1f} R, "
              f"the check goal {CHECK_GOAL_S / r:.1f} R here")  # fmt: skip
    print(f"goals: start ≤ {START_GOAL_S:g} s, check ≤ {CHECK_GOAL_S:g} s (2 cores); "
          f"cores here: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")  # fmt: skip
    out = ROOT / "reports" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    data = {"katas": figures, "r_s": r, "start_goal_s": START_GOAL_S, "check_goal_s": CHECK_GOAL_S}
    (out / "katas.json").write_text(json.dumps(data, indent=2) + "\n")
    print(f"written: {out / 'katas.json'}")
    if missed:
        print(f"MISSED: {', '.join(sorted(set(missed)))}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
