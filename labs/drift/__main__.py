"""``python -m labs.drift`` (``make lab-drift``): run the drift lab with ``params.yaml`` → drift."""

import sys

from labs.common.entry import lab_main
from labs.drift.counterfactuals import COUNTERFACTUALS
from labs.drift.lab import DriftParams, run

if __name__ == "__main__":
    sys.exit(lab_main("drift", "drift", DriftParams, run, COUNTERFACTUALS))
