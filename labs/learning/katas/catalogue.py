"""The katas, each built from one lab counterfactual (its starting file is the broken part)."""

from __future__ import annotations

from labs.learning.katas.kata import Kata

KATAS: tuple[Kata, ...] = (
    Kata(
        id="drift-alarm-storm",
        topic="drift",
        difficulty="easy",
        title="The drift monitor pages on-call for nothing",
        scenario=(
            "Since the new drift monitor went live it pages on-call about one morning in "
            "three. Each time the data team finds nothing: the inputs look like last month's, "
            "and the model's ROC-AUC on the labelled days holds at 0.86. The monitor tests 9 "
            "columns of each daily batch (7 features, the churn label, the prediction) at a "
            "false-alarm budget of α = 0.05. Fix its alert rule so that a day without drift "
            "pages at most α of the time — and a day when the inputs really shift still pages."
        ),
        file="threshold.py",
        function="column_threshold",
        component="threshold_rule",
        counterfactual="no-multiple-testing-correction",
        checks=("false_alarm_rate_at_most_alpha", "covariate_detected", "no_drift_nothing_flagged"),
        hints=(
            "How many tests decide whether the monitor pages on one morning? The page fires if "
            "any of them fires.",
            "With k independent tests each at level α, a quiet day pages with probability "
            "1 − (1 − α)^k. Work it out for k = 9 and α = 0.05.",
            "Give each column a share of the budget so that the k shares add up to at most α "
            "(Bonferroni); the p-values are approximate at these batch sizes, so keep a small "
            "margin.",
        ),
        wrong_fixes=("alarm_off", "half_alpha"),
    ),
)


def kata(kata_id: str) -> Kata:
    """The kata ``kata_id``; an error lists the ids there are."""
    from labs.learning.katas.kata import KataError

    for k in KATAS:
        if k.id == kata_id:
            return k
    raise KataError(f"no kata {kata_id!r}; katas: {', '.join(k.id for k in KATAS)}")
