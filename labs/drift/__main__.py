"""``python -m labs.drift`` (``make lab-drift``): run the drift lab with ``params.yaml`` → drift."""

from __future__ import annotations

import sys
import time

from labs.common.params import params_for
from labs.common.paths import reports_dir
from labs.common.results import finish
from labs.drift.lab import DriftParams, run


def main() -> int:
    params = params_for(DriftParams, "drift")
    print(f"Lab drift — seed {params.seed}, batches of {params.batch_rows} rows")
    start = time.perf_counter()

    def echo(line: str) -> None:
        print(f"[{time.perf_counter() - start:5.1f}s] {line}" if line else "", flush=True)

    result = run(params, reports_dir("drift"), echo=echo)
    return finish(result, reports_dir("drift"))


if __name__ == "__main__":
    sys.exit(main())
