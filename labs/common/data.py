"""The toy customer-churn data: one deterministic generator with a knob for every lab.

Each feature is drawn from its own random stream (a child of the seed), so turning one knob
never changes the values of a column it does not touch: a covariate shift on
``monthly_charges`` leaves every other column identical, concept drift leaves *all* features
identical and changes only the churn relationship. That makes "this knob has its
intended effect and no other" testable exactly, not only statistically.

The label comes from a known logistic model, P(churn | x) = sigmoid(intercept + w·x). Concept
drift mixes in a second set of weights: "a share of customers now churn for new reasons".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import pandas as pd

TARGET = "churned"
DAY = "day"
# What a served or scored model adds to a row: the churn probability and the decided label.
PROBA = "churn_probability"
LABEL = "predicted_churn"

NUMERIC_FEATURES: tuple[str, ...] = ("tenure_months", "monthly_charges", "support_calls", "age")
CATEGORICAL_FEATURES: tuple[str, ...] = ("contract", "payment_method", "internet_service")
FEATURES: tuple[str, ...] = NUMERIC_FEATURES + CATEGORICAL_FEATURES
INTEGER_FEATURES: tuple[str, ...] = ("tenure_months", "support_calls", "age")
# Categorical columns whose categories have an order (a contract's length), lowest first.
ORDINAL_FEATURES: dict[str, tuple[str, ...]] = {
    "contract": ("month-to-month", "one-year", "two-year"),
}

# Reference category probabilities (the training distribution).
CATEGORIES: dict[str, dict[str, float]] = {
    "contract": {"month-to-month": 0.5, "one-year": 0.3, "two-year": 0.2},
    "payment_method": {
        "electronic-check": 0.35,
        "credit-card": 0.25,
        "bank-transfer": 0.25,
        "mailed-check": 0.15,
    },
    "internet_service": {"fiber": 0.45, "dsl": 0.4, "none": 0.15},
}

# Valid ranges of the numeric features: the schema a validation gate checks.
NUMERIC_RANGES: dict[str, tuple[float, float]] = {
    "tenure_months": (0, 240),
    "monthly_charges": (0.0, 500.0),
    "support_calls": (0, 50),
    "age": (18, 100),
}

# Weights of the churn model. Numeric weights act on centred values.
_CENTRES = {"tenure_months": 24.0, "monthly_charges": 70.0, "support_calls": 1.5, "age": 45.0}
_REFERENCE_CONCEPT = {
    "intercept": -2.09,
    "tenure_months": -0.05,
    "monthly_charges": 0.03,
    "support_calls": 0.45,
    "age": 0.0,
    "contract": {"month-to-month": 1.3, "one-year": -0.3, "two-year": -1.6},
    "payment_method": {"electronic-check": 0.5},
    "internet_service": {"fiber": 0.3},
}
# "Customers churn for new reasons": a competitor courts long-standing, older customers on
# long contracts; price and support calls stop mattering. Same features, new relationship.
_DRIFTED_CONCEPT = {
    "intercept": -0.9,
    "tenure_months": 0.045,
    "monthly_charges": -0.03,
    "support_calls": -0.2,
    "age": 0.04,
    "contract": {"month-to-month": -1.2, "one-year": 0.4, "two-year": 1.4},
    "payment_method": {"electronic-check": -0.4},
    "internet_service": {"fiber": -0.3},
}

IncidentKind = Literal[
    "rename_column", "drop_column", "unit_change", "missing_values", "out_of_range"
]
INCIDENT_KINDS: tuple[str, ...] = get_args(IncidentKind)


@dataclass(frozen=True)
class Incident:
    """An upstream data incident applied after the labels are drawn (the label stays true).

    ``rename_column`` renames ``column`` to ``new_name``; ``drop_column`` removes it;
    ``unit_change`` multiplies a numeric column by ``factor`` (e.g. euros → cents);
    ``missing_values`` blanks a ``rate`` share of its rows; ``out_of_range`` sets a ``rate``
    share of a numeric column to ``-1 × factor`` (below any valid value).
    """

    kind: IncidentKind
    column: str
    rate: float = 1.0
    factor: float = 100.0
    new_name: str | None = None


@dataclass(frozen=True)
class ScheduledEvent:
    """A change in the production stream from ``start_day`` until ``end_day`` (inclusive)."""

    start_day: int
    end_day: int | None = None
    covariate_shift: Mapping[str, float | Mapping[str, float]] = field(default_factory=dict)
    concept_drift: float = 0.0
    churn_rate: float | None = None
    incidents: Sequence[Incident] = ()

    def active(self, day: int) -> bool:
        return day >= self.start_day and (self.end_day is None or day <= self.end_day)


def make_churn_data(
    n: int,
    seed: int = 0,
    *,
    covariate_shift: Mapping[str, float | Mapping[str, float]] | None = None,
    concept_drift: float = 0.0,
    churn_rate: float | None = None,
    incidents: Sequence[Incident] = (),
) -> pd.DataFrame:
    """Draw ``n`` customers with a ``churned`` label; every knob defaults to "no change".

    - ``covariate_shift``: per column, a number added to a numeric column (in its own units)
      or new category probabilities for a categorical column. P(churn | x) is unchanged.
    - ``concept_drift`` in [0, 1]: the share of customers who churn for the new reasons (0 is
      the reference relationship). P(x) and the base rate are unchanged (the features are
      bit-identical for the same seed).
    - ``churn_rate`` in (0, 1): prior (label) shift. Rows are drawn class by class so that
      P(x | churn) stays as it is and only the base rate moves.
    - ``incidents``: upstream breakages applied last (see :class:`Incident`).
    """
    _check_count("n", n)
    shift = _check_covariate_shift(covariate_shift or {})
    _check_probability("concept_drift", concept_drift)
    if churn_rate is not None and not 0.0 < churn_rate < 1.0:
        raise ValueError(f"churn_rate must be in the open interval (0, 1), got {churn_rate!r}")
    for incident in incidents:
        _check_incident(incident)

    if churn_rate is None:
        frame = _draw(n, np.random.SeedSequence(seed), shift, concept_drift)
    else:
        frame = _draw_with_prior(n, seed, shift, concept_drift, churn_rate)
    for incident in incidents:
        frame = apply_incident(frame, incident, seed)
    return frame


def make_production_stream(
    n_days: int,
    rows_per_day: int,
    seed: int = 0,
    events: Sequence[ScheduledEvent] = (),
) -> pd.DataFrame:
    """Daily production batches (column ``day`` = 0 … n_days-1) with scheduled events.

    Each day has its own seed, so day 12 is the same rows whether 15 or 30 days are drawn.
    Where events overlap, later events override earlier ones knob by knob.
    """
    _check_count("n_days", n_days)
    _check_count("rows_per_day", rows_per_day)
    for event in events:
        if event.start_day < 0 or (event.end_day is not None and event.end_day < event.start_day):
            raise ValueError(
                f"ScheduledEvent days must satisfy 0 <= start_day <= end_day, "
                f"got start_day={event.start_day}, end_day={event.end_day}"
            )
    batches = []
    for day in range(n_days):
        shift: dict[str, float | Mapping[str, float]] = {}
        concept, rate, incidents = 0.0, None, []
        for event in events:
            if event.active(day):
                shift.update(event.covariate_shift)
                concept = event.concept_drift or concept
                rate = event.churn_rate if event.churn_rate is not None else rate
                incidents.extend(event.incidents)
        batch = make_churn_data(
            rows_per_day,
            seed=_day_seed(seed, day),
            covariate_shift=shift,
            concept_drift=concept,
            churn_rate=rate,
            incidents=incidents,
        )
        batch.insert(0, DAY, day)
        batches.append(batch)
    return pd.concat(batches, ignore_index=True)


def churn_probability(frame: pd.DataFrame, concept_drift: float = 0.0) -> np.ndarray:
    """The true P(churn | x) of the generator for the given features (the Bayes model)."""
    _check_probability("concept_drift", concept_drift)
    # A mixture, not a blend of weights: a share ``concept_drift`` of customers follows the new
    # reasons. Both concepts have the same base rate, so the churn rate does not move with it.
    ref = _sigmoid(_logit(frame, _REFERENCE_CONCEPT))
    new = _sigmoid(_logit(frame, _DRIFTED_CONCEPT))
    return (1.0 - concept_drift) * ref + concept_drift * new


def apply_incident(frame: pd.DataFrame, incident: Incident, seed: int = 0) -> pd.DataFrame:
    """Return a copy of ``frame`` with one upstream incident applied."""
    _check_incident(incident)
    if incident.column not in frame.columns:
        raise ValueError(
            f"incident column {incident.column!r} is not in the frame; "
            f"columns: {list(frame.columns)}"
        )
    out = frame.copy()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7919]))
    hit = rng.random(len(out)) < incident.rate
    if incident.kind == "rename_column":
        return out.rename(columns={incident.column: incident.new_name})
    if incident.kind == "drop_column":
        return out.drop(columns=[incident.column])
    if incident.kind == "unit_change":
        out[incident.column] = out[incident.column] * incident.factor
        return out
    if incident.kind == "missing_values":
        out[incident.column] = out[incident.column].astype(object).where(~hit, None)
        if incident.column in NUMERIC_FEATURES:
            out[incident.column] = pd.to_numeric(out[incident.column])
        return out
    # out_of_range: a value below the column's valid minimum
    out[incident.column] = out[incident.column].astype(float)
    out.loc[hit, incident.column] = -1.0 * incident.factor
    return out


# --- drawing ----------------------------------------------------------------------------


def _draw(
    n: int,
    seq: np.random.SeedSequence,
    shift: Mapping[str, float | Mapping[str, float]],
    concept_drift: float,
) -> pd.DataFrame:
    # One child stream per column, in a fixed order, plus one for the label noise.
    streams = dict(zip((*FEATURES, TARGET), seq.spawn(len(FEATURES) + 1), strict=True))
    rng = {name: np.random.default_rng(s) for name, s in streams.items()}
    cols: dict[str, np.ndarray] = {
        "tenure_months": np.floor(rng["tenure_months"].gamma(2.0, 12.0, n)),
        "monthly_charges": np.clip(rng["monthly_charges"].normal(70.0, 20.0, n), 15.0, None),
        "support_calls": rng["support_calls"].poisson(1.5, n).astype(float),
        "age": np.clip(np.round(rng["age"].normal(45.0, 13.0, n)), 18, 90),
    }
    for name in NUMERIC_FEATURES:
        amount = shift.get(name)
        if amount is not None:
            low, high = NUMERIC_RANGES[name]
            moved = cols[name] + float(amount)  # type: ignore[arg-type]
            if name in INTEGER_FEATURES:
                # Stochastic rounding keeps the requested shift in expectation: +0.25 calls moves
                # a quarter of the rows up by one (truncation would move none). Its own stream,
                # spawned after the column streams, so unshifted data stays bit for bit the same.
                rounding = np.random.default_rng(seq.spawn(1)[0])
                base = np.floor(moved)
                moved = base + (rounding.random(n) < moved - base)
            cols[name] = np.clip(moved, low, high)
    for name in CATEGORICAL_FEATURES:
        probs = shift.get(name) or CATEGORIES[name]
        # Inverse-CDF on the same uniforms: a probability change moves only as few rows as it must.
        u = rng[name].random(n)
        labels = list(CATEGORIES[name])
        cdf = np.cumsum([float(probs.get(c, 0.0)) for c in labels])  # type: ignore[union-attr]
        # pandas categoricals: the same strings, but cheap to count, compare and encode
        index = np.minimum(np.searchsorted(cdf, u, side="right"), len(labels) - 1)
        cols[name] = pd.Categorical.from_codes(index, categories=labels)
    frame = pd.DataFrame(cols)
    for name in INTEGER_FEATURES:
        frame[name] = frame[name].astype(int)
    frame["monthly_charges"] = frame["monthly_charges"].round(2)
    p = churn_probability(frame, concept_drift)
    frame[TARGET] = (rng[TARGET].random(n) < p).astype(int)
    return frame


def _draw_with_prior(
    n: int,
    seed: int,
    shift: Mapping[str, float | Mapping[str, float]],
    concept_drift: float,
    churn_rate: float,
) -> pd.DataFrame:
    # Label shift: keep P(x | y), change P(y). Draw a pool, then take each class's quota.
    n_pos = int(round(n * churn_rate))
    n_neg = n - n_pos
    pool_size = max(4 * n, 1000)
    for attempt in range(20):
        pool = _draw(
            pool_size, np.random.SeedSequence([seed, 104729, attempt]), shift, concept_drift
        )
        pos, neg = pool[pool[TARGET] == 1], pool[pool[TARGET] == 0]
        if len(pos) >= n_pos and len(neg) >= n_neg:
            picked = pd.concat([pos.iloc[:n_pos], neg.iloc[:n_neg]])
            order = np.random.default_rng([seed, 1299709]).permutation(n)
            return picked.iloc[order].reset_index(drop=True)
        pool_size *= 2
    raise ValueError(f"churn_rate={churn_rate} is too extreme to draw {n} rows")  # pragma: no cover


def _logit(frame: pd.DataFrame, concept: Mapping[str, object]) -> np.ndarray:
    z = np.full(len(frame), float(concept["intercept"]))  # type: ignore[arg-type]
    for name in NUMERIC_FEATURES:
        z += float(concept[name]) * (frame[name].to_numpy(float) - _CENTRES[name])  # type: ignore[arg-type]
    for name in CATEGORICAL_FEATURES:
        weights: Mapping[str, float] = concept[name]  # type: ignore[assignment]
        z += _category_weights(frame[name], weights)
    return z


def _category_weights(column: pd.Series, weights: Mapping[str, float]) -> np.ndarray:
    """Each row's weight; an unknown or missing category (an incident) weighs 0."""
    if isinstance(column.dtype, pd.CategoricalDtype):  # fast path: index by the codes
        table = np.array([float(weights.get(c, 0.0)) for c in column.cat.categories] + [0.0])
        return table[column.cat.codes.to_numpy()]  # code -1 (missing) → the trailing 0
    return column.map(lambda c: float(weights.get(c, 0.0))).to_numpy(float)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _day_seed(seed: int, day: int) -> int:
    return int(np.random.SeedSequence([seed, day]).generate_state(1)[0])


# --- validation of knobs ----------------------------------------------------------------


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{name} must be a positive integer (>= 1), got {value!r}")


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")


def _check_covariate_shift(
    shift: Mapping[str, float | Mapping[str, float]],
) -> dict[str, float | Mapping[str, float]]:
    for name, value in shift.items():
        if name in NUMERIC_FEATURES:
            if isinstance(value, Mapping) or not np.isfinite(float(value)):
                raise ValueError(
                    f"covariate_shift[{name!r}] must be a finite number (added to the column), "
                    f"got {value!r}"
                )
        elif name in CATEGORICAL_FEATURES:
            if not isinstance(value, Mapping):
                raise ValueError(
                    f"covariate_shift[{name!r}] must map categories {list(CATEGORIES[name])} "
                    f"to probabilities, got {value!r}"
                )
            unknown = set(value) - set(CATEGORIES[name])
            if unknown:
                raise ValueError(
                    f"covariate_shift[{name!r}] has unknown categories {sorted(unknown)}; "
                    f"allowed: {list(CATEGORIES[name])}"
                )
            for category, p in value.items():
                _check_probability(f"covariate_shift[{name!r}][{category!r}]", p)
            if not np.isclose(sum(value.values()), 1.0, atol=1e-6):
                raise ValueError(
                    f"covariate_shift[{name!r}] probabilities must sum to 1, "
                    f"got {sum(value.values()):.4f}"
                )
        else:
            raise ValueError(
                f"covariate_shift names unknown column {name!r}; allowed: {list(FEATURES)}"
            )
    return dict(shift)


def _check_incident(incident: Incident) -> None:
    if incident.kind not in INCIDENT_KINDS:
        raise ValueError(f"incident kind {incident.kind!r} is unknown; allowed: {INCIDENT_KINDS}")
    _check_probability("incident.rate", incident.rate)
    if incident.kind in ("unit_change", "out_of_range") and incident.column not in NUMERIC_FEATURES:
        raise ValueError(
            f"incident {incident.kind!r} needs a numeric column "
            f"(allowed: {list(NUMERIC_FEATURES)}), got {incident.column!r}"
        )
    if incident.kind == "rename_column" and not incident.new_name:
        raise ValueError("incident 'rename_column' needs new_name")
    if incident.kind == "unit_change" and (incident.factor <= 0 or incident.factor == 1):
        raise ValueError(f"incident.factor must be > 0 and != 1, got {incident.factor!r}")
