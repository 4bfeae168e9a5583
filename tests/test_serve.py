"""The HTTP API on a tiny random checkpoint: every route, streaming, OpenAI error shapes, auth, bad input,
batching and back-pressure; and the official openai client against it."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
import time

import pytest
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from helpers import make_tiny_checkpoint  # noqa: E402
from januspro.checkpoint import load_model, load_processor  # noqa: E402
from januspro.generation.image import ImageGenParams, generate_images  # noqa: E402
from januspro.serve.app import create_app  # noqa: E402
from januspro.serve.engine import Engine, ImageRequest  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = make_tiny_checkpoint(tmp_path_factory.mktemp("serve-model"))
    model = load_model(folder)
    return model, load_processor(model)


@pytest.fixture(scope="module")
def client(tiny):
    app = create_app(*tiny, model_id="tiny", max_image_pixels=100 * 100)
    with TestClient(app) as c:
        yield c


def png_data_url(size=(32, 32), color=(200, 30, 30), mode="RGB") -> str:
    buf = io.BytesIO()
    Image.new(mode, size, color if mode == "RGB" else None).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def chat_body(text="What is this?", image=True, **kw):
    content = [{"type": "text", "text": text}]
    if image:
        content.insert(0, {"type": "image_url", "image_url": {"url": png_data_url()}})
    return {"messages": [{"role": "user", "content": content}], "max_tokens": 6, **kw}


def assert_error(resp, status, code=None):
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    if code is not None:
        assert err["code"] == code
    return err


def test_health_models_metrics_page(client):
    assert client.get("/health").json()["status"] == "ok"
    models = client.get("/v1/models").json()
    assert models["object"] == "list" and models["data"][0]["id"] == "tiny"
    page = client.get("/")
    assert page.status_code == 200 and "Generate images" in page.text and "chat-send" in page.text
    client.post("/v1/chat/completions", json=chat_body())
    text = client.get("/metrics").text
    assert "# TYPE januspro_requests_total counter" in text
    assert 'januspro_requests_total{method="POST",path="/v1/chat/completions",status="200"}' in text
    for name in ("januspro_queue_depth", "januspro_images_per_second", "januspro_request_latency_seconds_count"):
        assert name in text
    schema = client.get("/openapi.json").json()
    assert "/v1/chat/completions" in schema["paths"] and "/v1/images/generations" in schema["paths"]


def test_chat_completion_shape(client):
    r = client.post("/v1/chat/completions", json=chat_body(n=2, temperature=0.8, seed=1))
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["object"] == "chat.completion" and j["model"] == "tiny" and j["id"].startswith("chatcmpl-")
    assert [c["index"] for c in j["choices"]] == [0, 1]
    for c in j["choices"]:
        assert c["message"]["role"] == "assistant" and isinstance(c["message"]["content"], str)
        assert c["finish_reason"] in ("stop", "length")
    u = j["usage"]
    assert u["prompt_tokens"] > 0 and u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
    assert u["completion_tokens"] <= 12


def test_chat_greedy_matches_library(client, tiny):
    from januspro.generation.text import TextGenParams, chat

    img = Image.new("RGB", (32, 32), (200, 30, 30))
    want = chat(*tiny, "What is this?", [img], TextGenParams(max_new_tokens=6))
    got = client.post("/v1/chat/completions", json=chat_body()).json()["choices"][0]["message"]["content"]
    assert got == want


def test_chat_stream_chunks(client):
    with client.stream("POST", "/v1/chat/completions", json=chat_body(stream=True)) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [ln for ln in r.iter_lines() if ln]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(ln[6:]) for ln in lines[:-1]]
    assert all(ln.startswith("data: ") for ln in lines)
    assert all(c["object"] == "chat.completion.chunk" and len({c["id"] for c in chunks}) == 1 for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    whole = client.post("/v1/chat/completions", json=chat_body()).json()["choices"][0]["message"]["content"]
    assert streamed.strip() == whole


def test_images_generation(client, tiny):
    model, _ = tiny
    size = model.cfg.vq.image_size
    r = client.post("/v1/images/generations", json={"prompt": "a red circle", "n": 2, "seed": 3, "cfg_weight": 3,
                                                    "size": f"{size}x{size}"})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert len(data) == 2
    imgs = [Image.open(io.BytesIO(base64.b64decode(d["b64_json"]))) for d in data]
    assert all(im.size == (size, size) for im in imgs)
    # a seeded request is reproducible and equals the library call with the same settings
    want = generate_images(*tiny, "a red circle", ImageGenParams(cfg_weight=3, n=2, seed=3))[0]
    assert [im.tobytes() for im in imgs] == [im.convert("RGB").tobytes() for im in want]
    # a guidance schedule reaches the sampler, and best-of-K its judge
    for extra in ({"cfg_end": 1}, {"best_of": 3}, {"best_of": 2, "judge": "ask"},
                  {"plan": True, "plan_temperature": 0.5}):
        r = client.post("/v1/images/generations", json={"prompt": "a red circle", "n": 1, "seed": 3, "cfg_weight": 3,
                                                        **extra})
        assert r.status_code == 200, r.text
        got = Image.open(io.BytesIO(base64.b64decode(r.json()["data"][0]["b64_json"])))
        want = generate_images(*tiny, "a red circle", ImageGenParams(cfg_weight=3, n=1, seed=3, **extra))[0][0]
        assert got.tobytes() == want.convert("RGB").tobytes()
        # a planned image comes with the plan it was drawn after
        assert r.json()["data"][0].get("plan") == want.info.get("plan")
        assert ("plan" in r.json()["data"][0]) == bool(extra.get("plan"))


@pytest.mark.parametrize("body,status,code", [
    ({"prompt": "x", "size": "1024x1024"}, 400, "unsupported_size"),
    ({"prompt": "x", "response_format": "url"}, 400, None),
    ({"prompt": "x", "n": 0}, 400, None),
    ({"prompt": "x", "cfg_weight": -1}, 400, None),
    ({"prompt": "x", "cfg_end": -1}, 400, None),
    ({"prompt": "x", "best_of": 0}, 400, None),
    ({"prompt": "x", "best_of": 9}, 400, None),
    ({"prompt": "x", "judge": "vote"}, 400, None),
    ({"prompt": "x", "plan": True, "plan_temperature": -1}, 400, None),
    ({"prompt": ""}, 400, None),
    ({"n": 1}, 400, None),
    ({"prompt": "word " * 2000}, 400, "context_length_exceeded"),
    ({"prompt": "x", "model": "gpt-4"}, 404, "model_not_found"),
])
def test_images_bad_input(client, body, status, code):
    assert_error(client.post("/v1/images/generations", json=body), status, code)


def _chat_with_url(url):
    return {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                                      {"type": "text", "text": "hi"}]}], "max_tokens": 2}


@pytest.mark.parametrize("body,status", [
    (_chat_with_url("data:image/png;base64,!!!notbase64"), 400),
    (_chat_with_url("data:image/png;base64," + base64.b64encode(b"not an image at all").decode()), 400),
    (_chat_with_url(png_data_url(size=(200, 200))), 400),  # over the 100x100 pixel limit of this app
    (_chat_with_url("https://example.com/cat.png"), 400),
    (_chat_with_url("/etc/passwd"), 400),  # local paths need --image-dir
    ({"messages": []}, 400),
    ({"messages": [{"role": "user", "content": "hi"}], "temperature": 5}, 400),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, 400),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, 400),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}, 400),
    ({"messages": [{"role": "user", "content": [{"type": "audio", "audio": "x"}]}]}, 400),
    ({"messages": [{"role": "user", "content": "word " * 2000}]}, 400),
    ({"messages": [{"role": "user", "content": "hi"}], "stop": ["a", "b", "c", "d", "e"]}, 400),
])
def test_chat_bad_input(client, body, status):
    assert_error(client.post("/v1/chat/completions", json=body), status)


def test_any_image_mode_is_accepted(client):
    for mode in ("RGBA", "L", "P", "CMYK"):
        buf = io.BytesIO()
        Image.new(mode, (20, 20)).save(buf, format="PNG" if mode != "CMYK" else "JPEG")
        url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
        assert client.post("/v1/chat/completions", json=_chat_with_url(url)).status_code == 200, mode


def test_invalid_json_and_body_limit(tiny):
    app = create_app(*tiny, max_body_bytes=2000)
    with TestClient(app) as c:
        assert_error(c.post("/v1/chat/completions", content=b"{not json",
                            headers={"content-type": "application/json"}), 400)
        assert_error(c.post("/v1/chat/completions", json=chat_body(text="x" * 5000)), 413, "body_too_large")


def test_local_images_only_inside_allowed_folder(tiny, tmp_path):
    ok = tmp_path / "ok.png"
    Image.new("RGB", (16, 16), (0, 0, 255)).save(ok)
    app = create_app(*tiny, image_dir=tmp_path)
    with TestClient(app) as c:
        assert c.post("/v1/chat/completions", json=_chat_with_url(str(ok))).status_code == 200
        assert c.post("/v1/chat/completions", json=_chat_with_url("ok.png")).status_code == 200
        assert_error(c.post("/v1/chat/completions", json=_chat_with_url(str(tmp_path / ".." / "x.png"))), 400)
        assert_error(c.post("/v1/chat/completions", json=_chat_with_url(str(tmp_path / "missing.png"))), 400)


def test_api_key(tiny):
    app = create_app(*tiny, api_key="s3cret")
    with TestClient(app) as c:
        assert c.get("/health").status_code == 200
        assert c.get("/").status_code == 200
        assert_error(c.get("/v1/models"), 401, "invalid_api_key")
        assert_error(c.get("/metrics", headers={"Authorization": "Bearer wrong"}), 401)
        assert_error(c.post("/v1/chat/completions", json=chat_body()), 401)
        good = {"Authorization": "Bearer s3cret"}
        assert c.get("/v1/models", headers=good).status_code == 200
        assert c.post("/v1/chat/completions", json=chat_body(), headers=good).status_code == 200


def test_queue_full_429_and_timeout(tiny):
    engine = Engine(*tiny, queue_size=1)
    engine.close()  # no worker: requests wait in the queue
    app = create_app(*tiny, engine=engine, request_timeout=1.5)
    with TestClient(app) as c:
        first: dict = {}
        t = threading.Thread(target=lambda: first.update(r=c.post("/v1/images/generations", json={"prompt": "a"})))
        t.start()
        deadline = time.time() + 5
        while engine.queue_depth < 1 and time.time() < deadline:
            time.sleep(0.02)
        busy = c.post("/v1/images/generations", json={"prompt": "b"})
        assert_error(busy, 429, "queue_full")
        assert busy.headers["retry-after"] == "1"
        t.join()
        assert_error(first["r"], 504, "timeout")
        assert engine.queue_depth == 0  # the timed-out request left the queue


def test_engine_batches_requests_that_arrive_together(tiny):
    engine = Engine(*tiny, batch_window=0.2)

    async def run():
        reqs = [ImageRequest(p, ImageGenParams(cfg_weight=2, n=k)) for p, k in (("a", 1), ("b b", 2), ("c c c", 1))]
        jobs = [engine.submit(r) for r in reqs]
        return await asyncio.gather(*(j.future for j in jobs))

    try:
        out = asyncio.run(run())
    finally:
        engine.close()
    assert [len(x) for x in out] == [1, 2, 1]
    assert engine.stats.batches == 1 and engine.stats.images == 4


def test_engine_cancelled_job_leaves_queue(tiny):
    engine = Engine(*tiny)
    engine.close()

    async def run():
        a = engine.submit(ImageRequest("a", ImageGenParams()))
        engine.submit(ImageRequest("b", ImageGenParams()))
        assert engine.queue_depth == 2
        a.cancel()
        return engine.queue_depth

    assert asyncio.run(run()) == 1


def test_openai_client(client, tiny):
    openai = pytest.importorskip("openai")
    oc = openai.OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=client)
    assert [m.id for m in oc.models.list().data] == ["tiny"]
    r = oc.chat.completions.create(model="tiny", messages=chat_body()["messages"], max_tokens=6)
    assert r.choices[0].message.role == "assistant" and r.usage.total_tokens > 0
    stream = oc.chat.completions.create(model="tiny", messages=chat_body()["messages"], max_tokens=6, stream=True)
    pieces = [ch.choices[0].delta.content or "" for ch in stream if ch.choices]
    assert "".join(pieces).strip() == r.choices[0].message.content
    size = tiny[0].cfg.vq.image_size
    img = oc.images.generate(model="tiny", prompt="a red circle", n=2, size=f"{size}x{size}",
                             response_format="b64_json", extra_body={"seed": 1, "cfg_weight": 2})
    assert len(img.data) == 2 and Image.open(io.BytesIO(base64.b64decode(img.data[0].b64_json))).size == (size, size)
    with pytest.raises(openai.BadRequestError) as e:
        oc.images.generate(model="tiny", prompt="x", size="1024x1024")
    assert "generates" in str(e.value)


def test_closed_stream_frees_its_queue_slot(tiny):
    """Over a real socket: a client that closes its stream while queued frees its place in the queue."""
    import httpx

    from helpers import serve_in_thread

    engine = Engine(*tiny)
    engine.close()  # no worker: the request stays queued until its client goes away
    queued: list = []
    submit = engine.submit
    engine.submit = lambda *a, **k: queued.append(submit(*a, **k)) or queued[-1]  # type: ignore[method-assign]
    with serve_in_thread(create_app(*tiny, engine=engine)) as base:
        with httpx.Client(timeout=30) as c, c.stream("POST", base + "/v1/chat/completions",
                                                     json=chat_body(stream=True)) as r:
            first = next(r.iter_lines())
            assert json.loads(first[6:])["choices"][0]["delta"]["role"] == "assistant"
            assert len(queued) == 1  # the request reached the queue (no worker runs it)
        deadline = time.time() + 30
        while engine.queue_depth and time.time() < deadline:
            time.sleep(0.05)
        assert engine.queue_depth == 0 and queued[0].cancelled


def test_chat_look_answers_after_the_models_own_look_answer(client, tiny):
    """look: true asks "List the objects." first (one greedy pass) and answers after it, as generate_text with
    TextGenParams(look=...) does; the response and the first stream chunk carry the look answer."""
    from januspro.generation.look import look_first
    from januspro.generation.text import TextGenParams, generate_text
    from januspro.shapes.language import LOOK_QUESTION

    model, proc = tiny
    r = client.post("/v1/chat/completions", json=chat_body("Is there a red circle?", look=True))
    assert r.status_code == 200, r.text
    img = Image.new("RGB", (32, 32), (200, 30, 30))
    conv = [{"role": "user", "content": [{"type": "image", "image": img}, {"type": "text", "text": "Is there a red circle?"}]}]
    opened, seen = look_first(model, proc, [conv], LOOK_QUESTION, TextGenParams(max_new_tokens=6))
    assert r.json()["look"] == seen[0]
    assert r.json()["choices"][0]["message"]["content"] == generate_text(model, proc, opened,
                                                                         TextGenParams(max_new_tokens=6))[0]
    # usage counts the look pass too (its prompt: the image and the look question; its answer), and says it apart
    usage, plain = r.json()["usage"], client.post("/v1/chat/completions", json=chat_body("Is there a red circle?"))
    look_prompt = len(proc.encode_chat([{"role": "user", "content": [{"type": "image", "image": img},
                                                                     {"type": "text", "text": LOOK_QUESTION}]}]).input_ids)
    assert usage["look"]["prompt_tokens"] == look_prompt and 1 <= usage["look"]["completion_tokens"] <= 128
    assert usage["prompt_tokens"] == len(proc.encode_chat(opened[0]).input_ids) + look_prompt
    assert usage["completion_tokens"] > usage["look"]["completion_tokens"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert "look" not in plain.json()["usage"]
    custom = client.post("/v1/chat/completions", json=chat_body("Is there a red circle?", look="What is there?"))
    assert custom.status_code == 200 and isinstance(custom.json()["look"], str)
    assert "look" not in client.post("/v1/chat/completions", json=chat_body(image=False, look=True)).json()
    with client.stream("POST", "/v1/chat/completions", json=chat_body("Is there a red circle?", look=True,
                                                                     stream=True)) as s:
        first = next(line for line in s.iter_lines() if line.startswith("data: "))
    assert json.loads(first[len("data: "):])["look"] == seen[0]
    assert_error(client.post("/v1/chat/completions", json=chat_body(look=" ")), 400)
    only_image = {"messages": [{"role": "user", "content": [{"type": "image_url",
                                                              "image_url": {"url": png_data_url()}}]}], "look": True}
    assert_error(client.post("/v1/chat/completions", json=only_image), 400)
