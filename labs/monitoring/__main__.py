"""``python -m labs.monitoring`` (``make lab-monitoring``): run the monitoring lab with
``params.yaml`` → monitoring; ``--audit``, ``--counterfactual NAME`` run its counterfactuals."""

import sys

from labs.common.entry import lab_main
from labs.monitoring.counterfactuals import COUNTERFACTUALS
from labs.monitoring.lab import run
from labs.monitoring.params import MonitoringParams

if __name__ == "__main__":
    sys.exit(lab_main("monitoring", "monitoring", MonitoringParams, run, COUNTERFACTUALS))
