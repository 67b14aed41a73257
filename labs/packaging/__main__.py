"""``python -m labs.packaging`` (``make lab-packaging``): the lab, ``params.yaml`` → packaging."""

import sys

from labs.common.entry import lab_main
from labs.packaging.counterfactuals import COUNTERFACTUALS
from labs.packaging.lab import PackagingParams, run

if __name__ == "__main__":
    sys.exit(lab_main("packaging", "packaging", PackagingParams, run, COUNTERFACTUALS))
