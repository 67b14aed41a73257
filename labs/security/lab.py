"""Keeping data, models and the API secure — every defence shown against a measured attack.

The interview answer names encryption at rest and in transit, access control, audits and
monitoring. This lab runs each against the attack it stops, on the toy churn data:

1. **Untrusted model files.** A pickle runs code while it loads; a scanner's denylist misses
   an ordinary standard-library call; the project's loader (skops, exact allowlist) refuses
   every file it was not told about, and a registered model file swapped for another one.
2. **Personal data.** E-mails hashed without a key are reversed by a dictionary attack in
   seconds; keyed HMAC pseudonyms are not, yet joins still work; erasing a customer removes
   every row derived from them.
3. **Encryption at rest** (Fernet): a flipped bit is refused, never decrypted to garbage; key
   rotation re-encrypts without losing a row.
4. **In transit**: the shared serving app over TLS with a local CA; a client that does not
   trust the CA is refused. 5. **Access control**: scoped, hashed API keys, rate limits.
6. **Audit**: a hash-chained log of admin actions and alias moves. 7. **Supply chain**: the
   hash-locked install refuses a swapped wheel; the lock is audited offline against published
   advisories for older versions of the packages it pins.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from labs.common.catalogue import topic
from labs.common.data import make_churn_data
from labs.common.model import TrainParams, train_model
from labs.common.params import check_at_least
from labs.common.results import LabResult, artifact_path, claim_metrics
from labs.security import at_rest, audit, pii
from labs.security import model_files as mf
from labs.security import supply_chain as sc
from labs.security.claims import make_claims
from labs.security.measure import (
    erase_customer,
    erase_everywhere,
    measure_at_rest,
    measure_audit,
    measure_pii,
)
from labs.security.probes import model_file_attacks, probe_server, tamper_registered
from labs.security.report import format_tables, plot_attacks

QUESTION = topic("security").question
EXPERIMENT = topic("security").experiment
OWNER = "lab-security"


@dataclass(frozen=True)
class SecurityParams:
    """Parameters of the security lab (``params.yaml`` → ``security``)."""

    seed: int = 17
    train_rows: int = 2000
    customers: int = 1500
    registered_model: str = "churn-model-security-lab"
    served_customers: int = 8
    rate_limit: int = 15
    rate_window_s: float = 60.0
    tamper_flips: int = 200
    attack_budget_s: float = 30.0
    supply_chain: bool = True

    def __post_init__(self) -> None:
        check_at_least(
            self,
            "security",
            {
                "train_rows": 200,
                "customers": 50,
                "served_customers": 1,
                "rate_limit": 2,
                "tamper_flips": 10,
            },
        )
        if self.served_customers >= self.rate_limit:
            raise ValueError("security.served_customers must be < security.rate_limit")
        if self.rate_window_s <= 0 or self.attack_budget_s <= 0:
            raise ValueError("security.rate_window_s and attack_budget_s must be > 0")


def run(
    params: SecurityParams,
    out_dir: Path,
    echo: Callable[[str], None] = lambda _: None,
    *,
    unpickle: Callable[[Path], int] = mf.load_pickle_in_child,
    load_file: Callable[[Path], Any] | None = None,
    load_registered: Callable[[str], Any] | None = None,
    pseudonym: Callable[[bytes, str], str] = pii.pseudonym,
    eraser: Callable[..., None] = erase_everywhere,
    cipher: type = at_rest.FernetCipher,
    dev_server: bool = False,
    verify_chain: Callable[..., audit.Verification] = audit.verify,
    lock_file: Callable[[Path], Path] = sc.project_lock,
    installer: Callable[[Path, str, Path], sc.InstallAttempt] = sc.install_hash_locked,
) -> LabResult:
    """Attack and defend model files, personal data, stored files, the API and the audit log.

    The keyword arguments are the defences (and the attacks' loaders) the lab demonstrates;
    their defaults are the project's real parts. ``labs.security.counterfactuals`` hands in
    broken ones (``load_file``/``load_registered`` ``None``: the project's loaders)."""
    from labs.security import tls
    from labs.security.access import ADMIN, PREDICT, issue_keys, write_key_file
    from labs.security.server import bind, serve_tls

    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "work"  # scratch: rebuilt every run (gitignored reports/)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    secrets_dir = out_dir / "secrets"  # keys made at run time, never in git
    chain = work / "audit-chain.jsonl"

    # Keys and certificates first: the server starts at once and warms up (imports take
    # seconds) while the model is trained and registered; it learns the model URI on stdin.
    tls_files = tls.make_tls_files(secrets_dir / "tls")
    plain_keys, stored = issue_keys(
        {"scoring-client": (PREDICT,), "batch-client": (PREDICT,), "operator": (ADMIN,)}
    )
    keys_file = work / "api-keys.json"
    write_key_file(keys_file, stored)
    audit.append(chain, "lab", "issue-api-keys", keys=[k.key_id for k in stored])
    predlog = work / "predictions.sqlite"
    measured: dict[str, Any] = {}
    echo("Starting the serving app over TLS with API keys (it warms up meanwhile) …")
    with (
        serve_tls(
            None,
            certfile=tls_files.server_cert, keyfile=tls_files.server_key, keys_file=keys_file,
            audit_log=chain, log_path=predlog, rate_limit=params.rate_limit,
            rate_window_s=params.rate_window_s, server_log=work / "server.log", dev=dev_server,
        ) as served,
        _start_run(EXPERIMENT, "security-lab", asdict(params)) as mlflow_run,
    ):  # fmt: skip
        import mlflow

        from labs.common.registration import register_version
        from labs.common.registry import promote, reset_lab_model
        from labs.common.tracking import audit_log_path

        echo(f"Training the churn model on {params.train_rows} customers …")
        model = train_model(
            make_churn_data(params.train_rows, seed=params.seed), TrainParams(seed=params.seed)
        )
        client = mlflow.MlflowClient()
        reset_lab_model(client, params.registered_model, OWNER, "security.registered_model")
        version, _ = register_version(
            client, params.registered_model, model,
            experiment=EXPERIMENT, run_id=mlflow_run.info.run_id,
        )  # fmt: skip
        move = promote(
            client, params.registered_model, version,
            reason="security lab: first champion", audit_log=audit_log_path(),
        )  # fmt: skip
        audit.append(chain, move.user, "alias-move", move=asdict(move))
        bind(served, f"models:/{params.registered_model}@champion")
        echo(f"Registered v{version} (sha256 recorded), promoted it to champion (audited).")
        echo("1. Untrusted model files: pickles with a planted payload, scanner, allowlist …")
        measured["files"] = model_file_attacks(
            model, work / "model-files", unpickle=unpickle, load_file=load_file
        )
        echo("2. Personal data: pseudonyms, a dictionary attack, joins …")
        key, key_source = pii.load_or_create_key(secrets_dir)
        customers = pii.make_customers(params.customers, params.seed + 1)
        measured["pii"], tables = measure_pii(customers, key, params.seed, pseudonym)
        measured["pii"]["key_source_is_env"] = int(key_source.startswith("$"))
        echo("4./5. Waiting for the TLS server, then probing transport and API keys …")
        served_rows = customers.head(params.served_customers)
        measured["transit"], measured["access"] = probe_server(
            served, tls_files, secrets_dir / "rogue", plain_keys, served_rows, key,
            params.rate_limit, pseudonym,
        )  # fmt: skip
        served.stop()  # the prediction log is closed and complete from here on
        echo("   Server stopped. Swapping the registered model file for another valid model …")
        impostor = train_model(
            make_churn_data(300, seed=params.seed + 5), TrainParams(seed=params.seed + 5)
        )
        measured["registered"] = tamper_registered(
            client, params.registered_model, version, impostor, load_registered
        )

        echo("3. Encryption at rest: training extract and prediction log, tamper, rotation …")
        measured["at_rest"], encrypted, data_key = measure_at_rest(
            tables, predlog, work, params.tamper_flips, params.seed, cipher
        )
        # The customer who asks to be forgotten: one who was served and has support tickets.
        served_ids = tables["customers"]["customer_id"].head(params.served_customers)
        with_tickets = set(tables["tickets"]["customer_id"])
        victim = next((c for c in served_ids if c in with_tickets), served_ids.iloc[0])
        measured["erasure"] = erase_customer(
            victim, work / "warehouse.sqlite", encrypted, data_key, cipher, eraser
        )
        audit.append(chain, "lab", "erase-customer", customer=victim[:12] + "…")

        echo("6. Audit chain: verify, then edit / delete / cut a line in copies …")
        measured["audit"] = measure_audit(chain, work / "tampered", verify_chain)
        if params.supply_chain:
            echo("7. Supply chain: hash-locked install, swapped wheel, offline audit of the lock …")
            measured["supply"] = sc.measure_supply_chain(
                work / "supply", lock_file=lock_file, installer=installer
            )

        claims = make_claims(params, measured)
        echo("")
        echo(format_tables(measured))
        echo("")
        png = plot_attacks(measured, out_dir / "attacks.png")
        mlflow.log_metrics(claim_metrics(claims))
        mlflow.set_tag("audit_chain_head", measured["audit"]["head"])
        for f in (png, chain):
            mlflow.log_artifact(str(f))
        run_id = mlflow_run.info.run_id
    return LabResult(
        lab="security",
        question=QUESTION,
        claims=claims,
        artifacts=[artifact_path(png), artifact_path(chain)],
        mlflow={"experiment": EXPERIMENT, "run_id": run_id, "registered_version": version},
    )


def _start_run(experiment: str, name: str, params: dict[str, Any]) -> Any:
    from labs.common.tracking import start_run  # imports MLflow: after the server started

    return start_run(experiment, name, params)
