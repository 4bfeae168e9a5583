"""The serving engine: one worker thread owns the model; requests wait in a bounded queue and the worker runs
the ones that arrived together as one batch.

Batching rules. Chat requests batch when their sampling settings (temperature, top-p, top-k, max tokens)
are equal; their stop strings may differ (kept per row). Image requests batch when cfg weight, temperature,
top-k and top-p are equal; prompts, negative prompts and ``n`` may differ (each request's images are rows of
the one CFG batch). A request with a ``seed`` runs alone, so that the same seed always gives the same output,
whatever else the server is doing (the same output as ``januspro generate --seed``).

Back-pressure: :meth:`Engine.submit` raises :class:`QueueFull` when ``queue_size`` requests wait already.
A job cancelled before it starts (client gone, timeout) leaves the queue; one cancelled while running
finishes with its batch and its result is dropped.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ..generation.image import ImageGenParams, generate_images
from ..generation.text import TextGenParams, stream_encoded
from ..models.janus import JanusModel
from ..processing.processor import EncodedChat, JanusProcessor


class QueueFull(RuntimeError):
    """The request queue is full; retry later."""


@dataclass
class ChatRequest:
    encoded: EncodedChat
    params: TextGenParams
    n: int = 1
    stop: tuple[str, ...] = ()


@dataclass
class ImageRequest:
    prompt: str
    params: ImageGenParams  # n = images for this request
    negative_prompt: str | None = None


@dataclass
class Job:
    request: ChatRequest | ImageRequest
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    on_piece: Callable[[int, str], None] | None = None  # streaming chat: (choice index, text piece)
    cancelled: bool = False
    enqueued: float = field(default_factory=time.perf_counter)

    @property
    def kind(self) -> str:
        return "chat" if isinstance(self.request, ChatRequest) else "image"

    @property
    def rows(self) -> int:
        r = self.request
        return r.n if isinstance(r, ChatRequest) else r.params.n

    @property
    def key(self) -> tuple | None:
        """Jobs with equal keys may share a batch; None: runs alone."""
        r = self.request
        p = r.params
        if p.seed is not None:
            return None
        if isinstance(r, ChatRequest):
            return ("chat", p.temperature, p.top_k, p.top_p, p.max_new_tokens, p.repetition_penalty)
        return ("image", replace(p, n=1))  # every sampling setting (seed is None here); n may differ

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class Stats:
    """Counters for /metrics (written by the worker, read by the app; plain numbers, no lock needed)."""

    batches: int = 0
    batch_rows: int = 0
    images: int = 0
    image_seconds: float = 0.0
    chat_tokens: int = 0
    chat_seconds: float = 0.0
    progress: dict[str, Any] = field(default_factory=dict)  # the running batch: kind, step, total


class Engine:
    def __init__(self, model: JanusModel, processor: JanusProcessor, queue_size: int = 64, max_chat_rows: int = 16,
                 max_image_rows: int = 16, batch_window: float = 0.02) -> None:
        if queue_size < 1 or max_chat_rows < 1 or max_image_rows < 1:
            raise ValueError("queue_size, max_chat_rows and max_image_rows must be >= 1")
        self.model = model
        self.processor = processor
        self.queue_size = queue_size
        self.max_rows = {"chat": max_chat_rows, "image": max_image_rows}
        self.batch_window = batch_window
        self.stats = Stats()
        self._queue: deque[Job] = deque()
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="januspro-engine", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ API for the app (event loop side)
    @property
    def queue_depth(self) -> int:
        with self._cond:
            return sum(1 for j in self._queue if not j.cancelled)

    def submit(self, request: ChatRequest | ImageRequest, on_piece: Callable[[int, str], None] | None = None
               ) -> Job:
        loop = asyncio.get_running_loop()
        job = Job(request, loop, loop.create_future(), on_piece)
        with self._cond:
            self._queue = deque(j for j in self._queue if not j.cancelled)
            if len(self._queue) >= self.queue_size:
                raise QueueFull(f"{len(self._queue)} requests are waiting; retry later")
            self._queue.append(job)
            self._cond.notify()
        return job

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout=30)

    # ------------------------------------------------------------------ worker
    def _take_batch(self) -> list[Job]:
        with self._cond:
            while not self._stop and not any(not j.cancelled for j in self._queue):
                self._cond.wait()
            if self._stop:
                return []
        if self.batch_window > 0:
            time.sleep(self.batch_window)  # let requests sent together arrive
        with self._cond:
            while self._queue and self._queue[0].cancelled:
                self._queue.popleft()
            if not self._queue:
                return []
            first = self._queue.popleft()
            batch = [first]
            key = first.key
            if key is not None:
                budget = self.max_rows[first.kind] - first.rows
                keep: deque[Job] = deque()
                for j in self._queue:
                    if not j.cancelled and j.key == key and j.rows <= budget:
                        batch.append(j)
                        budget -= j.rows
                    elif not j.cancelled:
                        keep.append(j)
                self._queue = keep
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                if self._stop:
                    return
                continue
            try:
                if batch[0].kind == "chat":
                    results = self._run_chat(batch)
                else:
                    results = self._run_images(batch)
                for job, res in zip(batch, results, strict=True):
                    self._resolve(job, res, None)
            except Exception as e:  # the model failed: every request of the batch gets the error
                for job in batch:
                    self._resolve(job, None, e)
            finally:
                self.stats.progress = {}

    @staticmethod
    def _resolve(job: Job, result: Any, error: BaseException | None) -> None:
        def settle() -> None:
            if job.future.done():
                return
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(result)

        if not job.loop.is_closed():
            job.loop.call_soon_threadsafe(settle)

    def _run_chat(self, batch: list[Job]) -> list[dict[str, Any]]:
        t0 = time.perf_counter()
        encoded, stops, owner = [], [], []
        for k, job in enumerate(batch):
            req = job.request
            assert isinstance(req, ChatRequest)
            for choice in range(req.n):
                encoded.append(req.encoded)
                stops.append(req.stop)
                owner.append((k, choice))
        params = batch[0].request.params
        assert isinstance(params, TextGenParams)
        texts = [""] * len(encoded)
        finish: list[dict[str, Any]] = []
        self.stats.progress = {"kind": "chat", "rows": len(encoded)}
        for row, piece in stream_encoded(self.model, self.processor, encoded, params, stops, finish):
            texts[row] += piece
            k, choice = owner[row]
            job = batch[k]
            if job.on_piece is not None and not job.cancelled:
                job.loop.call_soon_threadsafe(job.on_piece, choice, piece)
        out: list[dict[str, Any]] = [{"choices": [], "prompt_tokens": len(j.request.encoded.input_ids)}  # type: ignore[union-attr]
                                     for j in batch]
        for row, (k, choice) in enumerate(owner):
            out[k]["choices"].append({"index": choice, "text": texts[row].strip(), **finish[row]})
        self.stats.batches += 1
        self.stats.batch_rows += len(encoded)
        self.stats.chat_tokens += sum(f["completion_tokens"] for f in finish)
        self.stats.chat_seconds += time.perf_counter() - t0
        return out

    def _run_images(self, batch: list[Job]) -> list[list[Any]]:
        t0 = time.perf_counter()
        total = self.model.cfg.vq.num_tokens

        def progress(step: int, _total: int) -> None:
            self.stats.progress = {"kind": "image", "step": step, "total": total, "rows": rows}

        if len(batch) == 1:
            req = batch[0].request
            assert isinstance(req, ImageRequest)
            rows = req.params.n
            images = generate_images(self.model, self.processor, req.prompt, req.params, req.negative_prompt,
                                     progress)
            out = images
        else:
            prompts: list[str] = []
            negatives: list[str | None] = []
            for job in batch:
                req = job.request
                assert isinstance(req, ImageRequest)
                prompts += [req.prompt] * req.params.n
                negatives += [req.negative_prompt] * req.params.n
            rows = len(prompts)
            first = batch[0].request.params
            assert isinstance(first, ImageGenParams)
            params = replace(first, n=1)  # the batch's shared settings (its key), one image per row
            neg = negatives if any(x is not None for x in negatives) else None
            flat = [imgs[0] for imgs in generate_images(self.model, self.processor, prompts, params, neg, progress)]
            out, k = [], 0
            for job in batch:
                out.append(flat[k:k + job.rows])
                k += job.rows
        self.stats.batches += 1
        self.stats.batch_rows += rows
        self.stats.images += rows
        self.stats.image_seconds += time.perf_counter() - t0
        return out
