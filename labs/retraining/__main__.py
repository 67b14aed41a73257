"""``python -m labs.retraining`` (``make lab-retraining``)."""

import sys

from labs.common.entry import lab_main
from labs.retraining.lab import RetrainingLabParams, run

if __name__ == "__main__":
    sys.exit(lab_main("retraining", "retraining_lab", RetrainingLabParams, run))
