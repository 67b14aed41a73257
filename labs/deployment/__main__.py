"""``python -m labs.deployment`` (``make lab-deployment``): run the deployment lab with
``params.yaml`` → deployment."""

import sys

from labs.common.entry import lab_main
from labs.deployment.counterfactuals import COUNTERFACTUALS
from labs.deployment.lab import run
from labs.deployment.params import DeploymentParams

if __name__ == "__main__":
    sys.exit(lab_main("deployment", "deployment", DeploymentParams, run, COUNTERFACTUALS))
