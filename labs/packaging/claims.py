"""The packaging answer, claim by claim, each decided by the numbers the lab measured."""

from __future__ import annotations

from typing import Any

from labs.common.results import Claim
from labs.packaging.formats import ONNX, PICKLE, PYFUNC, SKOPS

SKLEARN_FORMATS = (PICKLE, SKOPS, PYFUNC)


def make_claims(
    params: Any,
    probes: dict[str, dict[str, Any]],
    handlers: dict[str, dict[str, Any]],
    rest: dict[str, Any],
    forest: dict[str, Any],
    container: dict[str, Any],
) -> list[Claim]:
    par = {f: probes[f]["parity"] for f in probes}
    load = {f: probes[f]["load_s"] for f in probes}
    one = {f: probes[f]["one_row_ms"] for f in probes}
    modules = {f: probes[f]["modules_at_load"] for f in probes}
    pickle_p, skops_p, onnx_p = (probes[f]["planted"] for f in (PICKLE, SKOPS, ONNX))
    surface = onnx_p.get("surface", {})
    ours, theirs = container["ours"], container["mlflow"]
    cold_ms = {k: 1000 * h["cold_s"] for k, h in handlers.items()}
    return [
        Claim(
            "every_package_predicts_the_same",
            "pickle, skops and the MLflow model reproduce the in-memory model exactly "
            "(|Δp| = 0); ONNX computes in float32 and stays within "
            f"{params.onnx_linear_tolerance:g} with no label flip (logistic regression).",
            passed=all(
                par[f]["max_abs_dp"] == 0.0 and par[f]["label_flips"] == 0 for f in SKLEARN_FORMATS
            )
            and 0 < par[ONNX]["max_abs_dp"] <= params.onnx_linear_tolerance
            and par[ONNX]["label_flips"] == 0,
            measured={
                "rows": par[ONNX]["rows"],
                **{f"max_abs_dp_{_key(f)}": par[f]["max_abs_dp"] for f in par},
                **{f"label_flips_{_key(f)}": par[f]["label_flips"] for f in par},
            },
        ),  # fmt: skip
        Claim(
            "float32_trees_differ_a_little",
            "A tree ensemble through ONNX differs visibly — float32 inputs land on the other side "
            "of a split threshold — yet flips at most "
            f"{params.tree_flip_share_limit:.0%} of labels; far more than the linear model's Δp.",
            passed=forest["max_abs_dp"] > 1e-4
            and forest["max_abs_dp"] > 100 * par[ONNX]["max_abs_dp"]
            and forest["label_flips"] / forest["rows"] <= params.tree_flip_share_limit,
            measured={
                "forest_trees": params.forest_trees,
                "forest_max_abs_dp": forest["max_abs_dp"],
                "forest_label_flips": forest["label_flips"],
                "rows": forest["rows"],
                "linear_max_abs_dp": par[ONNX]["max_abs_dp"],
            },
        ),
        Claim(
            "onnx_loads_and_scores_fastest",
            "A fresh process loads the ONNX file (onnxruntime only: fewer modules imported than "
            "for any scikit-learn package) faster than any scikit-learn package and scores one "
            "row faster; the MLflow model loads slowest (MLflow import).",
            passed=modules[ONNX] < min(modules[f] for f in SKLEARN_FORMATS)
            and load[ONNX] < min(load[f] for f in SKLEARN_FORMATS)
            and one[ONNX] < min(one[f] for f in SKLEARN_FORMATS)
            and load[PYFUNC] > max(load[PICKLE], load[SKOPS]),
            measured={
                **{f"load_s_{_key(f)}": load[f] for f in load},
                **{f"modules_at_load_{_key(f)}": modules[f] for f in modules},
                **{f"one_row_ms_{_key(f)}": one[f] for f in one},
                **{f"size_bytes_{_key(f)}": probes[f]["size_bytes"] for f in probes},
            },
        ),
        Claim(
            "pickle_runs_planted_code",
            "Loading a pickle runs whatever it carries: the planted payload wrote its marker file "
            "in the loading process, and the model still predicted exactly — nothing looked wrong.",
            passed=pickle_p["payload_ran"]
            and not pickle_p["refused"]
            and pickle_p.get("max_abs_dp_vs_clean") == 0.0,
            measured={
                "payload_ran": pickle_p["payload_ran"],
                "refused": pickle_p["refused"],
                "max_abs_dp_vs_clean": pickle_p.get("max_abs_dp_vs_clean"),
            },
        ),
        Claim(
            "skops_refuses_planted_code",
            "The same intent in a skops file (construct builtins.exec) is refused by the "
            "project's exact-type allowlist and the payload does not run; trusting whatever types "
            "the file asks for would have run it.",
            passed=skops_p["refused"]
            and not skops_p["payload_ran"]
            and "builtins.exec" in skops_p.get("asked_types", [])
            and skops_p.get("trust_all_payload_ran") is True,
            measured={
                "refused": skops_p["refused"],
                "payload_ran": skops_p["payload_ran"],
                "asked_types": skops_p.get("asked_types", []),
                "trust_all_payload_ran": skops_p.get("trust_all_payload_ran"),
                "error": skops_p["error"],
            },
        ),
        Claim(
            "onnx_carries_no_code",
            "An ONNX file is operators and tensors from the standard domains: with the payload "
            "stored in it as metadata it loads and predicts, and nothing runs.",
            passed=not onnx_p["refused"]
            and not onnx_p["payload_ran"]
            and onnx_p.get("max_abs_dp_vs_clean") == 0.0
            and surface.get("local_functions") == 0
            and set(surface.get("domains", ["?"])) <= {"ai.onnx", "ai.onnx.ml"}
            and "on_load" in surface.get("metadata_keys", []),
            measured={
                "payload_ran": onnx_p["payload_ran"],
                "max_abs_dp_vs_clean": onnx_p.get("max_abs_dp_vs_clean"),
                **surface,
            },
        ),
        Claim(
            "rest_app_serves_the_same_model",
            "The project's serving app, loading the model from MLflow, answers over HTTP with the "
            "in-memory model's probabilities (|Δp| ≤ 1e-9, no flip); a batch costs less per row "
            "than one-row requests.",
            passed=rest["parity"]["max_abs_dp"] <= 1e-9
            and rest["parity"]["label_flips"] == 0
            and rest["batch_ms"] / params.batch_rows < rest["one_row_ms"],
            measured={
                "ready_s": rest["ready_s"],
                "ready_s_is_shared_cpu": rest["started_beside_probes"],
                "one_row_ms": rest["one_row_ms"],
                "batch_ms": rest["batch_ms"],
                "batch_rows": params.batch_rows,
                **{f"parity_{k}": v for k, v in rest["parity"].items()},
            },
        ),
        Claim(
            "serverless_cold_start_dominates",
            "A Lambda-style handler (mangum around the same app) pays its cold start once: it "
            "builds the app on the first call only, and that call takes over 10× a warm call; "
            "with the ONNX artefact the cold start is shorter than with skops + scikit-learn, "
            "and both answer 200 with the model's predictions.",
            passed=all(h["status"] == [200, 200] for h in handlers.values())
            and all(h["app_builds"] == h["app_builds_cold"] == 1 for h in handlers.values())
            and all(cold_ms[k] > 10 * handlers[k]["warm_ms"] for k in handlers)
            and cold_ms["onnx"] < cold_ms["sklearn"]
            and handlers["sklearn"]["parity"]["max_abs_dp"] <= 1e-9
            and handlers["onnx"]["parity"]["label_flips"] == 0,
            measured={
                **{f"cold_s_{k}": h["cold_s"] for k, h in handlers.items()},
                **{f"app_builds_{k}": h["app_builds"] for k, h in handlers.items()},
                **{f"calls_{k}": h["calls"] for k, h in handlers.items()},
                **{f"warm_ms_{k}": h["warm_ms"] for k, h in handlers.items()},
                **{f"batch_ms_{k}": h["batch_ms"] for k, h in handlers.items()},
                **{f"max_abs_dp_{k}": h["parity"]["max_abs_dp"] for k, h in handlers.items()},
            },
        ),
        Claim(
            "own_dockerfile_is_reviewable",
            "MLflow's generated build context runs as root, has no health check and installs "
            "unpinned packages; the project's Dockerfile installs the lock with hashes, runs as a "
            "non-root user, has a health check, and matches the lock it was rendered from.",
            passed=theirs["runs_as_root"]
            and not theirs["healthcheck"]
            and len(theirs["unpinned_installs"]) > 0
            and not ours["runs_as_root"]
            and ours["healthcheck"]
            and ours["installs_from_lock_with_hashes"]
            and not ours["unpinned_installs"]
            and not ours["pins_not_in_lock"]
            and container["committed_matches_lock"],
            measured={
                "mlflow_base_image": theirs["base_image"],
                "mlflow_final_user": theirs["final_user"],
                "mlflow_healthcheck": theirs["healthcheck"],
                "mlflow_unpinned_installs": len(theirs["unpinned_installs"]),
                "mlflow_requirements_pinned": theirs["requirements_pinned"],
                "mlflow_requirements": len(theirs["requirements"]),
                "ours_base_image": ours["base_image"],
                "ours_final_user": ours["final_user"],
                "ours_healthcheck": ours["healthcheck"],
                "ours_unpinned_installs": len(ours["unpinned_installs"]),
                "ours_pins_stated": ours["pins_stated"],
                "ours_pins_not_in_lock": len(ours["pins_not_in_lock"]),
                "committed_matches_lock": container["committed_matches_lock"],
            },
        ),
    ]


def _key(fmt: str) -> str:
    return {PICKLE: "pickle", SKOPS: "skops", ONNX: "onnx", PYFUNC: "pyfunc"}[fmt]
