"""The serving API's request bodies: what ``POST /predict`` and ``POST /monitoring`` accept.

Strict on purpose: every feature required, typed, in range; categories from the training data;
extra fields refused. MLflow's own signature check accepts numbers sent as strings, extra
columns and a ×1000 unit change — range and schema checks are the project's job.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from labs.common.data import CATEGORIES
from labs.common.data import NUMERIC_RANGES as R

MAX_BATCH_ROWS = 1000

Contract = Literal[tuple(CATEGORIES["contract"])]  # type: ignore[valid-type]
PaymentMethod = Literal[tuple(CATEGORIES["payment_method"])]  # type: ignore[valid-type]
InternetService = Literal[tuple(CATEGORIES["internet_service"])]  # type: ignore[valid-type]


def _integral_float_to_int(value: Any) -> Any:
    # JSON has one number type: JSON Schema's "integer" is any number with a zero fraction, so
    # 47.0 is a valid integer and must be accepted. Only that conversion: "42", true and 47.5
    # still reach strict int validation and are refused (int_type).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer as JSON Schema means it (47 or 47.0), strict otherwise; documented as "integer".
JsonInt = Annotated[int, BeforeValidator(_integral_float_to_int)]


class CustomerRow(BaseModel):
    """One customer to score: every feature required, typed, in range; nothing else allowed."""

    # strict: "42" is not 42 and true is not 1 — a type confusion upstream is a bug to surface,
    # not to guess around (MLflow's signature check accepts numbers as strings). 47.0 is 47:
    # JSON Schema's integer (JsonInt).
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    tenure_months: JsonInt = Field(ge=R["tenure_months"][0], le=R["tenure_months"][1])
    monthly_charges: float = Field(
        ge=R["monthly_charges"][0], le=R["monthly_charges"][1], allow_inf_nan=False
    )
    support_calls: JsonInt = Field(ge=R["support_calls"][0], le=R["support_calls"][1])
    age: JsonInt = Field(ge=R["age"][0], le=R["age"][1])
    contract: Contract
    payment_method: PaymentMethod
    internet_service: InternetService


class PredictRequest(BaseModel):
    """A batch of 1 … MAX_BATCH_ROWS customers and an optional client request id."""

    model_config = ConfigDict(extra="forbid", strict=True)

    rows: list[CustomerRow] = Field(min_length=1, max_length=MAX_BATCH_ROWS)
    request_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:-]{1,64}$")


class PredictResponse(BaseModel):
    """A scored batch, and whether it is in the prediction log yet."""

    request_id: str
    model_version: str
    churn_probability: list[float]
    churn: list[Literal[0, 1]]
    logged: Literal["written", "pending", "dropped"] = Field(
        description="written: in the log before this answer; pending: the log is locked by "
        "another process, the write is queued and lands when the lock frees; dropped: the "
        "write queue was full, the loss is counted in churn_prediction_log_dropped_total"
    )


class Problem(BaseModel):
    """A refusal or failure in one readable sentence (409, 413, 415, 503)."""

    detail: str


class ValidationProblem(BaseModel):
    """A 422: each problem (where, what, its type) and one readable sentence."""

    class Item(BaseModel):
        loc: list[str | int]
        msg: str
        type: str

    detail: list[Item]
    message: str


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    ready: bool
    model_uri: str | None = None
    model_version: str | None = None
    detail: str | None = None


class MonitoringAccepted(BaseModel):
    accepted: Literal[True]
    alerts: int


class AlertEvent(BaseModel):
    """One alert as the monitoring job reports it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    kind: Literal["drift", "quality"]
    day: JsonInt = Field(ge=0)
    metric: str = Field(max_length=64)
    value: float
    threshold: float
    reason: str = Field(max_length=500)


class MonitoringUpdate(BaseModel):
    """What the monitoring job pushes after each day: gauges and that day's alerts."""

    # strict like the predict schema: "0.3" is not a share and "1" is not a day
    model_config = ConfigDict(extra="forbid", strict=True)

    day: JsonInt = Field(ge=0)
    drift_share: float | None = Field(default=None, ge=0, le=1)
    prediction_drift: bool | None = None
    rolling_accuracy: float | None = Field(default=None, ge=0, le=1)
    rolling_roc_auc: float | None = Field(default=None, ge=0, le=1)
    alerts: list[AlertEvent] = Field(default_factory=list, max_length=100)
