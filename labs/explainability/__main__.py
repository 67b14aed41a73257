"""``python -m labs.explainability`` (``make lab-explainability``): the lab, ``params.yaml`` →
explainability."""

import sys

from labs.common.entry import lab_main
from labs.explainability.counterfactuals import COUNTERFACTUALS
from labs.explainability.lab import ExplainabilityParams, run

if __name__ == "__main__":
    sys.exit(
        lab_main("explainability", "explainability", ExplainabilityParams, run, COUNTERFACTUALS)
    )
