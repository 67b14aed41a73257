"""An offline vulnerability feed for ``pip-audit``: the OSV query API (``POST /v1/query``)
answered from a local advisory file, so a dependency audit runs with no network.

``python -m labs.security.advisories --port P --file advisories.json`` serves on 127.0.0.1;
the lab starts it through :func:`labs.common.processes.serve_process`. The file is a JSON list
of OSV records (published advisories for *older* versions of packages the project locks); a
query for (package, version) gets the records whose ``affected`` entry names that package and
either lists that version or puts it inside an ``ECOSYSTEM`` range (``introduced`` ≤ v <
``fixed``, or ≤ ``last_affected``), as OSV does. pip-audit trusts the feed's answer, so this
matching is what decides. What the audit finds is only as complete as the file: in real CI
this file is a mirror of the OSV database, refreshed on a schedule.
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ADVISORY_FILE = Path(__file__).with_name("advisories.json")


def in_range(version: str, events: list[dict[str, str]]) -> bool:
    """Whether ``version`` lies in one OSV ``ECOSYSTEM`` range (its events in order)."""
    from packaging.version import InvalidVersion, Version

    try:
        v = Version(version)
    except InvalidVersion:
        return False
    affected = False
    for event in events:
        if "introduced" in event:
            affected = affected or event["introduced"] == "0" or v >= Version(event["introduced"])
        elif "fixed" in event and v >= Version(event["fixed"]):
            affected = False
        elif "last_affected" in event and v > Version(event["last_affected"]):
            affected = False
    return affected


def affects(entry: dict[str, Any], name: str, version: str) -> bool:
    """Whether one ``affected`` entry of an OSV record covers PyPI ``name`` at ``version``."""
    from packaging.utils import canonicalize_name

    package = entry["package"]
    if package["ecosystem"] != "PyPI" or canonicalize_name(package["name"]) != name:
        return False
    return version in entry.get("versions", []) or any(
        r["type"] == "ECOSYSTEM" and in_range(version, r["events"]) for r in entry.get("ranges", [])
    )


def matching(advisories: list[dict[str, Any]], name: str, version: str) -> list[dict[str, Any]]:
    """The OSV records that affect PyPI package ``name`` at ``version``."""
    from packaging.utils import canonicalize_name

    wanted = canonicalize_name(name)
    return [
        record
        for record in advisories
        if any(affects(a, wanted, version) for a in record.get("affected", []))
    ]


def affected_example(record: dict[str, Any]) -> tuple[str, str]:
    """(package, a version the record lists as affected): what a lock pinning it would hold."""
    entry = record["affected"][0]
    return entry["package"]["name"], entry["versions"][-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labs.security.advisories")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--file", type=Path, default=ADVISORY_FILE)
    args = parser.parse_args(argv)
    advisories = json.loads(args.file.read_text())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._answer(200 if self.path == "/health" else 404, {"status": "ok"})

        def do_POST(self) -> None:  # noqa: N802
            query = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            found = matching(advisories, query["package"]["name"], query["version"])
            self._answer(200, {"vulns": found} if found else {})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
