"""An offline vulnerability feed for ``pip-audit``: the OSV query API (``POST /v1/query``)
answered from a local advisory file, so a dependency audit runs with no network.

``python -m labs.security.advisories --port P --file advisories.json`` serves on 127.0.0.1;
the lab starts it through :func:`labs.common.processes.serve_process`. The file is a JSON list
of OSV records; a query for (package, version) gets the records whose ``affected`` entry names
that package and lists that version. What the audit finds is only as complete as the file:
in real CI this file is a mirror of the OSV database, refreshed on a schedule.
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ADVISORY_FILE = Path(__file__).with_name("advisories.json")


def matching(advisories: list[dict[str, Any]], name: str, version: str) -> list[dict[str, Any]]:
    """The OSV records that affect PyPI package ``name`` at ``version``."""
    return [
        record
        for record in advisories
        if any(
            a["package"]["ecosystem"] == "PyPI"
            and a["package"]["name"] == name
            and version in a.get("versions", [])
            for a in record.get("affected", [])
        )
    ]


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
