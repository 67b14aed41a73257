"""Evidently reports in reports/ share Evidently's bundle; the copy in MLflow embeds it again."""

from __future__ import annotations

from pathlib import Path

import pytest

from labs.common.data import make_churn_data
from labs.common.drift import detect_drift
from labs.common.report_html import ASSETS, FONT, _bundle, self_contained_html


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("reports")
    reference = make_churn_data(400, seed=1)
    shifted = make_churn_data(400, seed=2)
    shifted["monthly_charges"] += 15
    paths = (out / "report_a.html", out / "report_b.html")
    for current, path in zip((make_churn_data(400, seed=3), shifted), paths, strict=True):
        detect_drift(reference, current, html_path=path)
    return paths


def test_the_bundle_is_shared_once_and_each_report_keeps_its_own_data(reports) -> None:
    version, script, _ = _bundle()
    folder = reports[0].parent
    assert sorted(p.name for p in (folder / ASSETS).iterdir()) == sorted(
        [f"evidently-{version}.js", FONT]
    )
    assert (folder / ASSETS / f"evidently-{version}.js").read_text() == script
    for path in reports:
        html = path.read_text()
        assert f'<script src="{ASSETS}/evidently-{version}.js"></script>' in html
        assert script not in html  # the 3.5 MB bundle is not repeated in each report
        assert "monthly_charges" in html and "drawDashboard" in html
    assert reports[0].read_text() != reports[1].read_text()


def test_the_copy_for_mlflow_embeds_the_bundle_again(reports, tmp_path: Path) -> None:
    import mlflow

    from labs.common.tracking import RunRecord, log_run_record

    _, script, font = _bundle()
    inline = self_contained_html(reports[1])
    assert inline is not None and script in inline and font in inline
    assert f'src="{ASSETS}/' not in inline and f"url({ASSETS}/" not in inline
    assert self_contained_html(_write(tmp_path / "plain.html", "<html></html>")) is None

    run_id = log_run_record("lab-test-report-html", RunRecord("r", artifacts=[str(reports[1])]))
    logged = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=reports[1].name))
    assert logged.read_text() == inline


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
