"""``python -m labs.testing`` (``make lab-testing``): the lab, ``params.yaml`` → testing."""

import sys

from labs.common.entry import lab_main
from labs.testing.counterfactuals import COUNTERFACTUALS
from labs.testing.lab import TestingParams, run

if __name__ == "__main__":
    sys.exit(lab_main("testing", "testing", TestingParams, run, COUNTERFACTUALS))
