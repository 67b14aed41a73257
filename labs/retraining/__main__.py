"""``python -m labs.retraining`` (``make lab-retraining``)."""

from __future__ import annotations

import sys
import time

from labs.common.params import params_for
from labs.common.paths import reports_dir
from labs.common.results import finish
from labs.retraining.lab import RetrainingLabParams, run


def main() -> int:
    params = params_for(RetrainingLabParams, "retraining_lab")
    start = time.perf_counter()

    def echo(line: str) -> None:
        print(f"[{time.perf_counter() - start:5.1f}s] {line}" if line else "", flush=True)

    result = run(params, reports_dir("retraining"), echo=echo)
    return finish(result, reports_dir("retraining"))


if __name__ == "__main__":
    sys.exit(main())
