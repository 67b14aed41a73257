"""``python -m labs.features`` (``make lab-features``): the lab, ``params.yaml`` → features."""

import sys

from labs.common.entry import lab_main
from labs.features.counterfactuals import COUNTERFACTUALS
from labs.features.lab import FeaturesParams, run

if __name__ == "__main__":
    sys.exit(lab_main("features", "features", FeaturesParams, run, COUNTERFACTUALS))
