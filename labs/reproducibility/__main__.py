"""``python -m labs.reproducibility`` (``make lab-reproducibility``), params.yaml section."""

import sys

from labs.common.entry import lab_main
from labs.reproducibility.counterfactuals import COUNTERFACTUALS
from labs.reproducibility.lab import run
from labs.reproducibility.params import ReproducibilityParams

if __name__ == "__main__":
    sys.exit(
        lab_main("reproducibility", "reproducibility", ReproducibilityParams, run, COUNTERFACTUALS)
    )
