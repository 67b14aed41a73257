"""``python -m labs.scaling`` (``make lab-scaling``): the lab, ``params.yaml`` → scaling."""

import sys

from labs.common.entry import lab_main
from labs.scaling.counterfactuals import COUNTERFACTUALS
from labs.scaling.lab import run
from labs.scaling.params import ScalingParams

if __name__ == "__main__":
    sys.exit(lab_main("scaling", "scaling", ScalingParams, run, COUNTERFACTUALS))
