"""Foundation benchmark: set-up and pipeline times. Prints figures; writes reports/bench/.

Goals (from the foundation issue, checked by eye, never asserted): fresh-clone `make setup`
≤ 90 s with a warm package cache; no-op `make setup` ≤ 3 s; `import labs.common` ≤ 1 s;
`dvc repro` full and no-op.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        output = done.stdout[-3000:] + done.stderr[-3000:]
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{output}")
    return time.perf_counter() - start


def main() -> int:
    figures: dict[str, float] = {}
    venv_python = str(ROOT / ".venv" / "bin" / "python")
    figures["import_labs_common_s"] = timed(
        [venv_python, "-c", "import labs.common, labs.common.paths, labs.common.params"], ROOT
    )
    heavy = (
        subprocess.run(
            [
                venv_python,
                "-c",
                "import sys, labs.common.results, labs.common.tracking;"
                "print(int(any(m in sys.modules for m in ('mlflow','evidently','prefect'))))",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        == "1"
    )
    figures["noop_make_setup_s"] = timed(["make", "-s", "setup"], ROOT)

    with tempfile.TemporaryDirectory(prefix="bench-clone-") as tmp:
        clone = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{Path(tmp) / 'mlflow.db'}"}
        env.pop("VIRTUAL_ENV", None)
        print("fresh clone: make setup (venv + dvc repro) …", flush=True)
        figures["fresh_clone_make_setup_s"] = timed(["make", "-s", "setup"], clone, env)
        figures["fresh_clone_noop_make_setup_s"] = timed(["make", "-s", "setup"], clone, env)
        dvc = str(clone / ".venv" / "bin" / "dvc")
        env["PATH"] = f"{clone / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
        figures["dvc_repro_noop_s"] = timed([dvc, "repro"], clone, env)
        shutil.rmtree(clone / "data" / "raw")
        figures["dvc_repro_full_s"] = timed([dvc, "repro", "--force"], clone, env)
        figures["venv_size_mb"] = (
            sum(f.stat().st_size for f in (clone / ".venv").rglob("*") if f.is_file()) / 1e6
        )

    print(f"import labs.common pulls MLflow, Evidently or Prefect: {'yes' if heavy else 'no'}")
    goals = {
        "fresh_clone_make_setup_s": 90,
        "noop_make_setup_s": 3,
        "fresh_clone_noop_make_setup_s": 3,
        "import_labs_common_s": 1,
    }
    print(f"{'figure':34} {'value':>10}  goal")
    for key, value in figures.items():
        goal = goals.get(key)
        verdict = "" if goal is None else (f"≤ {goal}  " + ("ok" if value <= goal else "MISSED"))
        print(f"{key:34} {value:10.2f}  {verdict}")
    out = ROOT / "reports" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "foundation.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written: {out / 'foundation.json'}")
    missed = [key for key, goal in goals.items() if key in figures and figures[key] > goal]
    return 1 if missed else 0  # a missed goal fails `make bench`


if __name__ == "__main__":
    sys.exit(main())
