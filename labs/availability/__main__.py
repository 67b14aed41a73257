"""``python -m labs.availability`` (``make lab-availability``): run the availability lab with
``params.yaml`` → availability."""

import sys

from labs.availability.counterfactuals import COUNTERFACTUALS
from labs.availability.lab import run
from labs.availability.params import AvailabilityParams
from labs.common.entry import lab_main

if __name__ == "__main__":
    sys.exit(lab_main("availability", "availability", AvailabilityParams, run, COUNTERFACTUALS))
