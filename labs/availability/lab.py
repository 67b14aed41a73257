"""How do you keep models in production available and fault tolerant?

Not by hoping a process never dies: by running several replicas behind a proxy that checks
their health, retries a failed request on another replica, and takes a sick replica out of
rotation until it is ready again. This lab measures that with Envoy in front of three replicas
of the project's serving app, under continuous load, while it hurts them one at a time:

1. **crash** — SIGKILL replica 1; restart it: it listens at once (``/health`` 200) while its
   model loads (``/ready`` 503), and must get no traffic until ``/ready`` answers;
2. **hang** — SIGSTOP replica 2: connections are accepted, nothing answers; per-try timeouts
   and the health check's timeout take it out; SIGCONT brings it back;
3. **graceful stop** — SIGTERM replica 3: it finishes what is in flight and exits 0;
4. **dependency gone** — the model store (MLflow) disappears: the replicas keep serving the
   model they loaded; only a *new* load fails.

The clients count every request; Envoy's admin API says when it ejected and re-admitted each
replica.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from labs.availability.claims import make_claims
from labs.availability.faults import (
    HealthWatcher,
    InFlight,
    hang,
    kill,
    observe_loading,
    resume,
    terminate,
    wait_accepted,
    wait_for_checks,
    wait_refusing,
)
from labs.availability.params import AvailabilityParams
from labs.availability.report import availability_table, plot_timeline
from labs.common.catalogue import topic
from labs.common.data import FEATURES, make_churn_data
from labs.common.model import TrainParams, train_model
from labs.common.processes import HOST, free_port
from labs.common.proxy import ProxySpec, start_proxy
from labs.common.replay import frame_requests
from labs.common.results import LabResult, artifact_path, claim_metrics
from labs.common.serving.predlog import remove_log
from labs.common.sidecar import sidecar
from labs.common.steady_load import SteadyLoad
from labs.common.tables import text_table
from labs.common.tracking import RunRecord, dump_model, log_run_record, warm_up_tracking

QUESTION = topic("availability").question
EXPERIMENT = "lab-availability"


@contextlib.contextmanager
def _model_store(uri: str) -> Iterator[None]:
    """Point MLflow (and the replicas started inside) at the lab's own model store."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before


def run(
    params: AvailabilityParams,
    out_dir: Path,
    echo: Callable[[str], None] = lambda _: None,
    *,
    stop: Callable[[int], float] = terminate,
    ready_check: str | None = None,
) -> LabResult:
    """Replicas behind Envoy under load; crash, hang, drain one, remove the store; claims.

    Components a counterfactual may replace: ``stop`` (how the third replica is stopped: SIGTERM
    to its process group) and ``ready_check`` (an extra readiness condition of the replicas,
    ``module:function``; none: ``/ready`` means "model loaded, log open")."""
    from labs.common.serving.server import ServerProcess, serve_in_background

    out_dir.mkdir(parents=True, exist_ok=True)
    # The replicas load from a model store of the lab's own, so taking it away harms nothing
    # else; the lab's run is still logged to the project's MLflow.
    store_dir, gone_dir = out_dir / "model-store", out_dir / "model-store-gone"
    for d in (store_dir, gone_dir):
        shutil.rmtree(d, ignore_errors=True)
    store_dir.mkdir()
    store_uri = f"sqlite:///{store_dir / 'mlflow.db'}"
    names = [f"replica-{i + 1}" for i in range(params.replicas)]
    logs = {n: out_dir / f"predictions-{n}.sqlite" for n in names}
    for path in logs.values():
        remove_log(path)
    events: dict[str, float] = {}
    pids: dict[str, int] = {}

    with contextlib.ExitStack() as stack:
        side = stack.enter_context(sidecar())
        side.submit(warm_up_tracking)

        def start(name: str, port: int, tag: str = "", gated: bool = False) -> ServerProcess:
            with _model_store(store_uri):
                server = stack.enter_context(
                    serve_in_background(None, port=port, log_path=logs[name],
                                        server_log=out_dir / f"server-{name}{tag}.log",
                                        bind_before_load=gated, ready_check=ready_check)
                )  # fmt: skip
            pids[f"{name}{tag}"] = server.served.process.pid
            return server

        ports = {n: free_port() for n in names}
        servers = {n: start(n, ports[n]) for n in names}
        # A warm standby for the first replica's port: imports done, it listens only when told
        # (as a restarted container with a cached image would), and loads its model after it
        # listens, when told again: the lab decides how long "loading" lasts by events.
        standby = start(names[0], ports[names[0]], "-standby", gated=True)
        echo(f"Training the model; {params.replicas} replicas and a standby warm up meanwhile …")
        data = make_churn_data(params.train_rows, seed=params.seed)
        model_file = out_dir / "model.skops"
        dump_model(train_model(data, TrainParams()), model_file)
        uri = side.submit(register_in_store, str(model_file), params.registered_model, store_uri)
        uri = uri.result()
        for server in servers.values():
            server.bind(uri)
        for server in servers.values():
            server.wait_ready()
        address = {n: f"{HOST}:{p}" for n, p in ports.items()}

        spec = ProxySpec(
            {"model": list(ports.values())},
            primary="model",
            health_check=params.health_check(),
            retries=params.retries(),
            outlier=params.outlier(),
        )
        proxy = stack.enter_context(start_proxy(spec, workdir=out_dir / "envoy"))
        pids["envoy"] = proxy.pid
        echo(f"Envoy on {proxy.url} → {', '.join(address.values())}; continuous load starts …")
        traffic = make_churn_data(50 * params.rows_per_request, seed=params.seed + 1)
        bodies = [r.body for r in frame_requests(traffic[list(FEATURES)], params.rows_per_request)]
        watcher = stack.enter_context(HealthWatcher(proxy, "model"))
        crashed, hung, drained = names[0], names[1], names[2]
        load = stack.enter_context(
            SteadyLoad(proxy.url, bodies, clients=params.clients, pause_s=params.pause_s,
                       id_prefix="av")
        )  # fmt: skip
        hold = params.hold_s
        _wait_for_successes(load, 20, timeout=60)  # a steady state first
        time.sleep(hold)

        # --- 1. Crash: SIGKILL, then a restart that must wait for readiness -----------------
        events["kill"] = kill(servers[crashed].served.process.pid)
        events["kill_ejected"] = watcher.first(events["kill"], address[crashed], False, 30)
        echo(f"SIGKILL {crashed}: Envoy ejected it after "
             f"{events['kill_ejected'] - events['kill']:.2f} s")  # fmt: skip
        time.sleep(hold)
        events["restart"] = time.time()
        standby.bind(uri)  # "restart": the standby takes the port; alive, its model not loaded
        # Loading lasts until Envoy has checked every replica a few times and the clients sent
        # a few dozen requests: a replica Envoy took for ready would have been sent some.
        loading = observe_loading(
            standby.url, proxy, "model", load,
            checks=(params.healthy_threshold + 2) * params.replicas, requests=30,
            timeout=params.recovery_timeout_s,
        )  # fmt: skip
        events["load_released"] = time.time()
        standby.release_load()
        events["recovered"] = watcher.first(
            events["load_released"], address[crashed], True, params.recovery_timeout_s
        )
        echo(f"  restarted: alive at once; {loading.received} requests reached it while it "
             f"loaded; ready {events['recovered'] - events['load_released']:.1f} s after "
             "its load began")  # fmt: skip
        time.sleep(hold)

        # --- 2. Hang: SIGSTOP (accepts, never answers), then SIGCONT -----------------------
        hung_pid = servers[hung].served.process.pid
        stack.callback(resume, hung_pid)  # a stopped process must never be left stopped
        events["hang"] = hang(hung_pid)
        events["hang_ejected"] = watcher.first(events["hang"], address[hung], False, 30)
        echo(f"SIGSTOP {hung}: ejected after {events['hang_ejected'] - events['hang']:.2f} s")
        time.sleep(hold)
        events["resume"] = resume(hung_pid)
        events["hang_recovered"] = watcher.first(events["resume"], address[hung], True, 30)
        time.sleep(hold)

        # --- 3. Graceful stop: SIGTERM drains in-flight requests ------------------------------
        # Requests sent straight to the replica (no proxy, no retry), still uploading their
        # body when SIGTERM arrives: each must still be answered.
        big = {"rows": [r for b in bodies for r in b["rows"]][: params.drain_batch_rows]}
        in_flight = InFlight(servers[drained].url, big, params.drain_requests, "drain")
        in_flight.wait_started()
        port = ports[drained]
        wait_accepted(port)  # the replica took their connections: they are its requests now
        events["term"] = stop(servers[drained].served.process.pid)
        wait_refusing(port)  # it is shutting down: no new connections …
        in_flight.release()  # … but these finish
        drained_direct = in_flight.results()
        exit_code = servers[drained].served.process.wait(30)
        events["term_exited"] = time.time()
        echo(f"SIGTERM {drained}: exited with code {exit_code} after "
             f"{events['term_exited'] - events['term']:.2f} s")  # fmt: skip
        time.sleep(hold)

        # --- 4. The model store goes away -------------------------------------------------
        store_dir.rename(gone_dir)
        events["store_gone"] = time.time()
        load_error = side.submit(try_load, uri, store_uri).result()
        echo(f"Model store removed: a fresh load now fails ({load_error[:80]}…)")
        # Long enough for Envoy to take out a replica whose /ready needed the store.
        wait_for_checks(proxy, "model", (params.unhealthy_threshold + 1) * params.replicas)
        alive = {address[n] for n in (crashed, hung)}
        ready_after_gone = alive & proxy.healthy_hosts("model")
        time.sleep(hold)
        hits = load.stop()
        pd.DataFrame([asdict(h) for h in hits]).to_csv(out_dir / "requests.csv", index=False)
        echo(f"  direct batches to the stopping replica: (status, answered) {drained_direct}")
        retries = proxy.cluster_stats("model").get("upstream_rq_retry", 0)
        samples = list(watcher.samples)

        claims = make_claims(
            params,
            hits=hits,
            events=events,
            address=address,
            roles={"crashed": crashed, "hung": hung, "drained": drained},
            loading=loading,
            ready_after_gone=len(ready_after_gone),
            alive_after_gone=len(alive),
            exit_code=exit_code,
            drained_direct=drained_direct,
            load_error=load_error,
            retries=retries,
        )
        table = availability_table(hits, events)
        table.to_csv(out_dir / "availability.csv", index=False)
        echo("")
        echo(text_table(table.to_dict("records"), title="Availability by phase (client view)"))
        figure = out_dir / "timeline.png"
        plot_timeline(hits, events, address, samples, figure)
        # Every process this run started led its own group: the test checks none survives.
        (out_dir / "processes.json").write_text(json.dumps(pids, indent=1))
        files = [figure, out_dir / "availability.csv", out_dir / "requests.csv",
                 out_dir / "processes.json"]  # fmt: skip
        echo(f"Logging to MLflow (experiment {EXPERIMENT}) …")
        record = RunRecord(
            name="availability-lab",
            params=asdict(params),
            metrics=claim_metrics(claims),
            artifacts=[str(f) for f in files],
        )
        run_id = side.submit(log_run_record, EXPERIMENT, record).result()

    # --- Interpretation ----------------------------------------------------------------------
    # Retries hide a crash from clients only because another replica is ready to take the
    # request; health checks decide *which* replicas those are; readiness keeps a loading
    # replica out; graceful shutdown makes planned restarts free. None of it needs the model
    # store at serving time: only a start-up does.
    return LabResult(
        lab="availability",
        question=QUESTION,
        claims=claims,
        artifacts=[artifact_path(f) for f in files],
        mlflow={"experiment": EXPERIMENT, "run_id": run_id},
    )


def _wait_for_successes(load: SteadyLoad, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while sum(h.ok for h in load.snapshot()) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the load did not reach {n} successful requests in {timeout} s")
        time.sleep(0.05)


# --- Model store steps (run in the sidecar, which has MLflow imported) -----------------------


def register_in_store(model_file: str, name: str, store_uri: str) -> str:
    """Register the model in the lab's own store as ``champion`` (audited there); its URI."""
    import mlflow

    from labs.common.registration import register_version
    from labs.common.registry import CHAMPION, promote, reset_lab_model
    from labs.common.tracking import audit_log_path, configure_tracking, load_model_file

    with _model_store(store_uri):
        configure_tracking()
        client = mlflow.MlflowClient()
        reset_lab_model(client, name, owner=EXPERIMENT, setting="availability.registered_model")
        model = load_model_file(Path(model_file))
        version, _ = register_version(client, name, model, experiment=EXPERIMENT)
        promote(client, name, version, reason="availability lab: the replicas' model",
                audit_log=audit_log_path())  # fmt: skip
    configure_tracking()  # back to the project's store for the run record
    return f"models:/{name}@{CHAMPION}"


def try_load(uri: str, store_uri: str) -> str:
    """Load ``uri`` from the (removed) store as a new replica would; the error, or ''."""
    from labs.common.serving.scoring import ModelLoadError, load_model
    from labs.common.tracking import configure_tracking

    error = ""
    with _model_store(store_uri):
        try:
            load_model(uri)
        except ModelLoadError as err:
            error = str(err)
    configure_tracking()
    return error
