"""The evidence index in a real browser (headless Chromium): it renders every card, every ready
lab's claims, no console errors, no broken links or images, and practice mode hides the answers
and reveals one on a click or from the keyboard.

Skips, saying why, when no Chromium is installed — unless ``LABS_REQUIRE_BROWSER=1`` (CI sets
it after ``apt-get install -y chromium``), where a missing browser fails the test.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from labs.common.catalogue import ready_labs
from labs.common.plots import new_figure, save_figure
from labs.common.results import Claim
from labs.index.build import all_topics, build_index
from tests.index.browser import Browser

pytestmark = pytest.mark.integration


@pytest.fixture
def index(project: Path, write_lab) -> Path:
    """Every ready lab with evidence (one with a plot and a report, one failing a claim)."""
    for t in ready_labs():
        out = project / "reports" / t.id
        fig, ax = new_figure()
        ax.bar(["before", "after"], [0.83, 0.46], label="ROC-AUC")
        ax.set_title(f"{t.id}: quality before and after")
        save_figure(fig, out / "quality.png")
        (out / "report.html").write_text("<!doctype html><title>report</title><p>Evidently")
        claims = [
            Claim("first", f"{t.id} first claim holds.", True, {"p_value": 0.001}),
            Claim("second", f"{t.id} second claim.", t.id != "monitoring", {"rate": 0.05}),
        ]
        artifacts = [f"reports/{t.id}/quality.png", f"reports/{t.id}/report.html"]
        write_lab(t.id, claims=claims, artifacts=artifacts)
    return build_index().path


# Shown to the reader: laid out and not inside a closed <details> (whose content Chromium keeps
# laid out but skips: checkVisibility() knows, getClientRects() does not).
VISIBLE = "(e => !!e && e.checkVisibility({visibilityProperty: true}))"


def test_index_renders_in_chromium_and_practice_mode_reveals(
    browser: Browser, index: Path, project: Path
) -> None:
    browser.open(index.as_uri())

    # Every seed question has a card; every ready lab's card shows its claims and plot.
    topics = browser.js("[...document.querySelectorAll('article.card')].map(a => a.dataset.topic)")
    assert sorted(topics) == sorted(t.id for t in all_topics())
    for t in ready_labs():
        claims = browser.js(
            f"[...document.querySelectorAll('#q-{t.id} li.claim')]"
            ".filter(li => li.checkVisibility()).map(li => li.innerText)"
        )
        assert len(claims) == 2 and f"{t.id} first claim holds." in claims[0], t.id
        assert "p_value" in claims[0] and "0.001" in claims[0]
    assert browser.js("document.querySelector('#q-monitoring [data-badge=verdict]').innerText") == (
        "✗ 1/2 claims hold"
    )

    # No broken images: each one decoded to real pixels.
    images = browser.js(
        "[...document.images].map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])"
    )
    assert len(images) == len(ready_labs())
    assert all(complete and width > 100 for _, complete, width in images), images

    # No broken links: in-page anchors exist, local files exist.
    links = browser.js("[...document.querySelectorAll('a[href]')].map(a => a.href)")
    assert links
    for url in links:
        parsed = urlparse(url)
        if (
            parsed.scheme == "file"
            and parsed.fragment
            and parsed.path == urlparse(index.as_uri()).path
        ):
            assert browser.js(f"!!document.getElementById({parsed.fragment!r})"), url
        elif parsed.scheme == "file":
            assert Path(unquote(parsed.path)).is_file(), url
        else:
            assert url.startswith("http://127.0.0.1:5000/#/runs/"), url  # the MLflow UI

    # Practice mode from the keyboard: every answer hidden, the question still there.
    answer = "document.querySelector('#q-drift p.answer')"
    assert browser.js(f"{VISIBLE}({answer})")
    browser.press("p")
    assert browser.js("document.body.classList.contains('practice')")
    assert browser.js("[...document.querySelectorAll('details.reveal')].every(d => !d.open)")
    assert not browser.js(f"{VISIBLE}({answer})")
    assert browser.js(f"{VISIBLE}(document.querySelector('#q-drift h3'))")
    assert "0 of" in browser.js("document.getElementById('practice-progress').innerText")

    # Reveal with a click on one card …
    browser.click("#q-drift details.reveal > summary")
    assert browser.js(f"{VISIBLE}({answer})")
    assert browser.js(f"{VISIBLE}(document.querySelector('#q-drift li.claim'))")
    assert not browser.js(f"{VISIBLE}(document.querySelector('#q-versioning p.answer'))")

    # … and with the keyboard: j moves to the next question, Enter reveals it.
    browser.press("j")
    focused = browser.js("document.activeElement.closest('article').dataset.topic")
    order = browser.js("[...document.querySelectorAll('article.card')].map(a => a.dataset.topic)")
    assert focused == order[order.index("drift") + 1]
    browser.press("Enter")
    assert browser.js(f"{VISIBLE}(document.querySelector('#q-{focused} p.answer'))")
    progress = "document.getElementById('practice-progress').innerText"
    assert browser.poll(f"{progress}.includes('2 of')"), browser.js(progress)

    # Follow-up questions: asked first, their answer revealed on demand.
    follow_up = "#q-what_is_mlops details.follow-up"
    assert not browser.js(f"{VISIBLE}(document.querySelector('{follow_up} p'))")
    browser.click(f"{follow_up} > summary")
    assert browser.js(f"{VISIBLE}(document.querySelector('{follow_up} p'))")

    browser.press("p")  # back to reading mode: every answer shown again
    assert browser.js("[...document.querySelectorAll('details.reveal')].every(d => d.open)")

    assert browser.problems() == []
    shot = browser.screenshot(project / "reports" / "index.png")
    head = shot.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    # What was drawn: the full page at the viewport's width, as tall as the rendered document.
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    page_width = browser.js("document.documentElement.scrollWidth")
    page_height = min(browser.js("document.documentElement.scrollHeight"), 12000)
    assert abs(width - page_width) <= 2 and abs(height - page_height) <= 2, (width, height)
    assert height > browser.js("window.innerHeight")  # every card, not one screen


def test_a_broken_summary_renders_as_an_error_card(
    browser: Browser, project: Path, write_lab
) -> None:
    write_lab("drift")
    broken = project / "reports" / "versioning" / "summary.json"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"schema_version": 2}')
    browser.open(build_index().path.as_uri())
    error = browser.js("document.querySelector('#q-versioning p.error').innerText")
    assert str(broken) in error and "required property" in error
    assert browser.js("document.querySelector('#q-drift').dataset.kind") == "evidence"
    assert browser.problems() == []
