"""``python -m labs.cicd`` (``make lab-cicd``): the lab, ``params.yaml`` → cicd."""

import sys

from labs.cicd.counterfactuals import COUNTERFACTUALS
from labs.cicd.lab import CicdParams, run
from labs.common.entry import lab_main

if __name__ == "__main__":
    sys.exit(lab_main("cicd", "cicd", CicdParams, run, COUNTERFACTUALS))
