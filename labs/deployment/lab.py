"""What is the difference between canary and blue-green deployments?

Both put a new model in front of users without a big-bang cut-over; they differ in *how much*
traffic the new model gets and *how fast* you can go back. This lab runs both — and shadow
traffic, the safest first step — through a real proxy, Envoy, which does every split, switch
and mirror; our code only turns its admin knob and reads the evidence:

- three replicas of the project's serving app, each loading a registry alias: the
  ``champion`` (v1), a good ``challenger`` (v2, retrained on fresh data) and a bad one (v3,
  trained on inverted labels: it predicts churn for the customers who stay);
- **shadow**: every request goes to the champion and a mirrored copy to both challengers;
  clients only ever see the champion; the challengers' predictions are compared offline;
- **canary** with automated analysis (Flagger / Argo Rollouts semantics): the weight steps
  5 → 10 → 25 → 50 → 100 %, each step is judged from the replicas' Prometheus metrics (error
  rate, p99, the share of churn predictions vs the champion's); the bad challenger is rolled
  back at the first step, the good one reaches 100 % and is promoted through the audited
  registry;
- **blue-green**: all traffic switches to green in one admin call under continuous load, and
  back again: zero failed requests, the rollback's time measured.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from labs.common.catalogue import topic
from labs.common.data import FEATURES, TARGET, make_churn_data
from labs.common.model import TrainParams, train_model
from labs.common.processes import HOST, free_port
from labs.common.proxy import ProxySpec, start_proxy
from labs.common.replay import Request, frame_requests
from labs.common.results import LabResult, artifact_path, claim_metrics
from labs.common.serving.predlog import remove_log
from labs.common.sidecar import sidecar
from labs.common.tracking import RunRecord, dump_model, log_run_record, warm_up_tracking
from labs.deployment.analysis import analyse, naive_schedule, scrape, weight_schedule, window
from labs.deployment.claims import make_claims
from labs.deployment.params import DeploymentParams
from labs.deployment.report import plot_deployment, steps_table
from labs.deployment.rollout import (
    Analysis,
    WeightSetter,
    run_blue_green,
    run_canary,
    run_shadow,
    set_weight,
    shadow_spec,
    traffic_after_rollback,
)

QUESTION = topic("deployment").question
EXPERIMENT = "lab-deployment"
REPLICAS = ("v1", "good", "bad")  # champion, good challenger, bad challenger


def run(
    params: DeploymentParams,
    out_dir: Path,
    echo: Callable[[str], None] = lambda _: None,
    *,
    set_weight: WeightSetter = set_weight,
    analysis: Analysis = analyse,
    schedule: Callable[[int, int], list[int]] = weight_schedule,
    shadow_routes: Callable[..., ProxySpec] = shadow_spec,
) -> LabResult:
    """Shadow, canary (bad then good), blue-green through Envoy; return the measured claims.

    Components a counterfactual may replace: ``set_weight`` (the controller's knob, for the
    canary and the blue-green switch), ``analysis`` (a step's verdict), ``schedule`` (a
    step/max weight as a list of weights) and ``shadow_routes`` (Envoy's shadow config)."""
    from labs.common.serving.server import serve_in_background

    out_dir.mkdir(parents=True, exist_ok=True)
    logs = {n: out_dir / f"predictions-{n}.sqlite" for n in REPLICAS}
    for path in logs.values():
        remove_log(path)

    # --- Setup -----------------------------------------------------------------------------
    # Slow starts overlap: the sidecar imports MLflow and registers; the three replicas import
    # their stack and wait for a model URI on stdin; this process trains the three models.
    with contextlib.ExitStack() as stack:
        side = stack.enter_context(sidecar())
        side.submit(warm_up_tracking)
        servers = {
            n: stack.enter_context(
                serve_in_background(None, log_path=logs[n], server_log=out_dir / f"server-{n}.log")
            )
            for n in REPLICAS
        }
        echo("Training the champion (v1), a good challenger (v2) and a bad one (v3) …")
        files = {}
        for name, frame in _training_sets(params).items():
            files[name] = out_dir / f"model-{name}.skops"
            dump_model(train_model(frame, TrainParams()), files[name])
        versions = side.submit(
            register_models, {n: str(f) for n, f in files.items()}, params.registered_model
        ).result()
        echo(f"Registered versions {versions}; each replica loads its alias …")
        # Each replica loads an alias at start-up: champion → v1; challenger → the bad one,
        # then (once that replica has loaded it) → the good one. Every move is audited.
        for name, alias in (("v1", "champion"), ("bad", "challenger"), ("good", "challenger")):
            side.submit(point_alias, params.registered_model, alias, versions[name]).result()
            servers[name].bind(f"models:/{params.registered_model}@{alias}")
            servers[name].wait_ready()
        pids = {f"replica-{n}": servers[n].served.process.pid for n in REPLICAS}
        echo(
            f"Replicas ready: {', '.join(f'{n}=v{versions[n]} {servers[n].url}' for n in REPLICAS)}"
        )
        ports = {n: int(servers[n].url.rsplit(":", 1)[1]) for n in REPLICAS}
        urls = {n: servers[n].url for n in REPLICAS}

        data = make_churn_data(
            params.requests_per_step * params.rows_per_request, seed=params.seed + 5
        )[list(FEATURES)]

        def requests(prefix: str, n: int | None = None) -> list[Request]:
            out = frame_requests(data, params.rows_per_request, id_prefix=prefix)
            return out[: n or len(out)]

        # --- Shadow: mirrored, never answered ------------------------------------------------
        echo("Shadow: Envoy mirrors every request to both challengers; clients see the champion …")
        spec = shadow_routes(ports, "v1", ("good", "bad"))
        with start_proxy(spec, workdir=out_dir / "envoy-shadow") as proxy:
            pids["envoy-shadow"] = proxy.pid
            shadow = run_shadow(
                proxy,
                requests("shadow", params.shadow_requests),
                champion="v1",
                shadows=("good", "bad"),
                metrics_urls=urls,
                logs=logs,
                clients=params.clients,
                prefix="shadow",
            )
        echo(
            f"  agreement with the champion: {shadow.agreement}; "
            f"clients saw versions {shadow.served_versions}"
        )

        # --- Canary with automated analysis ----------------------------------------------------
        rules = params.rules()
        rollouts, pitfalls = {}, {}
        for name in ("bad", "good"):
            echo(
                f"Canary: the {name} challenger (v{versions[name]}), "
                f"steps {list(params.canary_steps)} % …"
            )
            spec = ProxySpec({"champion": [ports["v1"]], "challenger": [ports[name]]},
                             primary="champion", canary="challenger", canary_percent=0)  # fmt: skip
            with start_proxy(spec, workdir=out_dir / f"envoy-canary-{name}") as proxy:
                pids[f"envoy-canary-{name}"] = proxy.pid
                metrics = {"champion": urls["v1"], "challenger": urls[name]}
                if name == "good":
                    # Pitfall: a step where the canary got no traffic (weight 0) has no evidence.
                    pitfalls["zero_traffic"] = run_canary(
                        proxy, champion="champion", canary="challenger", metrics_urls=metrics,
                        weights=[0], traffic=lambda i: requests(f"zero-{i}", 60), rules=rules,
                        alpha=params.split_alpha, clients=params.clients,
                        set_weight=set_weight, analysis=analysis,
                    ).steps[0]  # fmt: skip
                rollout = run_canary(
                    proxy, champion="champion", canary="challenger", metrics_urls=metrics,
                    weights=params.canary_steps, traffic=lambda i, n=name: requests(f"{n}-{i}"),
                    rules=rules, alpha=params.split_alpha, clients=params.clients, echo=echo,
                    set_weight=set_weight, analysis=analysis,
                )  # fmt: skip
                if rollout.rolled_back_at is not None:
                    traffic_after_rollback(
                        proxy, rollout, "champion", requests(f"{name}-after", 100), params.clients
                    )
            rollouts[name] = rollout
            if rollout.promoted:
                last = rollout.steps[-1].weight
                promoted = side.submit(
                    promote_version, params.registered_model, versions[name], last
                ).result()
                echo(f"  promoted: champion → v{promoted} (audited)")
        champion_now = side.submit(alias_of, params.registered_model, "champion").result()

        # Pitfall: metrics that cannot be read are missing, not 0 (nothing listens there).
        dead = f"http://{HOST}:{free_port()}"
        pitfalls["missing"] = analysis(
            window(scrape(dead), scrape(dead)),
            window(scrape(urls["v1"]), scrape(urls["v1"])),
            rules,
        )

        # --- Blue-green: switch everything at once, and back ----------------------------------
        echo("Blue-green: blue = v1, green = v2; switch and roll back under continuous load …")
        spec = ProxySpec({"blue": [ports["v1"]], "green": [ports["good"]]}, primary="blue",
                         canary="green", canary_percent=0)  # fmt: skip
        bodies = [r.body for r in requests("bg-src", 50)]
        with start_proxy(spec, workdir=out_dir / "envoy-blue-green") as proxy:
            pids["envoy-blue-green"] = proxy.pid
            blue_green = run_blue_green(
                proxy, bodies, hold_s=params.switch_hold_s, clients=params.load_clients,
                set_weight=set_weight,
            )  # fmt: skip
        echo(
            f"  {len(blue_green.hits)} requests, {blue_green.failed} failed; switch "
            f"{blue_green.switch_s * 1000:.0f} ms, rollback {blue_green.rollback_s * 1000:.0f} ms"
        )
        for server in servers.values():
            server.stop()

        claims = make_claims(
            params,
            versions=versions,
            champion_now=champion_now,
            shadow=shadow,
            rollouts=rollouts,
            blue_green=blue_green,
            pitfalls=pitfalls,
            schedules={"naive": naive_schedule(20, 50), "guarded": schedule(20, 50)},
        )

        # --- What to look at -------------------------------------------------------------------
        table = steps_table(rollouts)
        table.to_csv(out_dir / "canary_steps.csv", index=False)
        echo("")
        from labs.common.tables import text_table

        echo(text_table(table.to_dict("records"), title="Canary steps (Envoy counters)"))
        figure = out_dir / "deployment.png"
        plot_deployment(rollouts, blue_green, figure)
        # Every process this run started leads its own group: the test checks none survives.
        (out_dir / "processes.json").write_text(json.dumps(pids, indent=1))
        files_out = [figure, out_dir / "canary_steps.csv", out_dir / "processes.json"]
        echo(f"Logging to MLflow (experiment {EXPERIMENT}) …")
        record = RunRecord(
            name="deployment-lab",
            params={**asdict(params), "versions": versions},
            metrics=claim_metrics(claims),
            artifacts=[str(f) for f in files_out],
        )
        run_id = side.submit(log_run_record, EXPERIMENT, record).result()

    # --- Interpretation ----------------------------------------------------------------------
    # Shadow costs users nothing and tells you whether the new model *agrees*; a canary
    # exposes a few percent and lets metrics decide, so a bad model hurts ~5 % of requests for
    # one step; blue-green exposes everyone at once but goes back in one call.
    return LabResult(
        lab="deployment",
        question=QUESTION,
        claims=claims,
        artifacts=[artifact_path(f) for f in files_out],
        mlflow={"experiment": EXPERIMENT, "run_id": run_id},
    )


def _training_sets(params: DeploymentParams) -> dict[str, object]:
    v1 = make_churn_data(params.train_rows, seed=params.seed)
    good = make_churn_data(params.train_rows, seed=params.seed + 1)
    bad = make_churn_data(params.train_rows, seed=params.seed + 2)
    bad[TARGET] = 1 - bad[TARGET]  # a broken label join: the model learns churn backwards
    return {"v1": v1, "good": good, "bad": bad}


# --- Registry steps (run in the sidecar, which has MLflow imported) --------------------------


def _client() -> object:
    import mlflow

    from labs.common.tracking import configure_tracking

    configure_tracking()
    return mlflow.MlflowClient()


def register_models(files: dict[str, str], name: str) -> dict[str, str]:
    """A fresh registered model owned by this lab, the three files as versions 1, 2, 3."""
    from labs.common.registration import register_version
    from labs.common.registry import reset_lab_model
    from labs.common.tracking import load_model_file

    client = _client()
    reset_lab_model(client, name, owner=EXPERIMENT, setting="deployment.registered_model")
    return {
        n: register_version(client, name, load_model_file(Path(files[n])), experiment=EXPERIMENT,
                            run_name=n)[0]
        for n in REPLICAS
    }  # fmt: skip


def point_alias(name: str, alias: str, version: str) -> None:
    """Point ``alias`` at ``version`` (audited)."""
    from labs.common.registry import CHAMPION, promote, set_alias
    from labs.common.tracking import audit_log_path

    reason = f"deployment lab: replica loads {alias}"
    if alias == CHAMPION:
        promote(_client(), name, version, reason=reason, audit_log=audit_log_path())
    else:
        set_alias(_client(), name, alias, version, reason=reason, audit_log=audit_log_path())


def promote_version(name: str, version: str, weight: int) -> str:
    """The canary passed every step: promote it to champion (audited); the new champion."""
    from labs.common.registry import CHAMPION, alias_version, promote
    from labs.common.tracking import audit_log_path

    client = _client()
    promote(client, name, version, reason=f"canary passed every step up to {weight} %",
            audit_log=audit_log_path())  # fmt: skip
    return str(alias_version(client, name, CHAMPION))


def alias_of(name: str, alias: str) -> str | None:
    from labs.common.registry import alias_version

    return alias_version(_client(), name, alias)
