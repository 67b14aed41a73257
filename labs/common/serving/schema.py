"""The serving API's request bodies: what ``POST /predict`` and ``POST /monitoring`` accept.

Strict on purpose: every feature required, typed, in range; categories from the training data;
extra fields refused. MLflow's own signature check accepts numbers sent as strings, extra
columns and a ×1000 unit change — range and schema checks are the project's job.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from labs.common.data import CATEGORIES
from labs.common.data import NUMERIC_RANGES as R

MAX_BATCH_ROWS = 1000

Contract = Literal[tuple(CATEGORIES["contract"])]  # type: ignore[valid-type]
PaymentMethod = Literal[tuple(CATEGORIES["payment_method"])]  # type: ignore[valid-type]
InternetService = Literal[tuple(CATEGORIES["internet_service"])]  # type: ignore[valid-type]


class CustomerRow(BaseModel):
    """One customer to score: every feature required, typed, in range; nothing else allowed."""

    # strict: "42" is not 42 and 42.0 is not an int — a type confusion upstream is a bug to
    # surface, not to guess around (MLflow's signature check accepts numbers as strings).
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    tenure_months: int = Field(ge=R["tenure_months"][0], le=R["tenure_months"][1])
    monthly_charges: float = Field(
        ge=R["monthly_charges"][0], le=R["monthly_charges"][1], allow_inf_nan=False
    )
    support_calls: int = Field(ge=R["support_calls"][0], le=R["support_calls"][1])
    age: int = Field(ge=R["age"][0], le=R["age"][1])
    contract: Contract
    payment_method: PaymentMethod
    internet_service: InternetService


class PredictRequest(BaseModel):
    """A batch of 1 … MAX_BATCH_ROWS customers and an optional client request id."""

    model_config = ConfigDict(extra="forbid", strict=True)

    rows: list[CustomerRow] = Field(min_length=1, max_length=MAX_BATCH_ROWS)
    request_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:-]{1,64}$")


class AlertEvent(BaseModel):
    """One alert as the monitoring job reports it."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["drift", "quality"]
    day: int = Field(ge=0)
    metric: str = Field(max_length=64)
    value: float
    threshold: float
    reason: str = Field(max_length=500)


class MonitoringUpdate(BaseModel):
    """What the monitoring job pushes after each day: gauges and that day's alerts."""

    model_config = ConfigDict(extra="forbid")

    day: int = Field(ge=0)
    drift_share: float | None = Field(default=None, ge=0, le=1)
    prediction_drift: bool | None = None
    rolling_accuracy: float | None = Field(default=None, ge=0, le=1)
    rolling_roc_auc: float | None = Field(default=None, ge=0, le=1)
    alerts: list[AlertEvent] = Field(default_factory=list, max_length=100)
