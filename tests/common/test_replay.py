"""The load replayer against a tiny real server started through labs.common.processes: every
request recorded in order, statuses counted, malformed requests injected, clients concurrent,
transport failures recorded not raised — and the server stopped by process group, also on
failure."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from labs.common.processes import (
    ProcessStartError,
    ServedProcess,
    free_port,
    serve_process,
    wait_for_health,
)
from labs.common.replay import (
    VALID,
    Request,
    frame_requests,
    inject_malformed,
    replay,
    request_ids,
    summarize,
)

# A stdlib server: /health (503 until `--healthy-after` seconds), POST /predict answers
# {"n": rows, "request_id": ...} after `sleep_ms`, 422 for anything but a non-empty row list.
TINY_SERVER = r"""
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, healthy_after = int(sys.argv[1]), float(sys.argv[2])
born = time.monotonic()

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        healthy = time.monotonic() - born >= healthy_after
        self.answer(200 if healthy else 503, {"healthy": healthy})

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            body = json.loads(raw)
            rows = body["rows"]
            assert isinstance(rows, list) and rows
        except Exception:
            self.answer(422, {"detail": "invalid request"})
            return
        time.sleep(body.get("sleep_ms", 0) / 1000)
        self.answer(200, {"n": len(rows), "request_id": body.get("request_id")})

print("tiny server on", port, flush=True)
ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "tiny_server.py"
    path.write_text(TINY_SERVER)
    return path


def tiny(script: Path, healthy_after: float = 0.0):
    return lambda port: [sys.executable, str(script), str(port), str(healthy_after)]


@pytest.fixture(scope="module")
def server(script: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProcess]:
    log = tmp_path_factory.mktemp("tiny-log") / "server.log"
    with serve_process(tiny(script, healthy_after=0.3), log=log, timeout=30) as served:
        yield served


def bodies(n: int, sleep_ms: int = 0) -> list[Request]:
    out = []
    for i in range(n):
        body = {"rows": [{"x": i}] * (1 + i % 3), "request_id": f"r{i}", "sleep_ms": sleep_ms}
        out.append(Request(body=body, request_id=f"r{i}", rows=1 + i % 3, group=i % 2))
    return out


def test_serve_process_waits_for_health_then_every_request_is_recorded_in_order(server) -> None:
    assert server.process.poll() is None and "tiny server on" in server.log_tail()
    result = replay(server.url, bodies(40), clients=4)
    assert [r.index for r in result.records] == list(range(40))
    assert [r.request_id for r in result.records] == [f"r{i}" for i in range(40)]
    assert all(r.status == 200 and r.error is None for r in result.records)
    assert [r.response["n"] for r in result.records] == [1 + i % 3 for i in range(40)]
    assert all(r.finished_at >= r.started_at and r.latency_s > 0 for r in result.records)
    s = result.summary()
    assert (s.requests, s.by_status, s.by_tag, s.transport_errors) == (
        40,
        {"200": 40},
        {VALID: 40},
        0,
    )
    # the percentiles are those of the records' own latencies (what was measured, not a bound)
    latencies_ms = sorted(r.latency_s * 1000 for r in result.records)
    assert s.max_ms == pytest.approx(latencies_ms[-1])
    assert s.p50_ms == pytest.approx((latencies_ms[19] + latencies_ms[20]) / 2)  # 40 records
    assert s.throughput_rps == pytest.approx(40 / s.wall_s)
    assert result.summary(group=1).requests == 20  # a subset summarised on its own


def test_clients_run_concurrently_and_never_more_than_asked(server) -> None:
    result = replay(server.url, bodies(16, sleep_ms=60), clients=4, keep_responses=False)
    records = result.records
    # the most requests in flight at any moment: at most the clients, and more than one
    in_flight = max(
        sum(o.started_at <= r.started_at < o.finished_at for o in records) for r in records
    )
    assert 2 <= in_flight <= 4
    assert {r.client for r in records} <= {0, 1, 2, 3}
    # overlapping requests, counted: most requests start while another is in flight (served
    # one at a time, none would)
    overlapping = sum(
        any(o is not r and o.started_at <= r.started_at < o.finished_at for o in records)
        for r in records
    )
    assert overlapping >= len(records) // 2
    assert all(r.response is None for r in records)


def test_malformed_requests_are_injected_tagged_and_counted(server) -> None:
    corruptions = [
        ("empty batch", lambda body: {**body, "rows": []}),
        ("broken json", lambda body: b'{"rows": ['),
    ]
    good = bodies(10)
    mixed = inject_malformed(good, corruptions, every=4)
    assert [r.tag for r in mixed].count(VALID) == 10 and len(mixed) == 12
    assert [r.tag for r in mixed][4] == "empty batch" and [r.tag for r in mixed][9] == "broken json"
    assert good[3].body["rows"], "the original body is not modified"
    result = replay(server.url, mixed, clients=2)
    s = result.summary()
    assert s.by_status == {"200": 10, "422": 2}
    assert s.by_tag == {VALID: 10, "broken json": 1, "empty batch": 1}
    assert result.summary(tag=VALID).by_status == {"200": 10}
    assert all(r.rows == 0 and r.request_id is None for r in result.records if r.tag != VALID)

    at_once = inject_malformed(good, corruptions, after=2, group="bad day")
    assert [r.tag for r in at_once][3:5] == ["empty batch", "broken json"]
    assert at_once[3].group == "bad day"
    assert inject_malformed(good, corruptions)[-1].tag == "broken json"  # default: at the end


def test_frame_requests_cut_a_frame_into_plain_json_bodies() -> None:
    frame = pd.DataFrame(
        {"n": [1, 2, 3, 4, 5], "x": [0.5, 1.5, 2.5, 3.5, 4.5], "c": pd.Categorical(list("abcab"))}
    )
    requests = frame_requests(frame, 2, columns=["n", "c"], id_prefix="d007", group=7)
    assert [r.rows for r in requests] == [2, 2, 1]
    assert [r.request_id for r in requests] == ["d007-0000", "d007-0001", "d007-0002"]
    assert requests[0].body == {"rows": [{"n": 1, "c": "a"}, {"n": 2, "c": "b"}],
                                "request_id": "d007-0000"}  # fmt: skip
    assert type(requests[0].body["rows"][0]["n"]) is int and {r.group for r in requests} == {7}
    json.dumps([r.body for r in requests])  # plain JSON types only
    assert request_ids(5, 2, "d007") == [r.request_id for r in requests for _ in range(r.rows)]
    with pytest.raises(ValueError, match="rows_per_request"):
        frame_requests(frame, 0)


def test_a_server_that_is_down_is_recorded_not_raised() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = replay(url, bodies(3), clients=2, timeout=2)
    assert [r.status for r in result.records] == [0, 0, 0]
    assert all(r.error and "Connect" in r.error for r in result.records)
    s = summarize(result.records)
    assert s.transport_errors == 3 and s.by_status == {"0": 3}
    assert s.p99_ms != s.p99_ms  # NaN: no request was answered


def test_the_process_group_is_stopped_even_when_the_block_fails(script, tmp_path) -> None:
    with pytest.raises(RuntimeError, match="an assertion in the middle"):
        with serve_process(tiny(script), log=tmp_path / "s.log", timeout=30) as served:
            pgid = served.process.pid
            raise RuntimeError("an assertion in the middle")
    assert served.process.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)  # the whole group is gone


def test_a_server_that_dies_or_never_gets_healthy_fails_fast_with_its_log(script, tmp_path):
    dying = [sys.executable, "-c", "print('cannot bind: boom', flush=True); raise SystemExit(3)"]
    with pytest.raises(ProcessStartError, match=r"exited with code 3[\s\S]*cannot bind: boom"):
        with serve_process(dying, log=tmp_path / "dying.log", timeout=30):
            pass
    with pytest.raises(ProcessStartError, match=r"not healthy after 1 s[\s\S]*tiny server on"):
        with serve_process(tiny(script, healthy_after=60), log=tmp_path / "slow.log", timeout=1):
            pass
    with pytest.raises(ProcessStartError, match="not healthy"):
        wait_for_health(f"http://127.0.0.1:{free_port()}/health", timeout=0.3)
