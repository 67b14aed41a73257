"""The evidence index (labs/index), built from summaries the real writer wrote, asserted from
the HTML: every seed question has a card, a lab's claims and numbers are shown, failing, stale,
planned and broken evidence is marked, and the page opens from any folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import unquote

import pytest

from labs.common.catalogue import TOPICS, ready_labs
from labs.common.plots import new_figure, save_figure
from labs.common.results import Claim
from labs.index import cli
from labs.index.build import all_topics, build_index, format_value, read_follow_ups
from tests.index.conftest import commit_all
from tests.index.html_tree import Node, parse


def page(project: Path) -> Node:
    build_index()
    return parse((project / "reports" / "index.html").read_text())


def card(doc: Node, topic_id: str) -> Node:
    return doc.find("article", data_topic=topic_id)


def test_every_seed_question_has_one_card_in_its_group(project: Path) -> None:
    doc = page(project)
    cards = doc.find_all("article", cls="card")
    assert sorted(c.attrs["data-topic"] for c in cards) == sorted(t.id for t in all_topics())
    assert {t.id for t in TOPICS} <= {c.attrs["data-topic"] for c in cards}
    titles = [s.find("h2").text() for s in doc.find_all("section", cls="group")]
    assert titles == ["Basics", "Technical", "Cloud and infrastructure", "Behavioural"]
    for t in all_topics():
        section = doc.find("section", id=f"group-{t.group}")
        assert section.find_all("article", data_topic=t.id), t.id
        assert t.question in card(doc, t.id).find("h3").text()
        assert t.answer in card(doc, t.id).find("p", cls="answer").text()


def test_a_ready_lab_shows_claims_numbers_plots_reports_and_its_run(
    project: Path, write_lab
) -> None:
    out = project / "reports" / "drift"
    fig, ax = new_figure()
    ax.plot([0, 1], [0.8, 0.4], label="ROC-AUC")
    ax.set_title("Quality falls under concept drift")
    save_figure(fig, out / "quality.png")
    (out / "report_concept.html").write_text("<html>Evidently</html>")
    (out / "scenarios.csv").write_text("a,b\n1,2\n")
    write_lab(
        "drift",
        claims=[
            Claim(
                "covariate_detected",
                "Covariate drift is flagged.",
                True,
                {"p_value": 4.04e-09, "flagged": ["contract"], "roc_auc": 0.83612, "n": 10000},
            ),
            Claim("concept_caught", "Quality catches concept drift.", True, {"drop": 0.3766}),
        ],  # fmt: skip
        artifacts=[
            "reports/drift/quality.png",
            "reports/drift/report_concept.html",
            "reports/drift/scenarios.csv",
            "reports/drift/gone.png",
        ],
    )
    doc = page(project)
    drift = card(doc, "drift")
    assert drift.attrs["data-kind"] == "evidence" and "data-stale" not in drift.attrs
    assert drift.find("span", data_badge="verdict").text() == "✓ 2/2 claims hold"
    claim = drift.find("li", data_claim="covariate_detected")
    assert "pass" in claim.classes and "Covariate drift is flagged." in claim.text()
    numbers = {d.find("dt").text(): d.find("dd").text() for d in claim.find("dl").find_all("div")}
    assert numbers == {"p_value": "4.04e-09", "flagged": "[contract]", "roc_auc": "0.8361",
                       "n": "10,000"}  # fmt: skip
    img = drift.find("img")
    assert img.attrs["src"] == "drift/quality.png"  # relative to reports/index.html
    assert img.attrs["alt"] == "Quality falls under concept drift"  # from quality.png.json
    assert "gone.png" in drift.find("figcaption", cls="missing").text()
    assert drift.find("a", cls="report").attrs["href"] == "drift/report_concept.html"
    assert drift.find("a", cls="file").attrs["href"] == "drift/scenarios.csv"
    assert (
        drift.find("a", cls="mlflow").attrs["href"]
        == "http://127.0.0.1:5000/#/runs/drift0run0id?workflowType=machine_learning"
    )
    run = drift.find("dl", cls="run").text()
    assert "2026-11-30 10:00 UTC in 12.3 s" in run and "lab-drift" in run and "mlflow 3.17.2" in run
    assert json.loads(drift.find("details", cls="params").find("pre").text()) == {
        "rows": 1000, "seed": 7,
    }  # fmt: skip
    follow_ups = [f.find("summary").text() for f in drift.find_all("details", cls="follow-up")]
    assert follow_ups == ["How do you set thresholds?", "What if labels arrive late?"]
    assert drift.find("details", cls="follow-up").find("code").text() == "alpha"


def test_a_failing_claim_is_marked_and_counted(project: Path, write_lab) -> None:
    write_lab(
        "versioning",
        claims=[
            Claim("rollback_exact", "Rollback reproduces the metric.", True, {"delta": 0.0}),
            Claim("restore_fast", "Rollback takes under a second.", False, {"seconds": 2.5}),
        ],
    )
    doc = page(project)
    versioning = card(doc, "versioning")
    assert "is-failed" in versioning.classes
    assert versioning.find("span", data_badge="verdict").text() == "✗ 1/2 claims hold"
    assert "fail" in versioning.find("li", data_claim="restore_fast").classes
    totals = doc.find("p", id="totals").text()
    assert "1/2 claims hold" in totals and "1 lab with a failing claim" in totals


def test_model_and_unchecked_claims_and_the_audit_verdicts_are_shown(
    project: Path, write_lab
) -> None:
    from labs.common.claims_audit import ClaimAudit, LabAudit
    from labs.index.audit import AUDIT_FILE, write_audit

    write_lab(
        "versioning",
        claims=[
            Claim("rollback_exact", "Rollback reproduces the metric.", True, {"delta": 0.0}),
            Claim("cheaper", "Spot is cheaper.", True, {"usd": 1.5}, kind="model"),
            Claim.not_checked("lock_ok", "The lock reproduces.", "uv not found"),
        ],
    )
    doc = page(project)
    totals = doc.find("p", id="totals")
    assert totals.find("span", data_audit="none").text().endswith("— not run here yet")
    versioning = card(doc, "versioning")
    assert versioning.find("span", data_claim_kind="model") is not None
    unchecked = versioning.find("li", data_claim="lock_ok")
    assert "fail" in unchecked.classes and "uv not found" in unchecked.text()
    audit = LabAudit(
        "versioning",
        [
            ClaimAudit("versioning", "rollback_exact", ("rollback-to-wrong-version",), True, ()),
            ClaimAudit("versioning", "cheaper", ("free-spot",), True, ("free-spot",)),
        ],
        {},
        [],
        2.0,
    )
    write_audit([audit], [], 2.0, project / AUDIT_FILE)
    doc = page(project)
    assert doc.find("span", data_audit="bad").find("strong").text() == "1"
    versioning = card(doc, "versioning")
    fails = versioning.find("li", data_claim="rollback_exact").find("span", data_could_fail="fails")
    assert fails.text() == "fails under rollback-to-wrong-version"
    held = versioning.find("li", data_claim="cheaper").find("span", data_could_fail="cannot-fail")
    assert "cannot fail" in held.text()


def test_ready_but_not_run_planned_and_answer_only_cards(project: Path, monkeypatch) -> None:
    import dataclasses

    import labs.index.build as build_module

    # Once every lab is built none is planned: plan one again, to see how a planned lab shows.
    planned_id = "testing"
    topics = tuple(
        dataclasses.replace(t, status="planned") if t.id == planned_id else t for t in TOPICS
    )
    monkeypatch.setattr(build_module, "TOPICS", topics)
    doc = page(project)
    for t in ready_labs():
        if t.id == planned_id:
            continue
        not_run = card(doc, t.id)
        assert not_run.attrs["data-kind"] == "not_run"
        assert f"make {t.make_target}" in not_run.find("p", cls="note").text()
    planned = card(doc, planned_id)
    assert planned.attrs["data-kind"] == "planned" and planned.find("span", data_badge="planned")
    assert not planned.find_all("li", cls="claim")
    mlops = card(doc, "what_is_mlops")
    assert mlops.attrs["data-kind"] == "answer"
    backing = {li.attrs["data-backing"]: li for li in mlops.find_all("li", cls=None)}
    assert set(backing) == {"versioning", "retraining", "monitoring"}
    assert "not run yet" in backing["versioning"].text()
    anchors = {n.attrs["id"] for n in doc.iter() if "id" in n.attrs}
    for link in doc.find_all("a"):
        href = link.attrs["href"] or ""
        if href.startswith("#"):
            assert href[1:] in anchors, href


@pytest.mark.parametrize("how", ["code_changed", "dirty", "unknown_commit", "data_rebuilt"])
def test_stale_evidence_is_marked_with_the_reason(project: Path, write_lab, how: str) -> None:
    reason = {
        "code_changed": "code or data changed since",
        "dirty": "uncommitted changes",
        "unknown_commit": "which this checkout does not have",
        "data_rebuilt": "data rebuilt after the run: data/prepared/train.csv",
    }[how]
    if how == "dirty":
        write_lab("monitoring", git_dirty=True)
    elif how == "unknown_commit":
        write_lab("monitoring", git_commit="0" * 40)
    else:
        write_lab("monitoring")
    if how == "code_changed":
        (project / "labs" / "monitoring" / "lab.py").write_text("# changed\n")
        commit_all(project, "change the monitoring lab")
    if how == "data_rebuilt":
        (project / "data" / "prepared").mkdir(parents=True)
        (project / "data" / "prepared" / "train.csv").write_text("x\n1\n")  # mtime: now
    write_lab("drift")  # fresh: a change to another lab's code does not make it stale
    doc = page(project)
    monitoring = card(doc, "monitoring")
    assert monitoring.attrs.get("data-stale") == "true" and "is-stale" in monitoring.classes
    assert monitoring.find("span", data_badge="stale")
    assert reason in monitoring.find("div", cls="stale-note").text()
    if how == "code_changed":
        assert "labs/monitoring/lab.py" in monitoring.find("div", cls="stale-note").text()
    drift_stale = card(doc, "drift").attrs.get("data-stale") == "true"
    assert drift_stale is (how == "data_rebuilt")  # rebuilt data is every lab's input
    assert "stale" in doc.find("p", id="totals").text()


def test_uncommitted_change_to_a_lab_makes_its_evidence_stale(project: Path, write_lab) -> None:
    write_lab("retraining")
    (project / "params.yaml").write_text("seed: 8\n")  # not committed
    stale = card(page(project), "retraining")
    assert "params.yaml" in stale.find("div", cls="stale-note").text()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d.pop("claims"), "'claims' is a required property"),
        (lambda d: d.update(passed=False), "passed=False but the claims say True"),
        (lambda d: d.update(lab="drift"), "lab is 'drift', expected 'retraining'"),
    ],
)
def test_a_broken_summary_is_an_error_card_and_the_rest_still_builds(
    project: Path, write_lab, capsys: pytest.CaptureFixture[str], damage, message: str
) -> None:
    write_lab("drift")
    path = write_lab("retraining")
    data = json.loads(path.read_text())
    damage(data)
    path.write_text(json.dumps(data))
    assert cli.main(["build"]) == 1
    assert f"broken summary for retraining: {path}" in capsys.readouterr().err
    doc = parse((project / "reports" / "index.html").read_text())
    broken = card(doc, "retraining")
    assert broken.attrs["data-kind"] == "broken" and broken.find("span", data_badge="broken")
    assert message in broken.find("p", cls="error").text()
    assert card(doc, "drift").attrs["data-kind"] == "evidence"
    assert "1 broken summary" in doc.find("p", id="totals").text()


def test_not_json_is_a_broken_card_too(project: Path, write_lab) -> None:
    (project / "reports" / "drift").mkdir(parents=True)
    (project / "reports" / "drift" / "summary.json").write_text("{not json")
    index = build_index()
    assert [c.topic.id for c in index.broken] == ["drift"]
    assert "not JSON" in (index.broken[0].error or "")


def test_everything_from_a_summary_is_escaped(project: Path, write_lab) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    write_lab(
        "drift",
        claims=[Claim("evil", f"Statement {evil}", True, {"note": evil, f"k{evil}": 1})],
        params={"name": evil},
        mlflow={"experiment": evil, "run_id": '"><script>x</script>'},
    )
    doc = page(project)
    html = (project / "reports" / "index.html").read_text()
    assert len(doc.find_all("script")) == 1  # only the page's own
    assert not [n for n in doc.iter() if any(a.startswith("on") for a in n.attrs)]
    assert doc.find_all("img") == []
    assert "&lt;script&gt;" in html
    assert evil in card(doc, "drift").find("li", data_claim="evil").text()


def test_links_are_relative_so_the_folder_opens_anywhere(
    project: Path, write_lab, tmp_path: Path
) -> None:
    out = project / "reports" / "drift"
    out.mkdir(parents=True)
    (out / "report.html").write_text("<html></html>")
    (out / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    write_lab("drift", artifacts=["reports/drift/report.html", "reports/drift/plot.png"])
    build_index()
    moved = tmp_path / "elsewhere" / "reports"
    shutil.copytree(project / "reports", moved)
    doc = parse((moved / "index.html").read_text())
    local = [
        a.attrs.get("href") or a.attrs.get("src") or "" for a in doc.iter() if a.tag in ("a", "img")
    ]
    local = [u for u in local if u and not u.startswith(("#", "http://", "https://"))]
    assert sorted(local) == ["drift/plot.png", "drift/plot.png", "drift/report.html"]
    for url in local:
        assert (moved / unquote(url)).is_file(), url
    assert not [n for n in doc.iter() if n.tag in ("link", "iframe")]  # nothing fetched


def test_follow_ups_are_read_from_a_lab_readme(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "## Run it\n\n- **not this** one\n\n## Follow-up questions\n\n"
        "- **Why?** Because\n  of `x`.\n- **How?** Like so.\n\n## Next\n- **no** more\n"
    )
    found = read_follow_ups(readme)
    assert [(f.question, f.answer) for f in found] == [
        ("Why?", "Because of `x`."),
        ("How?", "Like so."),
    ]
    assert read_follow_ups(tmp_path / "missing.md") == ()


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0.83612, "0.8361"), (12345.678, "1.235e+04"), (1234567, "1,234,567"), (3e-7, "3e-07"),
     (True, "true"), (None, "none"), ([0.1, 2], "[0.1, 2]"), ({"a": 0.5}, "a=0.5"), (0.0, "0")],
)  # fmt: skip
def test_numbers_are_formatted_for_reading(value: object, shown: str) -> None:
    assert format_value(value) == shown
