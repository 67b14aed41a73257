"""The serving app's OpenAPI pieces: every body's JSON Schema under ``components/schemas``
(so each ``$ref`` resolves, as contract testers need) and the error answers each endpoint
documents.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from labs.common.serving.schema import (
    Health,
    MonitoringAccepted,
    MonitoringUpdate,
    PredictRequest,
    PredictResponse,
    Problem,
    Readiness,
    ValidationProblem,
)


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(name: str | None, description: str) -> dict[str, Any]:
    schema = ref(name) if name else {"type": "object"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


PROBLEMS: dict[int | str, dict[str, Any]] = {
    409: json_content("Problem", "The request id is already in the prediction log."),
    413: json_content("Problem", "The body is larger than the limit."),
    415: json_content("Problem", "The body is not application/json."),
    422: json_content("ValidationProblem", "The body is not valid JSON or breaks the schema."),
    503: json_content("Problem", "Not ready (no model yet), or the server failed: retry."),
}


def components() -> dict[str, Any]:
    """Every body's JSON Schema with refs into ``components/schemas`` (so they resolve)."""
    models: list[type[BaseModel]] = [
        PredictRequest, MonitoringUpdate, PredictResponse, Problem, ValidationProblem, Health,
        Readiness, MonitoringAccepted,
    ]  # fmt: skip
    _, top = models_json_schema(
        [(m, "validation") for m in models], ref_template="#/components/schemas/{model}"
    )
    return dict(top["$defs"])
