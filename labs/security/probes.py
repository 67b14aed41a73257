"""The attacks that need a file on disk, a registry or a live server: each returns numbers."""

from __future__ import annotations

import contextlib
import pickle
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labs.common.processes import HOST, ServedProcess
from labs.security import model_files as mf


def model_file_attacks(
    model: Any,
    work: Path,
    *,
    unpickle: Callable[[Path], int] = mf.load_pickle_in_child,
    load_file: Callable[[Path], Any] | None = None,
) -> dict[str, Any]:
    """Plant payload pickles; unpickle each in a child process (does the payload run?), scan
    it with picklescan, hand it to ``load_file`` (the project's allowlist loader unless a
    counterfactual says otherwise). Then the honest files."""
    from labs.common.tracking import dump_model, load_model_file

    load_file = load_file or load_model_file
    work.mkdir(parents=True, exist_ok=True)
    markers = work / "markers"
    markers.mkdir()
    out: dict[str, Any] = {}
    for name, data in mf.payload_pickles(markers).items():
        path = work / f"{name}-payload.pkl"
        path.write_bytes(data)
        refused, _ = mf.allowlist_refuses(path, load_file)  # first: the project's loader
        out[f"{name}.marker_after_allowlist"] = int(mf.marker_for(name, markers).exists())
        out[f"{name}.allowlist_refused"] = int(refused)
        verdict = mf.picklescan(data, path.name)
        out[f"{name}.picklescan_dangerous"] = verdict.dangerous
        out[f"{name}.picklescan_flagged"] = int(verdict.dangerous > 0)
        out[f"{name}.child_exit"] = unpickle(path)
        out[f"{name}.payload_ran"] = int(mf.marker_for(name, markers).exists())
    untrusted = work / "function-transformer.skops"
    untrusted.write_bytes(mf.skops_with_untrusted_function())
    out["skops_os_system.allowlist_refused"] = int(mf.allowlist_refuses(untrusted, load_file)[0])
    # Negative cases: the model itself as a pickle (honest, still never loaded by the project)
    # and as the project's skops file, which loads and predicts exactly like the original.
    honest = mf.picklescan(pickle.dumps(model), "honest.pkl")
    out["honest_pickle.picklescan_dangerous"] = honest.dangerous
    out["honest_pickle.picklescan_suspicious"] = honest.suspicious
    skops_path = work / "honest.skops"
    dump_model(model, skops_path)
    loaded = load_file(skops_path)
    from labs.common.data import make_churn_data

    probe = make_churn_data(200, seed=99)
    same = (loaded.predict_proba(probe) == model.predict_proba(probe)).all()
    out["honest_skops.loaded_same_predictions"] = int(bool(same))
    return out


def tamper_registered(
    client: Any,
    name: str,
    version: str,
    replacement: Any,
    load_registered: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Swap the registered version's stored model file for another *valid* model file (same
    types, so it passes the allowlist: what an attacker with write access to the artifact
    store would plant). The loader (``load_sklearn_model`` unless a counterfactual says
    otherwise) must refuse it; restored, it loads again."""
    from urllib.parse import unquote, urlparse

    import yaml

    from labs.common.data import make_churn_data
    from labs.common.tracking import UntrustedModelError, load_sklearn_model, model_bytes

    load_registered = load_registered or load_sklearn_model
    source = client.get_model_version(name, version).source  # models:/m-<id>
    logged = client.get_logged_model(source.split("/")[-1])
    directory = Path(unquote(urlparse(logged.artifact_location).path))
    flavor = yaml.safe_load((directory / "MLmodel").read_text())["flavors"]["sklearn"]
    stored = directory / flavor["pickled_model"]
    uri = f"models:/{name}/{version}"
    probe = make_churn_data(200, seed=98)
    original = stored.read_bytes()
    stored.write_bytes(model_bytes(replacement))
    refused, message, changed = 0, "", 0
    try:
        try:
            planted = load_registered(uri)
            expected = replacement.predict_proba(probe)
            changed = int((planted.predict_proba(probe) == expected).all())
        except UntrustedModelError as err:
            refused, message = 1, str(err)
    finally:
        stored.write_bytes(original)
    restored = load_registered(uri)
    return {
        "tampered_refused": refused,
        "refusal_names_hash": int("sha256" in message),
        "swapped_model_served": changed,
        "restored_loads": int(hasattr(restored, "predict_proba")),
    }


def probe_server(
    served: ServedProcess,
    tls_files: Any,
    rogue_dir: Path,
    keys: dict[str, str],
    rows: Any,
    pii_key: bytes,
    rate_limit: int,
    pseudonym: Callable[[bytes, str], str] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """TLS: who can connect. Access: which key may do what, and how often (asked at the URL
    the server answers on, so a server without TLS is measured, not a crash)."""
    import httpx

    from labs.common.data import FEATURES
    from labs.security.access import HEADER
    from labs.security.pii import pseudonym as keyed
    from labs.security.server import https_url, wait_ready
    from labs.security.tls import make_ca

    pseudonym = pseudonym or keyed
    ready_s, url = wait_ready(served, tls_files.ca_cert)
    trusted = ssl.create_default_context(cafile=str(tls_files.ca_cert))
    rogue_ca, _ = make_ca(rogue_dir, "rogue CA")
    transit: dict[str, Any] = {"ready_s": ready_s}
    for name, verify in (
        ("trusting_ca", trusted),
        ("system_trust_store", True),
        ("rogue_ca", ssl.create_default_context(cafile=str(rogue_ca))),
    ):
        try:
            transit[f"{name}.status"] = httpx.get(
                f"{https_url(served)}/health", verify=verify, timeout=5
            ).status_code
            transit[f"{name}.refused"] = 0
        except httpx.HTTPError as err:  # a refused handshake, or no TLS at all on the port
            transit[f"{name}.status"] = 0
            transit[f"{name}.refused"] = int("CERTIFICATE_VERIFY_FAILED" in str(err))
    try:
        status = httpx.get(f"http://{HOST}:{served.port}/health", timeout=5).status_code
    except httpx.HTTPError:
        status = 0
    transit["plaintext_http.status"] = status
    transit["tls_version"] = None
    with socket.create_connection((HOST, served.port), timeout=5) as raw:
        with contextlib.suppress(ssl.SSLError), trusted.wrap_socket(raw, server_hostname=HOST) as s:
            transit["tls_version"] = s.version()

    def body(i: int) -> dict[str, Any]:
        row = {f: rows.iloc[i][f] for f in FEATURES}
        row = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        return {"rows": [row], "request_id": pseudonym(pii_key, rows.iloc[i]["customer_id"])}

    access: dict[str, Any] = {}
    with httpx.Client(base_url=url, verify=trusted, timeout=10) as client:
        cases = {
            "no_key.predict": ("POST", "/predict", None),
            "wrong_key.predict": ("POST", "/predict", "not-a-key-" + "x" * 32),
            "predict_key.admin": ("GET", "/admin/audit", keys["scoring-client"]),
            "admin_key.predict": ("POST", "/predict", keys["operator"]),
            "admin_key.admin": ("GET", "/admin/audit", keys["operator"]),
            "no_key.health": ("GET", "/health", None),
        }
        for case, (method, path, key) in cases.items():
            headers = {HEADER: key} if key else {}
            sent = body(0) | {"request_id": f"probe-{case}"} if method == "POST" else None
            access[case] = client.request(method, path, json=sent, headers=headers).status_code
        statuses = [
            client.post(
                "/predict", json=body(i), headers={HEADER: keys["scoring-client"]}
            ).status_code
            for i in range(len(rows))
        ]
        access["predict_key.predict_ok"] = statuses.count(200)
        access["predict_key.predict_sent"] = len(statuses)
        burst = [
            client.post("/predict", json=body(0) | {"request_id": f"burst-{i}"},
                        headers={HEADER: keys["batch-client"]}).status_code
            for i in range(rate_limit + 5)
        ]  # fmt: skip
        access["burst.sent"] = len(burst)
        access["burst.ok"] = burst.count(200)
        access["burst.limited"] = burst.count(429)
        access["burst.first_429_at"] = burst.index(429) if 429 in burst else -1
        after = client.get("/admin/audit", headers={HEADER: keys["operator"]})
        access["other_key_during_limit"] = after.status_code
    return transit, access
