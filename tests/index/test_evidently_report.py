"""An Evidently report written with its bundle shared (labs.common.report_html) still draws in
a real browser: the dashboard fills its root element, nothing fails to load."""

from __future__ import annotations

from pathlib import Path

import pytest

from labs.common.data import make_churn_data
from labs.common.drift import detect_drift
from tests.index.browser import Browser

pytestmark = pytest.mark.integration

ROOT_CHILDREN = "document.querySelector('[id^=root_]').querySelectorAll('*').length"


def test_a_report_with_the_shared_bundle_draws_its_dashboard(
    browser: Browser, tmp_path: Path
) -> None:
    reference, current = make_churn_data(300, seed=1), make_churn_data(300, seed=2)
    current["monthly_charges"] += 15
    path = tmp_path / "reports" / "drift" / "report.html"
    detect_drift(reference, current, html_path=path)

    browser.open(path.as_uri())
    drawn = browser.poll(f"{ROOT_CHILDREN} > 100 && {ROOT_CHILDREN}", timeout=20)
    assert drawn and drawn > 100, "the dashboard did not draw"
    text = browser.js("document.body.innerText")
    assert "monthly_charges" in text and "Drift" in text
    assert browser.problems() == []
