"""Security benchmark: what the defences of the security lab cost, and how fast the attack is.

1. The dictionary attack: plain SHA-256 candidates hashed per second (the attacker's speed)
   and the time to build and search the lab's 192,000-address dictionary.
2. Keyed pseudonyms: HMAC-SHA256 values per second (the defender's cost per identifier).
3. Encryption at rest: Fernet encrypt and decrypt throughput in MB/s on a 5 MB file.
4. The API-key check: one constant-time lookup against 1,000 stored key hashes, in µs.

Prints the figures; writes reports/bench/security.json. Nothing is served, nothing is kept.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def best_of(action: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from labs.security import access, at_rest, pii

    candidates = pii.candidate_emails()
    targets = [pii.plain_sha256(e) for e in candidates[::1000]]
    attack_s = best_of(lambda: pii.dictionary_attack(targets, candidates), repeat=2)
    key = os.urandom(32)
    sample = candidates[:100_000]
    hmac_s = best_of(lambda: [pii.pseudonym(key, e) for e in sample])
    data = os.urandom(5_000_000)
    fernet_key = at_rest.new_key()
    f = at_rest.Fernet(fernet_key)
    token = f.encrypt(data)
    enc_s = best_of(lambda: f.encrypt(data))
    dec_s = best_of(lambda: f.decrypt(token))
    plain, stored = access.issue_keys({f"k{i}": ("predict",) for i in range(1000)})
    lookup_s = best_of(lambda: [access.find_key(plain["k500"], stored) for _ in range(100)]) / 100
    figures = {
        "dictionary_candidates": len(candidates),
        "dictionary_attack_s": round(attack_s, 3),
        "sha256_per_s": round(len(candidates) / attack_s),
        "hmac_per_s": round(len(sample) / hmac_s),
        "fernet_encrypt_mb_s": round(len(data) / enc_s / 1e6, 1),
        "fernet_decrypt_mb_s": round(len(data) / dec_s / 1e6, 1),
        "key_lookup_1000_keys_us": round(lookup_s * 1e6, 1),
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    for name, value in figures.items():
        print(f"  {name:28s} {value}")
    out = ROOT / "reports" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "security.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
