"""Every ready lab names counterfactuals, and between them they name every claim its code makes
(read from the ``Claim(...)`` calls in the lab's modules) — no more, no less. Whether each one
really turns its claims ✗ is what ``make claims-audit`` runs (in CI): here, only that nothing is
left without a counterfactual and nothing names a claim that does not exist."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from labs.common.catalogue import ready_labs
from labs.common.counterfactuals import LabCounterfactuals

LABS = Path(__file__).resolve().parents[2] / "labs"


def claim_ids_in_code(topic: str) -> set[str]:
    """The ids of the claims the lab's modules build: ``Claim("id", …)`` and
    ``Claim.not_checked("id", …)`` with a literal id (a computed id fails the test)."""
    ids: set[str] = set()
    for path in sorted((LABS / topic).glob("*.py")):
        if path.name == "counterfactuals.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            name = getattr(node, "func", None)
            called = getattr(name, "id", None) or getattr(name, "attr", None)
            if not isinstance(node, ast.Call) or called not in ("Claim", "not_checked"):
                continue
            arg = node.args[0] if node.args else None
            arg = arg or next((k.value for k in node.keywords if k.arg == "id"), None)
            assert isinstance(arg, ast.Constant) and isinstance(arg.value, str), (
                f"{path.name}:{node.lineno}: a claim id must be a literal string"
            )
            ids.add(arg.value)
    return ids


@pytest.mark.parametrize("topic", [t.id for t in ready_labs()])
def test_every_claim_of_every_lab_is_named_by_a_counterfactual(topic: str) -> None:
    spec = importlib.import_module(f"labs.{topic}.counterfactuals").COUNTERFACTUALS
    assert isinstance(spec, LabCounterfactuals) and spec.topic == topic
    main = (LABS / topic / "__main__.py").read_text()
    assert "COUNTERFACTUALS" in main, f"labs/{topic}/__main__.py does not hand them to lab_main"
    claims = claim_ids_in_code(topic)
    named = {c for cf in spec.counterfactuals for c in cf.breaks}
    assert claims, f"lab {topic} makes no claims?"
    assert not claims - named, f"{topic}: claims no counterfactual breaks: {sorted(claims - named)}"
    assert not named - claims, (
        f"{topic}: counterfactuals name unknown claims: {sorted(named - claims)}"
    )
    for cf in spec.counterfactuals:
        assert len(cf.story) >= 20 and cf.title, f"{topic}:{cf.name} says too little"
