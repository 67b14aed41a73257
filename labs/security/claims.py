"""The security lab's claims, each decided by the numbers the lab measured."""

from __future__ import annotations

from typing import Any

from labs.common.results import Claim


def make_claims(params: Any, m: dict[str, Any]) -> list[Claim]:
    f, p, r, t, a = m["files"], m["pii"], m["at_rest"], m["transit"], m["access"]
    e, au, reg = m["erasure"], m["audit"], m["registered"]
    claims = [
        Claim(
            "pickle_runs_code_on_load",
            "Loading a pickle runs whatever it names: both planted payloads (exec, and an "
            "ordinary pathlib call) wrote their marker file in a child process.",
            passed=f["exec.payload_ran"] == 1 and f["pathlib.payload_ran"] == 1,
            measured={k: v for k, v in f.items() if k.endswith((".payload_ran", ".child_exit"))},
        ),
        Claim(
            "allowlist_refuses_untrusted_files",
            "The project's loader (skops, exact allowlist) refuses both payload pickles before "
            "running anything and a skops file naming os.system; the honest skops model loads "
            "and predicts exactly as trained.",
            passed=f["exec.allowlist_refused"] == f["pathlib.allowlist_refused"] == 1
            and f["exec.marker_after_allowlist"] == f["pathlib.marker_after_allowlist"] == 0
            and f["skops_os_system.allowlist_refused"] == 1
            and f["honest_skops.loaded_same_predictions"] == 1,
            measured={k: v for k, v in f.items() if "allowlist" in k or "honest_skops" in k},
        ),
        Claim(
            "scanner_denylist_misses_payload",
            "picklescan's denylist flags the exec payload but not the pathlib one (0 dangerous "
            "globals), while the honest model pickle has 'suspicious' globals too: a denylist "
            "either misses attacks or flags honest files; an exact allowlist does neither.",
            passed=f["exec.picklescan_flagged"] == 1
            and f["pathlib.picklescan_flagged"] == 0
            and f["pathlib.payload_ran"] == 1
            and f["honest_pickle.picklescan_dangerous"] == 0
            and f["honest_pickle.picklescan_suspicious"] > 0,
            measured={k: v for k, v in f.items() if "picklescan" in k},
        ),
        Claim(
            "registered_bytes_verified",
            "The registered model's stored file, swapped for another valid model file (same "
            "types, so it passes the allowlist), is refused by the project's loader (sha256 "
            "differs from the one recorded at registration); restored, it loads.",
            passed=reg["tampered_refused"] == 1
            and reg["refusal_names_hash"] == 1
            and reg["swapped_model_served"] == 0
            and reg["restored_loads"] == 1,
            measured=reg,
        ),
        Claim(
            "plain_hash_reversed_hmac_not",
            "A dictionary attack reverses ≥ 99 % of unkeyed SHA-256 e-mail hashes within "
            f"{params.attack_budget_s:g} s; the same attack recovers none of the keyed HMAC "
            "pseudonyms.",
            passed=p["plain_recovered_share"] >= 0.99
            and p["plain_attack_s"] <= params.attack_budget_s
            and p["hmac_recovered_share"] == 0.0,
            measured={
                k: p[k]
                for k in (
                    "customers",
                    "candidates",
                    "plain_recovered_share",
                    "plain_attack_s",
                    "hmac_recovered_share",
                )
            },  # fmt: skip
        ),
        Claim(
            "pseudonyms_still_join",
            "Pseudonymised tables join exactly like the raw ones (same rows, same per-customer "
            "totals); the same key gives the same pseudonym, another key shares none; no raw "
            "e-mail is left in the tables.",
            passed=p["raw_join_rows"] == p["pseudonym_join_rows"] > 0
            and p["per_customer_totals_equal"] == 1
            and p["pseudonyms_stable"] == 1
            and p["other_key_overlap"] == 0
            and p["raw_emails_in_tables"] == 0,
            measured={
                k: p[k]
                for k in (
                    "raw_join_rows",
                    "pseudonym_join_rows",
                    "per_customer_totals_equal",
                    "pseudonyms_stable",
                    "other_key_overlap",
                    "raw_emails_in_tables",
                    "key_source_is_env",
                )
            },  # fmt: skip
        ),
        Claim(
            "erasure_removes_every_row",
            "Erasing one customer removes every row derived from them in all five stores "
            "(three warehouse tables, the encrypted training extract and prediction log) and "
            "not one row of anyone else.",
            passed=e["stores_holding_victim_before"] == e["stores"]
            and e["victim_rows_after"] == 0
            and e["other_rows_after"] == e["other_rows_before"]
            and e["victim_bytes_in_warehouse"] == 0,
            measured=e,
        ),
        Claim(
            "tampering_detected_at_rest",
            f"Each of {r['flips']} single-bit flips in an encrypted file is refused "
            "(InvalidToken), none decrypts silently; the untouched file decrypts to the same "
            "sha256, and no plaintext is visible in the ciphertext.",
            passed=r["flips_refused"] == r["flips"] > 0
            and r["flips_silently_decrypted"] == 0
            and r["honest_file_decrypts"] == 1
            and r["plaintext_visible_in_ciphertext"] == 0,
            measured={
                k: r[k]
                for k in (
                    "flips",
                    "flips_refused",
                    "flips_silently_decrypted",
                    "honest_file_decrypts",
                    "plaintext_visible_in_ciphertext",
                )
            },  # fmt: skip
        ),
        Claim(
            "key_rotation_lossless",
            "Key rotation re-encrypts every file under the new key with identical plaintext "
            "(sha256, row count); the retired key can no longer read them.",
            passed=r["rotated_plaintext_equal"]
            == r["rotated_files"]
            == r["rotated_old_key_refused"]
            and r["rows_before_rotation"] == r["rows_after_rotation"] > 0
            and r["sha_equal_after_rotation"] == 1,
            measured={k: r[k] for k in r if "rot" in k},
        ),
        Claim(
            "tls_in_transit",
            "The serving app answers over TLS to a client trusting the lab's CA (200); a client "
            "with the system trust store or another CA is refused at the handshake, and plain "
            "HTTP gets no answer from the model.",
            passed=t["trusting_ca.status"] == 200
            and t["system_trust_store.refused"] == 1
            and t["rogue_ca.refused"] == 1
            and t["plaintext_http.status"] != 200,
            measured=t,
        ),
        Claim(
            "api_keys_scoped",
            "No or an unknown key → 401; a key without the route's scope → 403 (predict key on "
            "admin, admin key on predict); the right key and scope → 200; health stays open.",
            passed=a["no_key.predict"] == 401
            and a["wrong_key.predict"] == 401
            and a["predict_key.admin"] == 403
            and a["admin_key.predict"] == 403
            and a["admin_key.admin"] == 200
            and a["no_key.health"] == 200
            and a["predict_key.predict_ok"] == a["predict_key.predict_sent"],
            measured={k: v for k, v in a.items() if not k.startswith(("burst", "other"))},
        ),
        Claim(
            "rate_limited_per_key",
            f"A key sending {params.rate_limit + 5} requests gets exactly its limit of "
            f"{params.rate_limit} answered, then 429; another key is unaffected meanwhile.",
            passed=a["burst.ok"] == params.rate_limit
            and a["burst.limited"] == 5
            and a["burst.first_429_at"] == params.rate_limit
            and a["other_key_during_limit"] == 200,
            measured={k: v for k, v in a.items() if k.startswith(("burst", "other"))},
        ),
        Claim(
            "audit_chain_detects_tampering",
            "The hash-chained audit log (alias moves, key issue, erasure, every admin request) "
            "verifies; an edited or deleted past line is detected at that line (an edit whose "
            "own hash was recomputed, at the next line); cut-off lines are detected against the "
            "head hash kept in MLflow.",
            passed=au["honest_ok"] == 1
            and au["admin_requests_logged"] >= 2
            and au["edited_detected"] == au["deleted_detected"] == 1
            and au["edited_first_bad_line"] == au["deleted_first_bad_line"] == 1
            and au["rehashed_edit_detected"] == 1
            and au["rehashed_edit_first_bad_line"] == 2
            and au["truncated_detected_with_anchor"] == 1,
            measured={k: v for k, v in au.items() if k != "head"},
        ),
    ]
    if "supply" in m:
        claims.append(hash_locked_claim(m["supply"]))
    return claims


def hash_locked_claim(s: dict[str, Any]) -> Claim:
    """The supply-chain claim (part 7), from ``supply_chain.measure_supply_chain``."""
    return Claim(
        "hash_locked_install",
        "Every requirement in requirements.lock carries a sha256; pip --require-hashes installs "
        "a wheel pinned by its hash and refuses the wheel swapped in under the same name and "
        "version; pip-audit (offline, OSV feed of published advisories for older versions of "
        "packages we lock) flags every one of those packages pinned to an affected version, "
        "and none in the lock.",
        passed=s["lock_pinned"] == s["lock_hashed"] > 100
        and s["genuine_installed"] == 1
        and s["swapped_refused"] == 1
        and s["swapped_installed"] == 0
        and s["advised_locked_packages"] >= 5
        and s["control_flagged"] == s["advised_locked_packages"]
        and s["audit_packages"] > 100
        and s["audit_exit_code"] == 0
        and s["audit_flagged_lock_packages"] == 0,
        measured=s,
    )
