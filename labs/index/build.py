"""The evidence index: ``reports/index.html``, every seed question with its answer and the
evidence the reader's own lab runs produced.

The page is built only from what the labs left behind — each ``reports/<topic>/summary.json``
read through :func:`~labs.common.results.read_summary`, and the files it lists — plus the
catalogue's questions and answers. A broken summary becomes an error card naming the file; the
other cards still build. Links and images are relative to the index, so the ``reports/`` folder
opens anywhere, from ``file://`` or any static server; CSS and JS are inline (no network).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from labs.common.catalogue import GROUP_TITLES, TOPICS, Topic
from labs.common.paths import project_root
from labs.common.results import AUDIT_LINE, NOT_CHECKED, Claim, Summary, SummaryError, read_summary
from labs.index.content import BACKED_BY, FOLLOW_UPS, SEED_ORDER, FollowUp
from labs.index.freshness import GitCheckout, stale_reasons

CardKind = Literal["evidence", "not_run", "planned", "broken", "answer"]
INDEX_NAME = "index.html"
TEMPLATES = Path(__file__).with_name("templates")
DEFAULT_MLFLOW_UI = "http://127.0.0.1:5000"


@dataclass(frozen=True)
class Link:
    """A file the lab wrote, as the index links it (``href`` relative to the index)."""

    label: str
    href: str | None  # None: listed in the summary but missing on disk
    caption: str = ""


@dataclass(frozen=True)
class Backing:
    """A lab whose evidence backs an answer that is not itself a lab."""

    topic: Topic
    why: str
    kind: CardKind
    passed: bool | None


@dataclass
class Card:
    """One seed question on the page, with whatever evidence exists for it."""

    topic: Topic
    kind: CardKind
    summary: Summary | None = None
    error: str | None = None
    stale: list[str] = field(default_factory=list)
    plots: list[Link] = field(default_factory=list)
    reports: list[Link] = field(default_factory=list)
    files: list[Link] = field(default_factory=list)
    mlflow_url: str | None = None
    follow_ups: tuple[FollowUp, ...] = ()
    backed_by: list[Backing] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return f"q-{self.topic.id}"

    @property
    def claims_held(self) -> int:
        return sum(c.passed for c in self.summary.claims) if self.summary else 0


@dataclass
class Index:
    """What :func:`build_index` wrote and found."""

    path: Path
    cards: list[Card]
    broken: list[Card]

    def card(self, topic_id: str) -> Card:
        return next(c for c in self.cards if c.topic.id == topic_id)


def all_topics() -> list[Topic]:
    """The catalogue's topics and the seed questions only the index shows, by group, in the
    order the seed asks them."""
    topics = list(TOPICS)
    groups = list(GROUP_TITLES)
    seed = {topic_id: i for i, topic_id in enumerate(SEED_ORDER)}
    return sorted(topics, key=lambda t: (groups.index(t.group), seed.get(t.id, len(seed))))


def build_index(
    reports: Path | None = None,
    *,
    root: Path | None = None,
    mlflow_ui: str = DEFAULT_MLFLOW_UI,
    now: datetime | None = None,
) -> Index:
    """Read every summary under ``reports`` (default ``<root>/reports``), write
    ``reports/index.html`` and return what it shows."""
    root = root or project_root()
    reports = reports or root / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    checkout = GitCheckout(root)
    cards = {t.id: _card(t, reports, root, checkout, mlflow_ui) for t in all_topics()}
    for card in cards.values():
        for lab_id, why in BACKED_BY.get(card.topic.id, ()):
            if lab_id in cards:
                backing = cards[lab_id]
                passed = backing.summary.passed if backing.summary else None
                card.backed_by.append(Backing(backing.topic, why, backing.kind, passed))
    ordered = list(cards.values())
    from labs.index.audit import read_audit

    html = render(
        ordered, head=checkout.head(), now=now or datetime.now(UTC), audit=read_audit(root)
    )
    path = reports / INDEX_NAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return Index(path, ordered, [c for c in ordered if c.kind == "broken"])


def _card(topic: Topic, reports: Path, root: Path, checkout: GitCheckout, mlflow_ui: str) -> Card:
    follow_ups = FOLLOW_UPS.get(topic.id) or read_follow_ups(root / "labs" / topic.id / "README.md")
    card = Card(topic, "answer", follow_ups=follow_ups)
    if not topic.lab:
        return card
    if topic.status == "planned":
        card.kind = "planned"
        return card
    path = reports / topic.id / "summary.json"
    if not path.exists():
        card.kind = "not_run"
        return card
    try:
        summary = read_summary(path)
        if summary.lab != topic.id:
            raise SummaryError(f"{path}: lab is {summary.lab!r}, expected {topic.id!r}")
    except SummaryError as err:
        card.kind, card.error = "broken", str(err)
        return card
    card.kind, card.summary = "evidence", summary
    card.stale = stale_reasons(summary, checkout)
    for artifact in summary.artifacts:
        link = _link(artifact, reports, root)
        if artifact.endswith(".png"):
            card.plots.append(link)
        elif artifact.endswith((".html", ".htm")):
            card.reports.append(link)
        elif not artifact.endswith(".png.json") and Path(artifact).name != "summary.json":
            card.files.append(link)
    run_id = summary.mlflow.get("run_id")
    if run_id:
        # MLflow 3.17's UI defaults to its GenAI view; a lab's runs live in "Model training".
        card.mlflow_url = f"{mlflow_ui.rstrip('/')}/#/runs/{run_id}?workflowType=machine_learning"
    return card


def _link(artifact: str, reports: Path, root: Path) -> Link:
    """An artifact path from a summary (relative to the project root, or absolute) → a link
    relative to the index; ``href=None`` if the file is gone."""
    file = Path(artifact) if Path(artifact).is_absolute() else root / artifact
    caption = ""
    if file.suffix == ".png":
        caption = _plot_caption(file)
    if not file.exists():
        return Link(Path(artifact).name, None, caption)
    href = Path(os.path.relpath(file.resolve(), reports.resolve())).as_posix()
    return Link(Path(artifact).name, href, caption)


def _plot_caption(png: Path) -> str:
    """The titles :func:`labs.common.plots.save_figure` recorded for ``png`` (alt text)."""
    try:
        drawn = json.loads(png.with_name(png.name + ".json").read_text())
    except (OSError, ValueError):
        return ""
    titles = [drawn.get("title", "")] + [a.get("title", "") for a in drawn.get("axes", [])]
    return "; ".join(t for t in titles if t)


_BULLET = re.compile(r"^- \*\*(?P<q>.+?)\*\*\s*(?P<rest>.*)$")


def read_follow_ups(readme: Path) -> tuple[FollowUp, ...]:
    """The ``## Follow-up questions`` of a lab's README: ``- **question** answer`` bullets."""
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError:
        return ()
    section = text.split("## Follow-up questions", 1)
    if len(section) < 2:
        return ()
    body = section[1].split("\n## ", 1)[0]
    items: list[FollowUp] = []
    for raw in re.split(r"\n(?=- )", body.strip()):
        match = _BULLET.match(" ".join(raw.split()))
        if match:
            items.append(FollowUp(match["q"], match["rest"]))
    return tuple(items)


# --- rendering -----------------------------------------------------------------------------


def render(
    cards: list[Card], *, head: str | None, now: datetime, audit: dict[str, Any] | None = None
) -> str:
    """The page for ``cards`` (Jinja2, every value escaped); ``audit`` is the last
    ``make claims-audit`` (which counterfactual breaks each claim), if there is one."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["number"] = format_value
    env.filters["inline"] = inline_markup
    env.filters["when"] = lambda d: d.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    env.filters["params"] = lambda p: json.dumps(p, indent=2, sort_keys=True, default=str)
    groups = [
        (group, title, [c for c in cards if c.topic.group == group])
        for group, title in GROUP_TITLES.items()
    ]
    evidence = [c for c in cards if c.kind == "evidence"]
    totals = {
        "labs": sum(c.topic.lab for c in cards),
        "run": len(evidence),
        "ready": sum(c.topic.lab and c.topic.status == "ready" for c in cards),
        "planned": sum(c.kind == "planned" for c in cards),
        "claims": sum(len(c.summary.claims) for c in evidence if c.summary),
        "held": sum(c.claims_held for c in evidence),
        "stale": sum(bool(c.stale) for c in evidence),
        "broken": sum(c.kind == "broken" for c in cards),
        "failed": sum(bool(c.summary and not c.summary.passed) for c in evidence),
    }
    verdicts = {
        (lab, c["claim"]): c
        for lab, result in (audit or {}).get("labs", {}).items()
        for c in result.get("claims", [])
    }
    if audit:
        audit = {**audit, "when": datetime.fromisoformat(audit["generated_at"])}
    return env.get_template("index.html.j2").render(
        groups=groups,
        totals=totals,
        head=head,
        now=now,
        claim_numbers=claim_numbers,
        audit=audit,
        audited=lambda lab, claim: verdicts.get((lab, claim)),
        AUDIT_LINE=AUDIT_LINE,
    )


def claim_numbers(claim: Claim) -> list[tuple[str, str]]:
    """A claim's measurements as (name, formatted value) pairs, in the lab's order."""
    return [(str(k), format_value(v)) for k, v in claim.measured.items() if k != NOT_CHECKED]


def format_value(value: Any) -> str:
    """Numbers as people read them: 4 significant digits, thousands separated."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:,.4g}" if abs(value) >= 1 else f"{value:.4g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={format_value(v)}" for k, v in value.items())
    if isinstance(value, Iterable) and not isinstance(value, str):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def inline_markup(text: str) -> Any:
    """Markdown-ish ``code`` and **bold** spans of a README line → escaped HTML."""
    from markupsafe import Markup, escape

    out = []
    for i, part in enumerate(re.split(r"`([^`]+)`", text)):
        if i % 2:
            out.append(Markup("<code>{}</code>").format(part))
        else:
            pieces = re.split(r"\*\*(.+?)\*\*", part)
            for j, piece in enumerate(pieces):
                out.append(Markup("<strong>{}</strong>").format(piece) if j % 2 else escape(piece))
    return Markup("").join(out)
