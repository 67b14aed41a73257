"""The security lab's counterfactuals: each defence replaced by a plausible broken one (or the
attack's loader by a safe one), run through the lab's own ``run()``.

``python -m labs.security --list-counterfactuals`` lists them; ``--counterfactual NAME`` runs
one; ``--audit`` shows every claim failing under one. Counterfactuals that do not touch the
supply chain switch part 7 off (``supply_chain: false``): it is the slowest part and their
claims do not depend on it.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from labs.common.counterfactuals import Counterfactual, LabCounterfactuals
from labs.security import audit, pii
from labs.security import supply_chain as sc
from labs.security.lab import SecurityParams, run

# --- model files --------------------------------------------------------------------------

_RESTRICTED = """
import pickle, sys
class Restricted(pickle.Unpickler):
    def find_class(self, module, name):
        if module.split(".")[0] in ("numpy", "sklearn", "scipy"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is forbidden")
Restricted(open(sys.argv[1], "rb")).load()
"""


def load_pickle_restricted_in_child(path: Path, timeout: float = 30.0) -> int:
    """Unpickle in a child with the Python docs' "restricting globals" Unpickler: only numpy,
    scikit-learn and scipy names resolve, so neither payload can run."""
    done = subprocess.run(
        [sys.executable, "-c", _RESTRICTED, str(path)],
        capture_output=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
    )
    return done.returncode


def load_file_trusting(path: Path) -> Any:
    """A loader that loads what it is given: a file that is not a skops archive is unpickled
    (in a child here, as the lab never unpickles in its own process), and a skops file is
    loaded trusting every type it names."""
    import zipfile

    import skops.io

    from labs.security.model_files import load_pickle_in_child

    if not zipfile.is_zipfile(path):
        return load_pickle_in_child(path)
    return skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))


def load_registered_trusting(model_uri: str) -> Any:
    """Load a registered model as stored, without comparing its bytes with the sha256 recorded
    at registration."""
    from labs.common.tracking import load_model_file, logged_model_file

    return load_model_file(logged_model_file(model_uri))


# --- personal data --------------------------------------------------------------------------


def plain_sha256_pseudonym(key: bytes, value: str) -> str:
    """A "pseudonym" that is the unkeyed SHA-256 of the value (the key is ignored)."""
    return pii.plain_sha256(value)


def erase_warehouse_only(
    victim: str, warehouse: Path, encrypted: dict[str, Path], key: bytes, cipher: type
) -> None:
    """Erasure that runs the DELETE on the warehouse and forgets the encrypted copies."""
    pii.erase_from_store(warehouse, victim)


# --- encryption at rest ---------------------------------------------------------------------


class UnauthenticatedCipher:
    """AES-256-CTR without a MAC: confidentiality only. Decryption never fails — a flipped bit
    or a wrong key decrypts to garbage without a word."""

    @staticmethod
    def new_key() -> bytes:
        return os.urandom(32)

    @staticmethod
    def _ctr(key: bytes, nonce: bytes) -> Any:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        return Cipher(algorithms.AES(key), modes.CTR(nonce))

    @classmethod
    def encrypt(cls, data: bytes, key: bytes) -> bytes:
        nonce = os.urandom(16)
        body = cls._ctr(key, nonce).encryptor().update(data)
        return base64.urlsafe_b64encode(nonce + body)

    @classmethod
    def decrypt(cls, token: bytes, *keys: bytes) -> bytes:
        raw = base64.urlsafe_b64decode(token)
        return cls._ctr(keys[0], raw[:16]).decryptor().update(raw[16:])

    @classmethod
    def rotate(cls, token: bytes, old: bytes, new: bytes) -> bytes:
        return cls.encrypt(cls.decrypt(token, old), new)


# --- audit chain ----------------------------------------------------------------------------


def verify_each_line(path: Path, expected_head: str | None = None) -> audit.Verification:
    """A verifier that checks each line's own hash and nothing else: not the link to the line
    before, not the sequence, not the head."""
    import json

    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line]
    for number, line in enumerate(lines):
        entry = json.loads(line)
        if audit._digest(entry) != entry.get("hash"):
            return audit.Verification(len(lines), False, number, "line changed", entry["hash"])
    head = json.loads(lines[-1])["hash"] if lines else audit.GENESIS
    return audit.Verification(len(lines), True, None, "intact", head)


# --- supply chain ---------------------------------------------------------------------------

VULNERABLE_PIN = ("requests", "2.31.0")  # inside GHSA-9wx4-h78v-vm56 (fixed in 2.32.0)


def lock_pinning_vulnerable_requests(work: Path) -> Path:
    """A copy of requirements.lock whose requests pin went back to 2.31.0 (hashes kept)."""
    name, version = VULNERABLE_PIN
    text = sc.project_lock(work).read_text()
    changed, count = re.subn(rf"^{name}==\S+", f"{name}=={version}", text, flags=re.M)
    if count != 1:
        raise RuntimeError(f"requirements.lock pins {name} {count} times, expected once")
    target = work / "requirements-vulnerable.lock"
    target.write_text(changed)
    return target


def lock_without_hashes(work: Path) -> Path:
    """A copy of requirements.lock compiled without ``--generate-hashes``: pins only."""
    text = sc.project_lock(work).read_text()
    target = work / "requirements-unhashed.lock"
    target.write_text(re.sub(r"\s*\\\n\s*--hash=sha256:[0-9a-f]{64}", "", text))
    return target


def install_without_hashes(wheel_dir: Path, sha256: str, target: Path) -> sc.InstallAttempt:
    """The install a hashless lock allows: name and version only, no ``--require-hashes``."""
    return sc._pip_install(wheel_dir, f"{sc.DIST}=={sc.VERSION}", target)


NO_SUPPLY = {"supply_chain": False}

COUNTERFACTUALS = LabCounterfactuals(
    "security",
    "security",
    SecurityParams,
    run,
    (
        Counterfactual(
            "restricted-unpickler",
            "the pickles are loaded with a restricted Unpickler",
            ("pickle_runs_code_on_load", "scanner_denylist_misses_payload"),
            "The child loads each pickle with an Unpickler that resolves only numpy, "
            "scikit-learn and scipy names: no payload runs, so 'a pickle runs whatever it "
            "names' and 'the scanner misses a working payload' must both fail.",
            params=NO_SUPPLY,
            components={"unpickle": load_pickle_restricted_in_child},
        ),
        Counterfactual(
            "loader-trusts-the-file",
            "the model loader trusts whatever it is given",
            ("allowlist_refuses_untrusted_files", "registered_bytes_verified"),
            "The loader unpickles a file that is not a skops archive, trusts every type a "
            "skops file names, and never compares a registered model's bytes with the sha256 "
            "recorded at registration.",
            params=NO_SUPPLY,
            components={
                "load_file": load_file_trusting,
                "load_registered": load_registered_trusting,
            },
        ),
        Counterfactual(
            "plain-sha256-pseudonyms",
            "personal data hashed without a key (plain SHA-256)",
            ("plain_hash_reversed_hmac_not", "pseudonyms_still_join"),
            "E-mails and customer ids are 'pseudonymised' with an unkeyed SHA-256: anyone with "
            "a list of names reverses them, and another key gives the same values.",
            params=NO_SUPPLY,
            components={"pseudonym": plain_sha256_pseudonym},
        ),
        Counterfactual(
            "erasure-forgets-copies",
            "erasure deletes from the warehouse only",
            ("erasure_removes_every_row",),
            "The erasure request runs its DELETE on the warehouse tables; the encrypted "
            "training extract and the encrypted prediction log keep the customer's rows.",
            params=NO_SUPPLY,
            components={"eraser": erase_warehouse_only},
        ),
        Counterfactual(
            "unauthenticated-encryption",
            "files encrypted with AES-CTR and no MAC",
            ("tampering_detected_at_rest", "key_rotation_lossless"),
            "Encryption at rest without authentication: a flipped bit decrypts to garbage "
            "without an error, and the retired key still 'reads' every rotated file (as "
            "garbage) instead of being refused.",
            params=NO_SUPPLY,
            components={"cipher": UnauthenticatedCipher},
        ),
        Counterfactual(
            "dev-server-deployed",
            "the serving app started as in development",
            ("tls_in_transit", "api_keys_scoped", "rate_limited_per_key"),
            "The app is deployed the way a developer runs it: plain HTTP on the port and no "
            "API-key check (no scopes, no rate limit) in front of the routes.",
            params=NO_SUPPLY,
            components={"dev_server": True},
        ),
        Counterfactual(
            "hash-without-chain",
            "the audit log verifier checks each line's own hash only",
            ("audit_chain_detects_tampering",),
            "Every line's hash is checked, but not its link to the line before: a deleted "
            "line, or an edit whose own hash was recomputed, passes verification.",
            params=NO_SUPPLY,
            components={"verify_chain": verify_each_line},
        ),
        Counterfactual(
            "lock-pins-a-vulnerable-version",
            "requirements.lock pins requests 2.31.0",
            ("hash_locked_install",),
            "The lock went back to requests 2.31.0, inside a published advisory's range "
            "(GHSA-9wx4-h78v-vm56, fixed in 2.32.0): the offline audit must flag it.",
            components={"lock_file": lock_pinning_vulnerable_requests},
        ),
        Counterfactual(
            "lock-without-hashes",
            "requirements.lock without hashes, installed without --require-hashes",
            ("hash_locked_install",),
            "The lock was compiled without --generate-hashes, so the install cannot check "
            "hashes: the wheel swapped in on the index under the same name and version is "
            "installed.",
            components={"lock_file": lock_without_hashes, "installer": install_without_hashes},
        ),
    ),
    audit_params={
        "train_rows": 400,
        "customers": 200,
        "served_customers": 3,
        "rate_limit": 4,
        "tamper_flips": 40,
        "registered_model": "churn-model-security-audit",
    },
)
