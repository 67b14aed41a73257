"""``python -m labs.index.cli run | build | serve | audit`` — behind ``make labs``, ``make index``,
``make report-serve`` and ``make claims-audit``.

(Not ``labs/index/__main__.py``: a ``__main__`` marks a lab package, and this is not a lab.)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from labs.common.catalogue import ready_labs, topic
from labs.common.paths import project_root

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def build(reports: Path | None = None) -> int:
    """Build ``reports/index.html``; broken summaries are named and make the exit code 1."""
    from labs.index.build import build_index

    index = build_index(reports)
    for card in index.broken:
        print(f"index: broken summary for {card.topic.id}: {card.error}", file=sys.stderr)
    shown = sum(c.kind == "evidence" for c in index.cards)
    print(f"Evidence index: {_shown(index.path)} ({shown} labs with evidence, file://{index.path})")
    return EXIT_FAILED if index.broken else EXIT_OK


def run(only: list[str]) -> int:
    """Run the ready labs (or ``only`` these), then build the index; 1 if any lab failed."""
    from labs.index.runner import report, run_labs

    topics = [topic(t) for t in only] if only else ready_labs()
    not_ready = [t.id for t in topics if not t.lab or t.status != "ready"]
    if not_ready:
        print(f"labs: not ready labs: {', '.join(not_ready)}", file=sys.stderr)
        return EXIT_USAGE
    print(f"Running {len(topics)} labs: {', '.join(t.id for t in topics)}", flush=True)
    started = time.perf_counter()
    try:
        runs = run_labs(topics)
    except KeyboardInterrupt:
        print("\nlabs: interrupted; the running lab was stopped.", file=sys.stderr)
        return EXIT_INTERRUPTED
    code = report(runs, time.perf_counter() - started)
    built = build()
    return code or built


def audit(only: list[str]) -> int:
    """Audit every ready lab's counterfactuals (or ``only`` these); 1 if a claim cannot fail."""
    from labs.index.audit import run_audit

    topics = [topic(t) for t in only] if only else ready_labs()
    print(f"Claims audit of {len(topics)} labs: {', '.join(t.id for t in topics)}", flush=True)
    try:
        return run_audit(topics)
    except KeyboardInterrupt:
        print("\nclaims-audit: interrupted; the running lab was stopped.", file=sys.stderr)
        return EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labs.index.cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_cmd = commands.add_parser("run", help="run every ready lab, then build the index")
    run_cmd.add_argument("labs", nargs="*", help="only these labs (default: every ready lab)")
    commands.add_parser("build", help="build reports/index.html from the summaries")
    audit_cmd = commands.add_parser("audit", help="show every claim failing under a counterfactual")
    audit_cmd.add_argument("labs", nargs="*", help="only these labs (default: every ready lab)")
    serve_cmd = commands.add_parser("serve", help="serve reports/ on 127.0.0.1")
    serve_cmd.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.labs)
    if args.command == "build":
        return build()
    if args.command == "audit":
        return audit(args.labs)
    from labs.index.serve import serve

    build()  # what is served is current: fresh stale marks, newest summaries
    return serve(project_root() / "reports", args.port)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(project_root()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
