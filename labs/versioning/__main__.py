"""``python -m labs.versioning`` (``make lab-versioning``): params.yaml → versioning."""

import sys

from labs.common.entry import lab_main
from labs.versioning.counterfactuals import COUNTERFACTUALS
from labs.versioning.lab import VersioningParams, run

if __name__ == "__main__":
    sys.exit(lab_main("versioning", "versioning", VersioningParams, run, COUNTERFACTUALS))
