"""Micro-batching inside a server: requests wait a few milliseconds in a queue and are scored
together, so a model with a fixed cost per call pays it once per batch instead of per request.

``python -m labs.scaling.microbatch --model-file F --port P`` serves the skops model file the
lab just wrote with two routes over the same model and the same request schema as the
project's serving app:

- ``POST /predict`` — scored at once, one model call per request;
- ``POST /predict-batched`` — through :class:`MicroBatcher`: the first request of a batch waits
  at most ``--max-wait-ms`` for others (up to ``--max-rows`` rows), then one model call scores
  all of them and each request gets its own rows back.

The model is called through scikit-learn (``predict_proba`` on a frame): its input checks cost
milliseconds per call whatever the batch size — the situation (like a GPU kernel launch) in
which micro-batching pays. ``GET /stats`` reports batches and rows scored.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.requests import Request

Score = Callable[[Sequence[Any]], np.ndarray]
Item = tuple[Sequence[Any], "asyncio.Future[np.ndarray]", float]  # rows, answer, queued at


class MicroBatcher:
    """Collects requests for up to ``max_wait_s`` (or ``max_rows`` rows) and scores them in
    one call of ``score``; :meth:`submit` returns each request's own scores."""

    def __init__(self, score: Score, max_wait_s: float, max_rows: int) -> None:
        if max_wait_s < 0 or max_rows < 1:
            raise ValueError("max_wait_s must be >= 0 and max_rows >= 1")
        self.score, self.max_wait_s, self.max_rows = score, max_wait_s, max_rows
        self.queue: asyncio.Queue[Item] = asyncio.Queue()
        self.batches = self.rows = self.requests = 0
        self.wait_s = 0.0  # summed time requests spent queued before their batch was scored

    async def submit(self, rows: Sequence[Any]) -> np.ndarray:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        await self.queue.put((rows, future, loop.time()))
        return await future

    async def run(self) -> None:
        """The batching loop (one task per server)."""
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            size = len(batch[0][0])
            deadline = loop.time() + self.max_wait_s
            while size < self.max_rows:
                try:
                    item = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    left = deadline - loop.time()
                    if left <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self.queue.get(), left)
                    except TimeoutError:
                        break
                batch.append(item)
                size += len(item[0])
            self._score(batch)

    def _score(self, batch: list[Item]) -> None:
        now = asyncio.get_running_loop().time()
        rows = [row for request, _, _ in batch for row in request]
        try:
            proba = np.asarray(self.score(rows), dtype=float)
        except Exception as err:  # every waiting request learns the batch failed
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(err)
            return
        self.batches += 1
        self.rows += len(rows)
        self.requests += len(batch)
        self.wait_s += sum(now - queued for _, _, queued in batch)
        start = 0
        for request, future, _ in batch:
            if not future.done():  # a client that gave up cancelled its future
                future.set_result(proba[start : start + len(request)])
            start += len(request)


def create_microbatch_app(
    model: Any,
    max_wait_s: float,
    max_rows: int,
    score_rows: Callable[[Any, Any], np.ndarray] | None = None,
) -> FastAPI:
    """A FastAPI app scoring ``model`` directly and through a :class:`MicroBatcher`, with
    ``score_rows(model, frame)`` (default: one ``predict_proba`` call per batch)."""
    from labs.common.serving.schema import PredictRequest
    from labs.common.serving.scoring import rows_frame

    def score(rows: Sequence[Any]) -> np.ndarray:
        if score_rows is None:
            return model.predict_proba(rows_frame(rows))[:, 1]
        return score_rows(model, rows_frame(rows))

    batcher = MicroBatcher(score, max_wait_s, max_rows)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(batcher.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(title="Micro-batching demo", lifespan=lifespan)

    async def parse(request: Request) -> Any:
        try:
            return PredictRequest.model_validate_json(await request.body())
        except ValidationError as err:
            return JSONResponse({"detail": err.errors(include_url=False)[:5]}, 422)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict")
    async def predict(request: Request) -> Any:
        batch = await parse(request)
        if isinstance(batch, JSONResponse):
            return batch
        return {"churn_probability": score(batch.rows).tolist()}

    @app.post("/predict-batched")
    async def predict_batched(request: Request) -> Any:
        batch = await parse(request)
        if isinstance(batch, JSONResponse):
            return batch
        return {"churn_probability": (await batcher.submit(batch.rows)).tolist()}

    @app.get("/stats")
    async def stats() -> dict[str, float]:
        """Cumulative counters of the batched route (a caller takes differences)."""
        return {
            "batches": batcher.batches,
            "rows": batcher.rows,
            "requests": batcher.requests,
            "wait_s": batcher.wait_s,
        }

    return app


def main(argv: list[str] | None = None) -> int:
    """Serve the micro-batching demo on 127.0.0.1 with one worker until stopped."""
    parser = argparse.ArgumentParser(prog="python -m labs.scaling.microbatch", description=__doc__)
    parser.add_argument("--model-file", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--max-rows", type=int, default=256)
    parser.add_argument("--scorer", default=None, help="module:function(model, frame) → scores")
    args = parser.parse_args(argv)

    import uvicorn

    from labs.common.processes import HOST
    from labs.common.tracking import load_model_file
    from labs.scaling.throughput import undotted

    model = load_model_file(args.model_file)
    scorer = undotted(args.scorer) if args.scorer else None
    app = create_microbatch_app(model, args.max_wait_ms / 1000, args.max_rows, scorer)
    uvicorn.run(app, host=HOST, port=args.port, workers=1, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
