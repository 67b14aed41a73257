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
    Kata(
        id="data-quality-unit-change",
        topic="data_quality",
        difficulty="medium",
        title="The billing export changed its units overnight",
        scenario=(
            "At 06:00 upstream shipped a new billing export. The gate quarantined the morning "
            "batch: monthly_charges now arrive about a hundred times larger than last month's, "
            "and one contract category has a new name. A hotfix went out at 09:00 — it converts "
            "each batch back before scoring, following the export's changelog — yet the churn "
            "scores after it are still far off the pre-incident ones, and the data version it "
            "wrote does not reproduce last month's ROC-AUC. The next export may use another "
            "unit again. Make the hotfix bring any such batch back to the model's units."
        ),
        file="hotfix.py",
        function="hotfix_units",
        component="hotfix",
        counterfactual="hotfix-wrong-factor",
        checks=("hotfix_restores_predictions", "versioned_data_reproduces_metric"),
        hints=(
            "Compare the hotfixed charges with the reference medians the function is given. "
            "Is the changelog's factor the one in the data?",
            "Estimate the factor from the batch itself: its median against the reference median.",
            "Units differ by powers of ten; a real drift moves a median by far less than ×√10. "
            "Snap the ratio of medians to the nearest power of ten, so an unchanged batch "
            "gets factor 1 and the original values come back exactly.",
        ),
        wrong_fixes=("hundred", "rescale_to_median"),
        # the checked export's unit is drawn: a factor read off this incident fails the next one
        draws={"incident_factor": (10.0, 10000.0)},
    ),
    Kata(
        id="explainability-cancelling-importance",
        topic="explainability",
        difficulty="easy",
        title="The model card says the contract does not matter",
        scenario=(
            "Sales asks why the model card ranks contract type near the bottom of the feature "
            "importances, when every churn analysis of the last three years found it the "
            "strongest driver — and when you look at single customers' explanations it moves "
            "their risk more than anything else, down for two-year contracts, up for "
            "month-to-month. The importances are computed from the SHAP values of 2,000 "
            "customers. Make the global importance say which columns drive predictions."
        ),
        file="importance.py",
        function="global_importance",
        component="summary",
        counterfactual="signed-mean-importance",
        checks=("strongest_driver_first", "permutation_agrees_with_shap"),
        hints=(
            "Look at one column's SHAP values over all customers: what are their signs?",
            "What happens to the average of +0.3 for half the customers and −0.3 for the other "
            "half?",
            "Importance is about the size of a column's pushes, whatever their direction: "
            "average their magnitudes.",
        ),
        wrong_fixes=("abs_of_mean", "largest_push_up"),
    ),
    Kata(
        id="security-reversible-pseudonyms",
        topic="security",
        difficulty="easy",
        title="The analytics store's pseudonyms give the customers back",
        scenario=(
            "An internal audit took the analytics store's 'pseudonymised' e-mail column and a "
            "list of plausible addresses (first.last@ a few providers), and got most customers "
            "back by name in well under a second. The pseudonymisation key, rotated last "
            "quarter, changed none of the stored values. The pseudonyms must keep joining "
            "tickets to customers. Fix the pseudonym function."
        ),
        file="pseudonym.py",
        function="pseudonym",
        component="pseudonym",
        counterfactual="plain-sha256-pseudonyms",
        checks=("plain_hash_reversed_hmac_not", "pseudonyms_still_join"),
        hints=(
            "The function is given a key. Does its output depend on it?",
            "Anyone can compute SHA-256 of a guessed e-mail: a hash nobody else can compute "
            "needs a secret inside it.",
            "Use a keyed hash (HMAC-SHA256 with the key): deterministic, so joins still work, "
            "and not reversible without the key.",
        ),
        wrong_fixes=("fixed_salt", "random_token"),
    ),
    Kata(
        id="cicd-lucky-promotions",
        topic="cicd",
        difficulty="medium",
        title="CI promotes models that are no better",
        scenario=(
            "Last quarter the CI gate promoted 14 new models to staging. Re-running the same "
            "commits with other seeds, half of those 'improvements' turned into regressions: "
            "the changes were no-ops (a refactoring, a logging change) that beat the champion's "
            "ROC-AUC by a few thousandths by luck. Meanwhile a real feature fix must still get "
            "through, and a worse model must still fail. Fix how the gate sets its margin."
        ),
        file="margin.py",
        function="noise_margin",
        component="margin_rule",
        counterfactual="no-promotion-margin",
        checks=("margin_from_seed_noise", "good_change_staged", "degrading_changes_fail"),
        hints=(
            "How much does the champion's ROC-AUC move when the same code is retrained with "
            "another seed? The gate is given those scores.",
            "A candidate is one retrain: compare its gain with the spread of one retrain's "
            "score, not with zero.",
            "Margin = sigmas × the standard deviation of the seed scores (the sample SD of "
            "single retrains, not of their mean).",
        ),
        wrong_fixes=("fixed_margin", "spread_of_means"),
        # the lab's own sizes, not the audit's: on 375 "notebook" rows the offline-gap floor
        # failed the bootstrap champion itself on some seeds
        params={"train_rows": 3000, "holdout_rows": 2000, "new_data_rows": 3000},
        repeats=5,  # the no-op promotion rate over 20 pairs misses its target 1 seed in 10
        # on ~1 seed in 30 the champion's own bootstrap gate fails (offline gap 0.0503 > 0.05)
        unusable_seed=("NotStagedError",),
    ),
    Kata(
        id="features-future-leak",
        topic="features",
        difficulty="easy",
        title="Offline the model is great; in production it is not",
        scenario=(
            "The new churn model scored an offline ROC-AUC well above the old one, and "
            "support_calls became its top feature. Two weeks after launch its production "
            "ROC-AUC is clearly lower than offline, on the same kind of customers. The "
            "training rows count each customer's support calls from the call log, as of their "
            "decision date. Fix how the training rows get their support_calls."
        ),
        file="training_rows.py",
        function="training_rows",
        component="training_join",
        counterfactual="asof-join-nearest",
        checks=("asof_join_honest",),
        hints=(
            "For one churned customer, list their calls and their decision date. Which call "
            "does the training row count?",
            "A customer who calls to cancel does so after the decision date — production never "
            "knew about that call when it scored them.",
            "Take only the calls strictly before the decision date: an as-of join looking "
            "backward.",
        ),
        wrong_fixes=("forward", "count_every_call"),
    ),
    Kata(
        id="reproducibility-column-order",
        topic="reproducibility",
        difficulty="easy",
        title="Same commit, same data, same seed — another model file",
        scenario=(
            "A reviewer re-ran last week's training from the same commit, on the same "
            "DVC-pinned data, with the same seed: the metrics agree to the fourth decimal, but "
            "the model file's SHA-256 differs from the registered one, and re-running it twice "
            "more gives two more hashes. The registry refuses to serve a model whose bytes it "
            "cannot verify. The training step's column handling was rewritten last sprint. "
            "Make the same inputs give the same model file."
        ),
        file="columns.py",
        function="column_order",
        component="column_order",
        counterfactual="order-left-to-chance",
        checks=("set_order_depends_on_hash_seed", "same_seed_same_bytes"),
        hints=(
            "Run `python -c \"print(list({'a', 'b', 'c'}))\"` three times. Same output?",
            "A set of strings iterates in an order that depends on PYTHONHASHSEED, which is "
            "random per process unless it is set.",
            "Do not keep an order nobody chose: choose one that depends on the names alone.",
        ),
        wrong_fixes=("by_hash", "shuffle_seeded"),
    ),
)


def kata(kata_id: str) -> Kata:
    """The kata ``kata_id``; an error lists the ids there are."""
    from labs.learning.katas.kata import KataError

    for k in KATAS:
        if k.id == kata_id:
            return k
    raise KataError(f"no kata {kata_id!r}; katas: {', '.join(k.id for k in KATAS)}")
