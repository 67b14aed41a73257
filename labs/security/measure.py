"""The security lab's measurements that need no server: personal data and erasure, encryption
at rest, the audit chain. Each takes the component it demonstrates as a parameter (the
pseudonym function, the eraser, the cipher, the chain verifier) so a counterfactual can run
the same measurement on a broken one."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labs.security import at_rest, audit, pii

Pseudonym = Callable[[bytes, str], str]


def measure_pii(
    customers: Any, key: bytes, seed: int, pseudonym: Pseudonym = pii.pseudonym
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Attack plain hashes and the pseudonyms; join on pseudonyms; build the warehouse."""
    import pandas as pd

    candidates = pii.candidate_emails()
    plain = pii.dictionary_attack([pii.plain_sha256(e) for e in customers["email"]], candidates)
    keyed = pii.dictionary_attack([pseudonym(key, e) for e in customers["email"]], candidates)
    tickets = pii.make_support_tickets(customers, seed)
    raw_join = customers.merge(tickets, on="customer_id")
    p_customers = pii.pseudonymise(customers, key, ["customer_id", "email"], pseudonym)
    p_tickets = pii.pseudonymise(tickets, key, ["customer_id"], pseudonym)
    p_join = p_customers.merge(p_tickets, on="customer_id")
    # the same customers' ticket totals, matched through the keyed mapping
    mapping = dict(zip(customers["customer_id"], p_customers["customer_id"], strict=True))
    raw_minutes = raw_join.groupby("customer_id")["minutes"].sum().rename(index=mapping)
    p_minutes = p_join.groupby("customer_id")["minutes"].sum()
    other_key = bytes(reversed(key))
    overlap = len(
        set(p_customers["customer_id"])
        & {pseudonym(other_key, c) for c in customers["customer_id"]}
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
        "pseudonyms_stable": int(pii.pseudonymise(customers, key, ["email"], pseudonym)[
            "email"].equals(p_customers["email"])),
        "other_key_overlap": overlap,
        "raw_emails_in_tables": int(p_customers["email"].isin(customers["email"]).sum()),
    }, tables  # fmt: skip


def erase_everywhere(
    victim: str, warehouse: Path, encrypted: dict[str, Path], key: bytes, cipher: type
) -> None:
    """Delete ``victim`` from the warehouse tables, the encrypted training extract and the
    encrypted prediction log (each decrypted, cleaned, vacuumed, encrypted again)."""
    import io

    import pandas as pd

    pii.erase_from_store(warehouse, victim)
    training = cipher.decrypt(encrypted["training"].read_bytes(), key)
    frame = pd.read_csv(io.BytesIO(training))
    kept = frame[frame["customer_id"] != victim].to_csv(index=False).encode()
    encrypted["training"].write_bytes(cipher.encrypt(kept, key))
    plain = warehouse.with_name("predlog-plain.sqlite")
    plain.write_bytes(cipher.decrypt(encrypted["predlog"].read_bytes(), key))
    # The serving app's log is in WAL mode: only closing the (last) connection checkpoints
    # the delete into the file we encrypt — read it before and the rows are still there.
    with contextlib.closing(sqlite3.connect(plain)) as conn:
        conn.execute("DELETE FROM predictions WHERE request_id = ?", (victim,))
        conn.commit()
        conn.execute("VACUUM")
    encrypted["predlog"].write_bytes(cipher.encrypt(plain.read_bytes(), key))
    plain.unlink()


Eraser = Callable[[str, Path, dict[str, Path], bytes, type], None]


def erase_customer(
    victim: str,
    warehouse: Path,
    encrypted: dict[str, Path],
    key: bytes,
    cipher: type = at_rest.FernetCipher,
    eraser: Eraser = erase_everywhere,
) -> dict[str, Any]:
    """Count ``victim``'s rows and everyone else's in every store, erase them with ``eraser``,
    count again."""
    import io

    import pandas as pd

    plain = warehouse.with_name("predlog-count.sqlite")

    def extract_rows() -> tuple[int, int]:
        frame = pd.read_csv(io.BytesIO(cipher.decrypt(encrypted["training"].read_bytes(), key)))
        return int((frame["customer_id"] == victim).sum()), len(frame)

    def predlog_rows() -> tuple[int, int]:
        plain.write_bytes(cipher.decrypt(encrypted["predlog"].read_bytes(), key))
        with contextlib.closing(sqlite3.connect(plain)) as conn:
            mine = conn.execute("SELECT COUNT(*) FROM predictions WHERE request_id = ?", (victim,))
            total = conn.execute("SELECT COUNT(*) FROM predictions")
            counts = mine.fetchone()[0], total.fetchone()[0]
        plain.unlink()
        return counts

    def count() -> dict[str, tuple[int, int]]:
        sizes, mine = pii.table_sizes(warehouse), pii.rows_of(warehouse, victim)
        counts = {t: (mine[t], sizes[t]) for t in pii.STORE_TABLES}
        counts["training_extract"], counts["prediction_log"] = extract_rows(), predlog_rows()
        return counts

    before = count()
    eraser(victim, warehouse, encrypted, key, cipher)
    after = count()
    return {
        "stores": len(before),
        "victim_rows_before": sum(v[0] for v in before.values()),
        "victim_rows_after": sum(v[0] for v in after.values()),
        "stores_holding_victim_before": sum(v[0] > 0 for v in before.values()),
        "stores_holding_victim_after": sum(v[0] > 0 for v in after.values()),
        "other_rows_before": sum(v[1] - v[0] for v in before.values()),
        "other_rows_after": sum(v[1] - v[0] for v in after.values()),
        "victim_bytes_in_warehouse": int(victim.encode() in warehouse.read_bytes()),
        **{f"victim_rows_before.{k}": v[0] for k, v in before.items()},
    }


def measure_at_rest(
    tables: dict[str, Any],
    predlog: Path,
    work: Path,
    flips: int,
    seed: int,
    cipher: type = at_rest.FernetCipher,
) -> tuple[dict[str, Any], dict[str, Path], bytes]:
    """Encrypt the training extract and the prediction log; tamper; rotate the key."""
    import hashlib
    import io

    import pandas as pd

    pii.write_store(work / "warehouse.sqlite", tables)
    extract = work / "training.csv"
    tables["customers"].drop(columns=["email"]).to_csv(extract, index=False)
    old = cipher.new_key()
    encrypted = {"training": work / "training.csv.enc", "predlog": work / "predictions.sqlite.enc"}
    at_rest.encrypt_file(extract, encrypted["training"], old, cipher)
    at_rest.encrypt_file(predlog, encrypted["predlog"], old, cipher)
    rows_before = len(pd.read_csv(extract))
    sha_before = hashlib.sha256(extract.read_bytes()).hexdigest()
    plain_in_cipher = int(extract.read_bytes()[:64] in encrypted["training"].read_bytes())
    extract.unlink()
    for suffix in ("", "-wal", "-shm"):  # the plaintext log is gone once encrypted
        Path(f"{predlog}{suffix}").unlink(missing_ok=True)
    token = encrypted["training"].read_bytes()
    tamper = at_rest.tamper_study(token, old, flips, seed, cipher)
    honest_ok = int(hashlib.sha256(cipher.decrypt(token, old)).hexdigest() == sha_before)
    new = cipher.new_key()
    rotation = at_rest.rotate_files(list(encrypted.values()), old, new, cipher)
    after = cipher.decrypt(encrypted["training"].read_bytes(), new)
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


def measure_audit(
    chain: Path, tampered_dir: Path, verify: Callable[..., audit.Verification] = audit.verify
) -> dict[str, Any]:
    """Verify the chain, then tampered copies of it (edited, re-hashed edit, deleted, cut)."""
    honest = verify(chain)
    copies = audit.tampered_copies(chain, tampered_dir, line=1)
    results = {name: verify(path) for name, path in copies.items()}
    anchored = verify(copies["truncated"], expected_head=honest.head)
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
