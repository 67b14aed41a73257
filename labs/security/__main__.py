"""``python -m labs.security`` (``make lab-security``): the lab, ``params.yaml`` → security."""

import sys

from labs.common.entry import lab_main
from labs.security.counterfactuals import COUNTERFACTUALS
from labs.security.lab import SecurityParams, run

if __name__ == "__main__":
    sys.exit(lab_main("security", "security", SecurityParams, run, COUNTERFACTUALS))
