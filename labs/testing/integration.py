"""Integration over real HTTP: the candidate served by the project's serving app on a free
port, scored in batches, compared with the same model's predictions in process."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from labs.common.data import FEATURES, INTEGER_FEATURES


def request_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as the API takes them: integers as ints, charges as floats, categories as text."""
    rows = []
    for record in frame[list(FEATURES)].to_dict(orient="records"):
        rows.append(
            {
                k: int(v)
                if k in INTEGER_FEATURES
                else (float(v) if k == "monthly_charges" else str(v))
                for k, v in record.items()
            }
        )
    return rows


def request_bodies(frame: pd.DataFrame, batch_rows: int) -> list[str]:
    rows = request_rows(frame)
    return [json.dumps({"rows": rows[i : i + batch_rows]}) for i in range(0, len(rows), batch_rows)]


def round_trip(
    url: str, frame: pd.DataFrame, expected: np.ndarray, batch_rows: int
) -> dict[str, Any]:
    """Post ``frame`` in batches; compare the served probabilities with ``expected``."""
    import httpx

    served = np.full(len(frame), np.nan)
    statuses: Counter[int] = Counter()
    first_error = ""
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for i, body in enumerate(request_bodies(frame, batch_rows)):
            response = client.post(
                "/predict", content=body, headers={"content-type": "application/json"}
            )
            statuses[response.status_code] += 1
            if response.status_code == 200:
                p = response.json()["churn_probability"]
                served[i * batch_rows : i * batch_rows + len(p)] = p
            elif not first_error:
                first_error = f"{response.status_code}: {response.json().get('detail')}"
    answered = ~np.isnan(served)
    gap = np.abs(served[answered] - expected[answered])
    return {
        "requests": int(sum(statuses.values())),
        "ok_requests": int(statuses.get(200, 0)),
        "failed_requests": int(sum(v for k, v in statuses.items() if k != 200)),
        "statuses": {str(k): int(v) for k, v in sorted(statuses.items())},
        "rows_answered": int(answered.sum()),
        "max_abs_dp": float(gap.max()) if gap.size else float("nan"),
        "labels_differing": int(np.sum((served[answered] >= 0.5) != (expected[answered] >= 0.5))),
        "first_error": first_error,
    }


def over_http(served: Any, frame: pd.DataFrame, expected: np.ndarray, batch_rows: int) -> dict:
    """The integration test: ``frame`` posted to the served candidate (``served.url``) in
    batches, its answers compared with ``expected``."""
    return round_trip(served.url, frame, expected, batch_rows)


def corrupt_request(url: str, row: dict[str, Any]) -> dict[str, Any]:
    """One corrupt row over HTTP (charges sent as text): a 422 naming the field, not a 500."""
    import httpx

    bad = {**row, "monthly_charges": "n/a"}
    response = httpx.post(f"{url}/predict", json={"rows": [bad]}, timeout=30.0)
    body = response.json()
    return {"status": response.status_code, "message": str(body.get("message", ""))[:200]}


RENAMED = {"monthly_charges": "monthly_charge"}


def renamed_column_model(train: pd.DataFrame) -> Any:
    """The planted defect: the model was trained on an extract whose ``monthly_charges``
    column was called ``monthly_charge``. It fits, saves and loads; its signature differs
    from what the API sends."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from labs.common.data import CATEGORICAL_FEATURES, NUMERIC_FEATURES, TARGET

    numeric = [RENAMED.get(c, c) for c in NUMERIC_FEATURES]
    pre = ColumnTransformer(
        [
            ("numeric", StandardScaler(), numeric),
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                list(CATEGORICAL_FEATURES),
            ),
        ]
    )
    model = Pipeline([("preprocess", pre), ("classifier", LogisticRegression(max_iter=1000))])
    frame = train.rename(columns=RENAMED)
    return model.fit(frame[numeric + list(CATEGORICAL_FEATURES)], frame[TARGET])


def in_process(model: Any, frame: pd.DataFrame) -> np.ndarray:
    """The model's predictions in process, on the columns it was trained with: its own unit
    test passes."""
    return model.predict_proba(frame.rename(columns=RENAMED)[list(model.feature_names_in_)])[:, 1]
