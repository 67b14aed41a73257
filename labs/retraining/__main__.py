"""``python -m labs.retraining`` (``make lab-retraining``); ``--audit``, ``--counterfactual NAME``
run its counterfactuals."""

import sys

from labs.common.entry import lab_main
from labs.retraining.counterfactuals import COUNTERFACTUALS
from labs.retraining.lab import RetrainingLabParams, run

if __name__ == "__main__":
    sys.exit(lab_main("retraining", "retraining_lab", RetrainingLabParams, run, COUNTERFACTUALS))
