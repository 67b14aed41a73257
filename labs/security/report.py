"""What the security lab leaves for people: the printed table and the attack plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def attack_rows(m: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per attack: did it succeed without the defence, and with it."""
    f, p, r, t, a, au = m["files"], m["pii"], m["at_rest"], m["transit"], m["access"], m["audit"]
    return [
        {"attack": "pickle payload (exec)", "undefended": f["exec.payload_ran"],
         "defended": 1 - f["exec.allowlist_refused"], "defence": "skops + exact allowlist"},
        {"attack": "pickle payload (pathlib)", "undefended": f["pathlib.payload_ran"],
         "defended": 1 - f["pathlib.allowlist_refused"], "defence": "allowlist (scanner: missed)"},
        {"attack": "swapped model file", "undefended": 1,
         "defended": 1 - m["registered"]["tampered_refused"], "defence": "registered sha256"},
        {"attack": "dictionary on e-mails", "undefended": p["plain_recovered_share"],
         "defended": p["hmac_recovered_share"], "defence": "keyed HMAC"},
        {"attack": "bit flip at rest", "undefended": 1,
         "defended": r["flips_silently_decrypted"] / max(r["flips"], 1), "defence": "Fernet"},
        {"attack": "untrusted TLS client", "undefended": 1,
         "defended": 1 - t["system_trust_store.refused"], "defence": "TLS, local CA"},
        {"attack": "call without key", "undefended": 1,
         "defended": int(a["no_key.predict"] == 200), "defence": "API keys (401)"},
        {"attack": "wrong scope", "undefended": 1,
         "defended": int(a["predict_key.admin"] == 200), "defence": "scopes (403)"},
        {"attack": "flood one key", "undefended": 1,
         "defended": a["burst.ok"] / max(a["burst.sent"], 1), "defence": "rate limit (429)"},
        {"attack": "edit audit line", "undefended": 1,
         "defended": 1 - au["edited_detected"], "defence": "hash chain"},
    ]  # fmt: skip


def format_tables(m: dict[str, Any]) -> str:
    from labs.common.tables import text_table

    rows = [
        {"attack": r["attack"], "succeeds undefended": r["undefended"],
         "succeeds defended": r["defended"], "defence": r["defence"]}
        for r in attack_rows(m)
    ]  # fmt: skip
    p = m["pii"]
    return "\n".join(
        [
            text_table(
                rows, title="Attacks, without and with the defence (share that got through):"
            ),
            "",
            f"  The dictionary of {p['candidates']:,} addresses reversed "
            f"{p['plain_recovered_share']:.0%} of plain hashes in {p['plain_attack_s']:.2f} s and "
            f"{p['hmac_recovered_share']:.0%} of the HMAC pseudonyms. The flood row counts what a "
            "limited key still got\n  through (its quota), the rest are refused with 429.",
        ]
    )


def plot_attacks(m: dict[str, Any], path: Path) -> Path:
    import numpy as np

    from labs.common.plots import new_figure, save_figure, unit_interval

    rows = attack_rows(m)
    fig, ax = new_figure(1, 1, size=(11, 4.8))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [float(r["undefended"]) for r in rows], 0.4, label="without the defence")
    ax.bar(x + 0.2, [float(r["defended"]) for r in rows], 0.4, label="with the defence")
    ax.set_xticks(x, [r["attack"].replace(" (", "\n(").replace(" on ", "\non ") for r in rows],
                  fontsize=7)  # fmt: skip
    unit_interval(ax, label="share of the attack that succeeded")
    ax.set_title("Each defence against its attack, measured")
    ax.legend(loc="upper right")
    save_figure(fig, path)
    return path
