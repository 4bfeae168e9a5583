"""The HTTP API (OpenAI-compatible chat completions and image generations) and the web page.

``create_app(model, processor, ...)`` builds the FastAPI app around one :class:`Engine`; ``januspro serve``
runs it with uvicorn. Errors always have OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``;
a user mistake is a 4xx, never a 500.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import secrets
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, NamedTuple

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..checkpoint.defaults import ModelDefaults
from ..generation.image import ImageGenParams
from ..generation.look import LOOK_MAX_TOKENS, join_look, split_for_look
from ..generation.rerank import JUDGES
from ..generation.text import TextGenParams
from ..models.janus import JanusModel
from ..processing.image import ImageError, load_image
from ..processing.processor import ConversationError, JanusProcessor
from ..shapes.language import LOOK_QUESTION
from .engine import ChatRequest, Engine, ImageRequest, Job, QueueFull

STATIC = Path(__file__).parent / "static"
OPEN_PATHS = ("/health", "/", "/favicon.ico")  # no API key needed (the page asks for the key itself)


class Looked(NamedTuple):
    """A chat's look pass (``look`` in the request): the conversation opened by the look turn and its answer, and
    the pass's token counts."""

    conversation: list[dict[str, Any]]
    answer: str
    prompt_tokens: int
    completion_tokens: int


class APIError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers = headers or {}


def error_response(status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                   code: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type_, "param": param, "code": code}},
                        status_code=status, headers=headers)


# ----------------------------------------------------------------------------- request bodies
class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ChatMessage(_Body):
    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatBody(_Body):
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    top_k: int = Field(default=0, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(default=1, ge=1, le=16)
    stream: bool = False
    repetition_penalty: float = Field(default=1.0, gt=0)
    # look, then answer (generation/look.py): true asks the shapes world's "List the objects." about the first
    # user turn's images first, a string asks that question; the response carries the model's answer as "look";
    # left out: the model's default (its generation_config.json, checkpoint/defaults.py)
    look: bool | str | None = None


class ImageBody(_Body):
    model: str | None = None
    prompt: str = Field(min_length=1)
    n: int = Field(default=1, ge=1, le=16)
    size: str | None = None
    response_format: str = "b64_json"
    cfg_weight: float = Field(default=5.0, ge=0)
    cfg_end: float | None = Field(default=None, ge=0)
    temperature: float = Field(default=1.0, ge=0)
    top_k: int = Field(default=0, ge=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    best_of: int = Field(default=1, ge=1, le=8)  # candidates per image, judged by the model's understanding path
    judge: Literal[JUDGES] = "describe"  # how best_of judges them (generation/rerank.py)
    plan: bool | None = None  # the model writes a drawing plan before each image (generation/plan.py); left out:
    # the model's default
    plan_temperature: float = Field(default=0.0, ge=0)
    seed: int | None = None
    negative_prompt: str | None = None


# ----------------------------------------------------------------------------- metrics
class Metrics:
    BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = {}
        self.latency_counts = [0] * (len(self.BUCKETS) + 1)
        self.latency_sum = 0.0
        self.latency_n = 0
        self.started = time.time()

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        key = (method, path, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        if path.startswith("/v1/chat") or path.startswith("/v1/images"):
            self.latency_sum += seconds
            self.latency_n += 1
            for i, b in enumerate(self.BUCKETS):
                if seconds <= b:
                    self.latency_counts[i] += 1
            self.latency_counts[-1] += 1

    def render(self, engine: Engine) -> str:
        s = engine.stats
        out = ["# HELP januspro_requests_total HTTP requests by method, path and status.",
               "# TYPE januspro_requests_total counter"]
        for (m, p, st), n in sorted(self.requests.items()):
            out.append(f'januspro_requests_total{{method="{m}",path="{p}",status="{st}"}} {n}')
        out += ["# HELP januspro_request_latency_seconds Latency of chat and image requests.",
                "# TYPE januspro_request_latency_seconds histogram"]
        for b, c in zip(self.BUCKETS, self.latency_counts, strict=False):
            out.append(f'januspro_request_latency_seconds_bucket{{le="{b}"}} {c}')
        out.append(f'januspro_request_latency_seconds_bucket{{le="+Inf"}} {self.latency_counts[-1]}')
        out.append(f"januspro_request_latency_seconds_sum {self.latency_sum:.6f}")
        out.append(f"januspro_request_latency_seconds_count {self.latency_n}")
        ips = s.images / s.image_seconds if s.image_seconds > 0 else 0.0
        for name, kind, value, text in (
            ("queue_depth", "gauge", engine.queue_depth, "Requests waiting for the model."),
            ("batches_total", "counter", s.batches, "Batches run by the model worker."),
            ("batch_rows_total", "counter", s.batch_rows, "Rows (conversations or images) in those batches."),
            ("images_generated_total", "counter", s.images, "Images generated."),
            ("images_per_second", "gauge", round(ips, 4), "Images per second of image-generation work."),
            ("chat_completion_tokens_total", "counter", s.chat_tokens, "Tokens generated for chat."),
            ("uptime_seconds", "gauge", round(time.time() - self.started, 1), "Seconds since the server started."),
        ):
            out += [f"# HELP januspro_{name} {text}", f"# TYPE januspro_{name} {kind}", f"januspro_{name} {value}"]
        return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- the app
def create_app(model: JanusModel, processor: JanusProcessor, model_id: str = "janus-pro-shapes",
               api_key: str | None = None, image_dir: str | Path | None = None, queue_size: int = 64,
               max_batch: int = 16, request_timeout: float = 600.0, max_body_bytes: int = 20 << 20,
               max_image_pixels: int = 4096 * 4096, batch_window: float = 0.02, engine: Engine | None = None,
               defaults: ModelDefaults | None = None) -> FastAPI:
    """The HTTP app over one model. ``defaults``: the model's default modes (``read_defaults`` of its folder),
    used where a request leaves ``look`` / ``plan`` out."""
    defaults = defaults or ModelDefaults()
    engine = engine or Engine(model, processor, queue_size=queue_size, max_chat_rows=max_batch,
                              max_image_rows=max_batch, batch_window=batch_window)
    allowed_dir = Path(image_dir).resolve() if image_dir else None
    metrics = Metrics()
    cfg = model.cfg
    native = f"{cfg.vq.image_size}x{cfg.vq.image_size}"

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        await asyncio.to_thread(engine.close)

    app = FastAPI(title="januspro", version=__version__, lifespan=lifespan,
                  description=f"OpenAI-compatible chat and image generation with {model_id}.")
    app.state.engine = engine
    app.state.metrics = metrics

    @app.middleware("http")
    async def guard(request: Request, call_next):  # auth, body size, metrics
        t0 = time.perf_counter()
        path = request.url.path
        if api_key and path not in OPEN_PATHS:
            given = request.headers.get("authorization", "")
            token = given[7:] if given.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
            if not secrets.compare_digest(token.encode(), api_key.encode()):
                resp = error_response(401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                                      code="invalid_api_key")
                metrics.observe(request.method, path, 401, time.perf_counter() - t0)
                return resp
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body_bytes):
            resp = error_response(413, f"request body over the {max_body_bytes:,} byte limit", code="body_too_large")
            metrics.observe(request.method, path, 413, time.perf_counter() - t0)
            return resp
        if length is None and request.method == "POST":
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > max_body_bytes:
                    metrics.observe(request.method, path, 413, time.perf_counter() - t0)
                    return error_response(413, f"request body over the {max_body_bytes:,} byte limit",
                                          code="body_too_large")
            request._body = body  # starlette reuses a body already read
        resp = await call_next(request)
        metrics.observe(request.method, path, resp.status_code, time.perf_counter() - t0)
        return resp

    @app.exception_handler(APIError)
    async def _api_error(_request: Request, e: APIError) -> JSONResponse:
        return error_response(e.status, e.message, e.type, e.param, e.code, e.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, e: RequestValidationError) -> JSONResponse:
        errs = e.errors()
        first = errs[0] if errs else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        msg = first.get("msg", "invalid request")
        if first.get("type") == "json_invalid":
            return error_response(400, "the request body is not valid JSON", code="invalid_json")
        return error_response(400, f"{where}: {msg}" if where else msg, param=where or None)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, e: StarletteHTTPException) -> JSONResponse:
        return error_response(e.status_code, str(e.detail), "invalid_request_error" if e.status_code < 500
                              else "server_error")

    @app.exception_handler(Exception)
    async def _crash(_request: Request, e: Exception) -> JSONResponse:
        return error_response(500, f"internal error: {type(e).__name__}: {e}", "server_error")

    # ------------------------------------------------------------------ routes
    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": model_id, "queue_depth": engine.queue_depth, "defaults": defaults.to_dict()}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model_id, "object": "model", "created": int(metrics.started),
                                            "owned_by": "januspro"}]}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(engine), media_type="text/plain; version=0.0.4")

    @app.get("/v1/queue")
    async def queue() -> dict[str, Any]:
        """What the worker is doing now (the page's progress bar polls this)."""
        return {"queue_depth": engine.queue_depth, "running": dict(engine.stats.progress)}

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text())

    def check_model(name: str | None) -> None:
        if name not in (None, "", model_id):
            raise APIError(404, f"model {name!r} is not served here; this server has {model_id!r}", param="model",
                           code="model_not_found")

    def read_image(url: str) -> Any:
        if url.startswith("data:"):
            head, sep, data = url.partition(",")
            if not sep or ";base64" not in head:
                raise APIError(400, "image_url data URLs must be base64 encoded (data:image/png;base64,...)",
                               param="messages")
            try:
                raw = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise APIError(400, "image_url holds invalid base64 data", param="messages") from None
            src: Any = raw
        elif url.startswith(("http://", "https://")):
            raise APIError(400, "remote image URLs are not fetched; send the image as a data: URL", param="messages")
        else:
            if allowed_dir is None:
                raise APIError(400, "local image paths are disabled; send a data: URL (or start the server with "
                                    "--image-dir)", param="messages")
            p = Path(url.removeprefix("file://")).expanduser()
            p = (allowed_dir / p if not p.is_absolute() else p).resolve()
            if not p.is_relative_to(allowed_dir):
                raise APIError(400, f"image path outside the allowed folder {allowed_dir}", param="messages")
            src = p
        try:
            return load_image(src, max_pixels=max_image_pixels)
        except ImageError as e:
            raise APIError(400, f"bad image: {e}", param="messages") from None

    def to_conversation(messages: list[ChatMessage]) -> list[dict[str, Any]]:
        conv = []
        for m in messages:
            if m.content is None or isinstance(m.content, str):
                conv.append({"role": m.role, "content": m.content or ""})
                continue
            parts = []
            for part in m.content:
                kind = part.get("type")
                if kind == "text":
                    parts.append({"type": "text", "text": str(part.get("text", ""))})
                elif kind == "image_url":
                    iu = part.get("image_url")
                    url = iu.get("url") if isinstance(iu, dict) else iu
                    if not isinstance(url, str):
                        raise APIError(400, "an image_url part needs image_url.url", param="messages")
                    parts.append({"type": "image", "image": read_image(url)})
                else:
                    raise APIError(400, f"unsupported content part type {kind!r} (text and image_url are)",
                                   param="messages")
            conv.append({"role": m.role, "content": parts})
        return conv

    async def wait(job: Job, request: Request) -> Any:
        """The job's result; cancels it when the client goes away or the request times out."""
        deadline = time.perf_counter() + request_timeout
        try:
            while True:
                left = deadline - time.perf_counter()
                if left <= 0:
                    job.cancel()
                    raise APIError(504, f"the request took longer than {request_timeout:.0f} s", "timeout",
                                   code="timeout")
                done, _ = await asyncio.wait({job.future}, timeout=min(0.5, left))
                if done:
                    return job.future.result()
                if await request.is_disconnected():
                    job.cancel()
                    raise APIError(499, "client closed the request", code="client_closed")
        except asyncio.CancelledError:
            job.cancel()
            raise

    def submit(req: ChatRequest | ImageRequest, on_piece=None) -> Job:
        try:
            return engine.submit(req, on_piece)
        except QueueFull as e:
            raise APIError(429, f"the server is busy ({e})", "rate_limit_error", code="queue_full",
                           headers={"Retry-After": "1"}) from None

    async def look_first_turn(body: ChatBody, request: Request) -> Looked | None:
        """With ``look``: the conversation with the model's answer to the look question first (one greedy pass
        through the engine, up to LOOK_MAX_TOKENS); None without look or without an image in the first user
        turn."""
        look = defaults.look if body.look is None else body.look
        if look is False or look == "":
            return None
        question = LOOK_QUESTION if look is True else look
        if not question.strip():
            raise APIError(400, "look must be true or a question", param="look")

        def split():
            try:
                return split_for_look(to_conversation(body.messages), question)
            except (ConversationError, ImageError) as e:
                raise APIError(400, str(e), param="messages") from None

        parts = await asyncio.to_thread(split)
        if parts is None:
            return None
        look, rest = parts
        try:
            encoded = await asyncio.to_thread(processor.encode_chat, look)
        except (ConversationError, ImageError) as e:
            raise APIError(400, str(e), param="messages") from None
        res = await wait(submit(ChatRequest(encoded, TextGenParams(max_new_tokens=LOOK_MAX_TOKENS))), request)
        seen = res["choices"][0]["text"]
        return Looked(join_look(look, rest, seen), seen, res["prompt_tokens"], res["choices"][0]["completion_tokens"])

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatBody, request: Request):
        check_model(body.model)
        max_tokens = body.max_completion_tokens or body.max_tokens or 512
        stops = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
        if len(stops) > 4 or any(not s for s in stops):
            raise APIError(400, "stop takes up to 4 non-empty strings", param="stop")
        try:
            params = TextGenParams(max_new_tokens=max_tokens, temperature=body.temperature or 0.0, top_k=body.top_k,
                                   top_p=body.top_p, repetition_penalty=body.repetition_penalty, seed=body.seed)
        except ValueError as e:
            raise APIError(400, str(e)) from None

        def encode():
            conv = looked.conversation if looked else to_conversation(body.messages)
            if conv[-1]["role"] != "user":
                raise APIError(400, "the last message must be the user's", param="messages")
            try:
                return processor.encode_chat(conv)
            except (ConversationError, ImageError) as e:
                raise APIError(400, str(e), param="messages") from None

        looked = await look_first_turn(body, request)
        encoded = await asyncio.to_thread(encode)
        ctx = cfg.llm.max_position_embeddings
        if len(encoded.input_ids) >= ctx:
            raise APIError(400, f"the conversation is {len(encoded.input_ids)} tokens; the model's context is {ctx}",
                           param="messages", code="context_length_exceeded")
        req = ChatRequest(encoded, params, body.n, tuple(stops))
        cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())

        def usage(res: dict[str, Any]) -> dict[str, Any]:
            """Tokens processed for the request: the look pass's (also apart, under ``look``) and the answer's."""
            passes = [(res["prompt_tokens"], sum(c["completion_tokens"] for c in res["choices"]))]
            if looked:
                passes.append((looked.prompt_tokens, looked.completion_tokens))
            out = [{"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c} for p, c in passes]
            total = {k: sum(o[k] for o in out) for k in out[0]}
            return {**total, "look": out[1]} if looked else total

        if not body.stream:
            res = await wait(submit(req), request)
            return {"id": cid, "object": "chat.completion", "created": created, "model": model_id,
                    "choices": [{"index": c["index"], "message": {"role": "assistant", "content": c["text"]},
                                 "finish_reason": c["finish_reason"]} for c in res["choices"]],
                    "usage": usage(res), **({"look": looked.answer} if looked else {})}

        pieces: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
        job = submit(req, lambda i, p: pieces.put_nowait((i, p)))

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> str:
            return "data: " + json.dumps({"id": cid, "object": "chat.completion.chunk", "created": created,
                                          "model": model_id, "choices": choices, **extra}) + "\n\n"

        async def events():
            try:  # the first chunk carries the look answer, when there is one
                yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
                             for i in range(body.n)], **({"look": looked.answer} if looked else {}))
                deadline = time.perf_counter() + request_timeout
                started: set[int] = set()
                while not (job.future.done() and pieces.empty()):
                    if time.perf_counter() > deadline:
                        job.cancel()
                        yield "data: " + json.dumps({"error": {"message": "timed out", "type": "timeout",
                                                               "param": None, "code": "timeout"}}) + "\n\n"
                        return
                    try:
                        i, p = await asyncio.wait_for(pieces.get(), timeout=0.25)
                    except asyncio.TimeoutError:
                        continue
                    if i not in started:  # like the non-streamed answer: no leading whitespace
                        p = p.lstrip()
                        if not p:
                            continue
                        started.add(i)
                    yield chunk([{"index": i, "delta": {"content": p}, "finish_reason": None}])
                try:
                    res = job.future.result()
                except Exception as e:  # the model failed mid-stream
                    yield "data: " + json.dumps({"error": {"message": str(e), "type": "server_error",
                                                           "param": None, "code": None}}) + "\n\n"
                    return
                yield chunk([{"index": c["index"], "delta": {}, "finish_reason": c["finish_reason"]}
                             for c in res["choices"]])
                yield "data: [DONE]\n\n"
            finally:
                job.cancel()  # a client that went away frees its slot (no-op when finished)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.post("/v1/images/generations")
    async def images(body: ImageBody, request: Request):
        check_model(body.model)
        if body.size not in (None, native):
            raise APIError(400, f"size {body.size!r} is not available: this model generates {native} images only",
                           param="size", code="unsupported_size")
        if body.response_format != "b64_json":
            raise APIError(400, "only response_format 'b64_json' is supported", param="response_format")
        try:
            params = ImageGenParams(cfg_weight=body.cfg_weight, temperature=body.temperature, top_k=body.top_k,
                                    top_p=body.top_p, n=body.n, seed=body.seed, cfg_end=body.cfg_end,
                                    best_of=body.best_of, judge=body.judge,
                                    plan=defaults.plan if body.plan is None else body.plan,
                                    plan_temperature=body.plan_temperature)
            processor.encode_generation_prompt(body.prompt)
            if body.negative_prompt is not None:
                processor.encode_generation_prompt(body.negative_prompt)
        except (ValueError, ConversationError) as e:
            raise APIError(400, str(e), param="prompt", code="context_length_exceeded"
                           if "context" in str(e) else None) from None
        imgs = await wait(submit(ImageRequest(body.prompt, params, body.negative_prompt)), request)

        def encode_png(im) -> str:
            buf = io.BytesIO()
            im.save(buf, format="PNG")
            return base64.b64encode(buf.getvalue()).decode()

        data = await asyncio.to_thread(lambda: [encode_png(im) for im in imgs])
        # with plan: each image also carries the drawing plan the model wrote before drawing it
        return {"created": int(time.time()), "data": [
            {"b64_json": d, "revised_prompt": body.prompt, **({"plan": im.info["plan"]} if "plan" in im.info else {})}
            for d, im in zip(data, imgs, strict=True)]}

    return app

