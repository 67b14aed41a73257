"""``python -m labs.data_quality`` (``make lab-data_quality``): run the lab with
``params.yaml`` → data_quality."""

import sys

from labs.common.entry import lab_main
from labs.data_quality.counterfactuals import COUNTERFACTUALS
from labs.data_quality.lab import run
from labs.data_quality.params import DataQualityParams

if __name__ == "__main__":
    sys.exit(lab_main("data_quality", "data_quality", DataQualityParams, run, COUNTERFACTUALS))
