"""Keeping data, models and the API secure — every defence shown against a measured attack.

The interview answer names encryption at rest and in transit, access control, audits and
monitoring. This lab runs each against the attack it stops, on the toy churn data:

1. **Untrusted model files.** A pickle runs code while it loads; a scanner's denylist misses
   an ordinary standard-library call; the project's loader (skops, exact allowlist) refuses
   every file it was not told about, and a registered model whose bytes changed.
2. **Personal data.** E-mails hashed without a key are reversed by a dictionary attack in
   seconds; keyed HMAC pseudonyms are not, yet joins still work; erasing a customer removes
   every row derived from them.
3. **Encryption at rest** (Fernet): a flipped bit is refused, never decrypted to garbage; key
   rotation re-encrypts without losing a row.
4. **In transit**: the shared serving app over TLS with a local CA; a client that does not
   trust the CA is refused. 5. **Access control**: scoped, hashed API keys, rate limits.
6. **Audit**: a hash-chained log of admin actions and alias moves. 7. **Supply chain**: a
   tampered hash in a hash-locked requirement stops the install.
"""

from __future__ import annotations

import shutil
import sqlite3
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
from labs.security.claims import make_claims
from labs.security.probes import model_file_attacks, probe_server, tamper_registered
from labs.security.report import format_tables, plot_attacks
from labs.security.supply_chain import measure_supply_chain

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
    params: SecurityParams, out_dir: Path, echo: Callable[[str], None] = lambda _: None
) -> LabResult:
    """Attack and defend model files, personal data, stored files, the API and the audit log."""
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
            rate_window_s=params.rate_window_s, server_log=work / "server.log",
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
        measured["files"] = model_file_attacks(model, work / "model-files")
        echo("2. Personal data: pseudonyms, a dictionary attack, joins …")
        key, key_source = pii.load_or_create_key(secrets_dir)
        customers = pii.make_customers(params.customers, params.seed + 1)
        measured["pii"], tables = measure_pii(customers, key, params.seed)
        measured["pii"]["key_source_is_env"] = int(key_source.startswith("$"))
        echo("4./5. Waiting for the TLS server, then probing transport and API keys …")
        served_rows = customers.head(params.served_customers)
        measured["transit"], measured["access"] = probe_server(
            served, tls_files, secrets_dir / "rogue", plain_keys, served_rows, key,
            params.rate_limit,
        )  # fmt: skip
        served.stop()  # the prediction log is closed and complete from here on
        echo("   Server stopped. Flipping one byte of the registered model file …")
        measured["registered"] = tamper_registered(client, params.registered_model, version)

        echo("3. Encryption at rest: training extract and prediction log, tamper, rotation …")
        measured["at_rest"], encrypted, data_key = measure_at_rest(
            tables, predlog, work, params.tamper_flips, params.seed
        )
        # The customer who asks to be forgotten: one who was served and has support tickets.
        served_ids = tables["customers"]["customer_id"].head(params.served_customers)
        with_tickets = set(tables["tickets"]["customer_id"])
        victim = next((c for c in served_ids if c in with_tickets), served_ids.iloc[0])
        measured["erasure"] = erase_customer(victim, work / "warehouse.sqlite", encrypted, data_key)
        audit.append(chain, "lab", "erase-customer", customer=victim[:12] + "…")

        echo("6. Audit chain: verify, then edit / delete / cut a line in copies …")
        measured["audit"] = measure_audit(chain, work / "tampered")
        if params.supply_chain:
            echo("7. Supply chain: hash-locked install of a tiny wheel, offline …")
            measured["supply"] = measure_supply_chain(work / "supply")

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


# --- personal data ----------------------------------------------------------------------------


def measure_pii(customers: Any, key: bytes, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Attack plain hashes and keyed pseudonyms; join on pseudonyms; build the warehouse."""
    import pandas as pd

    candidates = pii.candidate_emails()
    plain = pii.dictionary_attack([pii.plain_sha256(e) for e in customers["email"]], candidates)
    keyed = pii.dictionary_attack([pii.pseudonym(key, e) for e in customers["email"]], candidates)
    tickets = pii.make_support_tickets(customers, seed)
    raw_join = customers.merge(tickets, on="customer_id")
    p_customers = pii.pseudonymise(customers, key, ["customer_id", "email"])
    p_tickets = pii.pseudonymise(tickets, key, ["customer_id"])
    p_join = p_customers.merge(p_tickets, on="customer_id")
    # the same customers' ticket totals, matched through the keyed mapping
    mapping = dict(zip(customers["customer_id"], p_customers["customer_id"], strict=True))
    raw_minutes = raw_join.groupby("customer_id")["minutes"].sum().rename(index=mapping)
    p_minutes = p_join.groupby("customer_id")["minutes"].sum()
    other_key = bytes(reversed(key))
    overlap = len(
        set(p_customers["customer_id"])
        & {pii.pseudonym(other_key, c) for c in customers["customer_id"]}
    )
    predictions = pd.DataFrame(
        {"customer_id": p_customers["customer_id"], "score_day": 1, "churn_risk": 0.0}
    )
    tables = {"customers": p_customers, "tickets": p_tickets, "predictions": predictions}
    return {
        "customers": len(customers),
        "candidates": plain.candidates,
        "plain_recovered_share": plain.recovered_share,
        "plain_attack_s": plain.seconds,
        "hmac_recovered_share": keyed.recovered_share,
        "raw_join_rows": len(raw_join),
        "pseudonym_join_rows": len(p_join),
        "per_customer_totals_equal": int(raw_minutes.sort_index().equals(p_minutes.sort_index())),
        "pseudonyms_stable": int(pii.pseudonymise(customers, key, ["email"])["email"].equals(
            p_customers["email"])),
        "other_key_overlap": overlap,
        "raw_emails_in_tables": int(p_customers["email"].isin(customers["email"]).sum()),
    }, tables  # fmt: skip


def erase_customer(
    victim: str, warehouse: Path, encrypted: dict[str, Path], key: bytes
) -> dict[str, Any]:
    """Delete ``victim`` from the warehouse, the encrypted training extract and the encrypted
    prediction log; count their rows and everyone else's before and after."""
    import io

    import pandas as pd

    def extract_rows() -> tuple[int, int]:
        frame = pd.read_csv(
            io.BytesIO(at_rest.decrypt_bytes(encrypted["training"].read_bytes(), key))
        )
        return int((frame["customer_id"] == victim).sum()), len(frame)

    def predlog_rows() -> tuple[int, int]:
        plain = warehouse.with_name("predlog-plain.sqlite")
        plain.write_bytes(at_rest.decrypt_bytes(encrypted["predlog"].read_bytes(), key))
        with sqlite3.connect(plain) as conn:
            mine = conn.execute("SELECT COUNT(*) FROM predictions WHERE request_id = ?", (victim,))
            return mine.fetchone()[0], conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[
                0
            ]

    def count() -> dict[str, tuple[int, int]]:
        sizes, mine = pii.table_sizes(warehouse), pii.rows_of(warehouse, victim)
        counts = {t: (mine[t], sizes[t]) for t in pii.STORE_TABLES}
        counts["training_extract"], counts["prediction_log"] = extract_rows(), predlog_rows()
        return counts

    before = count()
    pii.erase_from_store(warehouse, victim)
    frame = pd.read_csv(io.BytesIO(at_rest.decrypt_bytes(encrypted["training"].read_bytes(), key)))
    encrypted["training"].write_bytes(
        at_rest.Fernet(key).encrypt(
            frame[frame["customer_id"] != victim].to_csv(index=False).encode()
        )
    )
    plain = warehouse.with_name("predlog-plain.sqlite")
    predlog_rows()  # decrypts into ``plain``
    with sqlite3.connect(plain) as conn:
        conn.execute("DELETE FROM predictions WHERE request_id = ?", (victim,))
    with sqlite3.connect(plain) as conn:
        conn.execute("VACUUM")
    encrypted["predlog"].write_bytes(at_rest.Fernet(key).encrypt(plain.read_bytes()))
    after = count()
    plain.unlink()
    return {
        "stores": len(before),
        "victim_rows_before": sum(v[0] for v in before.values()),
        "victim_rows_after": sum(v[0] for v in after.values()),
        "stores_holding_victim_before": sum(v[0] > 0 for v in before.values()),
        "other_rows_before": sum(v[1] - v[0] for v in before.values()),
        "other_rows_after": sum(v[1] - v[0] for v in after.values()),
        "victim_bytes_in_warehouse": int(victim.encode() in warehouse.read_bytes()),
        **{f"victim_rows_before.{k}": v[0] for k, v in before.items()},
    }


# --- at rest, audit, supply chain ----------------------------------------------------------------


def measure_at_rest(
    tables: dict[str, Any], predlog: Path, work: Path, flips: int, seed: int
) -> tuple[dict[str, Any], dict[str, Path], bytes]:
    """Encrypt the training extract and the prediction log; tamper; rotate the key."""
    import hashlib
    import io

    import pandas as pd

    pii.write_store(work / "warehouse.sqlite", tables)
    extract = work / "training.csv"
    tables["customers"].drop(columns=["email"]).to_csv(extract, index=False)
    old = at_rest.new_key()
    encrypted = {"training": work / "training.csv.enc", "predlog": work / "predictions.sqlite.enc"}
    at_rest.encrypt_file(extract, encrypted["training"], old)
    at_rest.encrypt_file(predlog, encrypted["predlog"], old)
    rows_before = len(pd.read_csv(extract))
    sha_before = hashlib.sha256(extract.read_bytes()).hexdigest()
    plain_in_cipher = int(extract.read_bytes()[:64] in encrypted["training"].read_bytes())
    extract.unlink()
    for suffix in ("", "-wal", "-shm"):  # the plaintext log is gone once encrypted
        Path(f"{predlog}{suffix}").unlink(missing_ok=True)
    token = encrypted["training"].read_bytes()
    tamper = at_rest.tamper_study(token, old, flips, seed)
    honest_ok = int(hashlib.sha256(at_rest.decrypt_bytes(token, old)).hexdigest() == sha_before)
    new = at_rest.new_key()
    rotation = at_rest.rotate_files(list(encrypted.values()), old, new)
    after = at_rest.decrypt_bytes(encrypted["training"].read_bytes(), new)
    return (
        {
            "flips": tamper.flips,
            "flips_refused": tamper.refused,
            "flips_silently_decrypted": tamper.silently_decrypted,
            "honest_file_decrypts": honest_ok,
            "plaintext_visible_in_ciphertext": plain_in_cipher,
            "rotated_files": rotation.files,
            "rotated_plaintext_equal": rotation.plaintext_equal,
            "rotated_old_key_refused": rotation.old_key_refused,
            "rows_before_rotation": rows_before,
            "rows_after_rotation": len(pd.read_csv(io.BytesIO(after))),
            "sha_equal_after_rotation": int(hashlib.sha256(after).hexdigest() == sha_before),
        },
        encrypted,
        new,
    )


def measure_audit(chain: Path, tampered_dir: Path) -> dict[str, Any]:
    honest = audit.verify(chain)
    copies = audit.tampered_copies(chain, tampered_dir, line=1)
    results = {name: audit.verify(path) for name, path in copies.items()}
    anchored = audit.verify(copies["truncated"], expected_head=honest.head)
    actions = [line for line in chain.read_text().splitlines() if '"GET /admin/audit"' in line]
    return {
        "entries": honest.entries,
        "honest_ok": int(honest.ok),
        "admin_requests_logged": len(actions),
        "edited_detected": int(not results["edited"].ok),
        "edited_first_bad_line": results["edited"].first_bad_line,
        "rehashed_edit_detected": int(not results["edited_rehashed"].ok),
        "rehashed_edit_first_bad_line": results["edited_rehashed"].first_bad_line,
        "deleted_detected": int(not results["deleted"].ok),
        "deleted_first_bad_line": results["deleted"].first_bad_line,
        "truncated_detected_without_anchor": int(not results["truncated"].ok),
        "truncated_detected_with_anchor": int(not anchored.ok),
        "head": honest.head,
    }
