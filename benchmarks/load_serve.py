"""Load test of `januspro serve` on loopback: mixed chat / image requests at a fixed concurrency.

Starts the server twice as a subprocess on 127.0.0.1 -- batched (--max-batch 16) and one request at a time
(--max-batch 1) -- and sends both the same requests (chat questions about shapes-world images, text-to-image
prompts; no seeds, so requests may share batches). Reports status counts (5xx must be 0), whether the server
survived, p50/p99 latency per kind, and images/s; writes a section of benchmarks/RESULTS.md.

    python benchmarks/load_serve.py                  # 200 requests, concurrency 16, the shipped model
    python benchmarks/load_serve.py --requests 40 --model path/to/model
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from results_file import write_section  # noqa: E402

from januspro.shapes.datasets import item_rng, t2i_item  # noqa: E402
from januspro.shapes.language import conversation  # noqa: E402
from januspro.shapes.render import render  # noqa: E402
from januspro.shapes.world import sample_scene  # noqa: E402


def make_requests(n: int, image_share: float, images_per_request: int, max_tokens: int, seed: int) -> list[dict]:
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        if rng.random() < image_share:
            prompt, _ = t2i_item(seed, i)
            out.append({"kind": "image", "path": "/v1/images/generations",
                        "body": {"prompt": prompt, "n": images_per_request}})
        else:
            r = item_rng(seed, i, 9)
            scene = sample_scene(r)
            messages, _ = conversation(scene, r, 1)
            buf = io.BytesIO()
            Image.fromarray(render(scene, 64)).save(buf, format="PNG")
            url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
            question = messages[0]["content"].replace("<image_placeholder>\n", "")
            out.append({"kind": "chat", "path": "/v1/chat/completions", "body": {
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                                          {"type": "text", "text": question}]}],
                "max_tokens": max_tokens}})
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, max_batch: int, queue: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "januspro.cli", "serve", "--model", model, "--port", str(port), "--max-batch",
           str(max_batch), "--queue-size", str(queue), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start in 120 s")


async def drive(url: str, requests: list[dict], concurrency: int, timeout: float) -> dict:
    import httpx

    sem = asyncio.Semaphore(concurrency)
    results: list[tuple[str, int, float, int]] = []  # kind, status, seconds, images

    async def one(client: httpx.AsyncClient, req: dict) -> None:
        async with sem:
            t0 = time.perf_counter()
            while True:  # 429: back off as Retry-After says, then try again (counted once, as its final status)
                try:
                    r = await client.post(url + req["path"], json=req["body"], timeout=timeout)
                    status = r.status_code
                except httpx.HTTPError:
                    status = -1  # connection failure
                    break
                if status != 429:
                    break
                await asyncio.sleep(float(r.headers.get("retry-after", "1")))
            n_img = len(r.json()["data"]) if status == 200 and req["kind"] == "image" else 0
            results.append((req["kind"], status, time.perf_counter() - t0, n_img))

    t0 = time.perf_counter()
    async with httpx.AsyncClient() as client:
        await asyncio.gather(*(one(client, r) for r in requests))
    wall = time.perf_counter() - t0
    return {"wall": wall, "results": results}


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


def run_mode(model: str, max_batch: int, requests: list[dict], args) -> dict:
    proc, url = start_server(model, max_batch, args.queue_size)
    try:
        out = asyncio.run(drive(url, requests, args.concurrency, args.timeout))
        alive = proc.poll() is None
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    res = out["results"]
    statuses: dict[int, int] = {}
    for _, st, _, _ in res:
        statuses[st] = statuses.get(st, 0) + 1
    lat = {k: [s for kind, st, s, _ in res if kind == k and st == 200] for k in ("chat", "image")}
    images = sum(n for *_, n in res)
    return {"max_batch": max_batch, "wall": out["wall"], "statuses": statuses, "alive": alive,
            "errors_5xx": sum(v for k, v in statuses.items() if k >= 500 or k < 0), "images": images,
            "images_per_s": images / out["wall"], "lat": lat}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="janus-pro-shapes")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--image-share", type=float, default=0.5, help="share of image requests (default: 0.5)")
    ap.add_argument("--images-per-request", type=int, default=1)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--queue-size", type=int, default=64)
    ap.add_argument("--timeout", type=float, default=600, help="per-request client timeout (s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"))
    args = ap.parse_args()
    if args.requests < 1 or args.concurrency < 1 or not 0 <= args.image_share <= 1:
        ap.error("--requests and --concurrency must be >= 1, --image-share in [0, 1]")
    reqs = make_requests(args.requests, args.image_share, args.images_per_request, args.max_tokens, args.seed)
    modes = []
    for mb in (16, 1):
        print(f"max-batch {mb}: {len(reqs)} requests at concurrency {args.concurrency} ...", flush=True)
        modes.append(run_mode(args.model, mb, reqs, args))
        m = modes[-1]
        print(f"  {m['wall']:.1f} s, statuses {m['statuses']}, {m['images_per_s']:.2f} img/s", flush=True)
    rows = []
    for m in modes:
        cells = [f"{m['max_batch']}", f"{m['wall']:.1f}", ", ".join(f"{k}: {v}" for k, v in sorted(m["statuses"].items())),
                 str(m["errors_5xx"]), "yes" if m["alive"] else "NO"]
        for k in ("chat", "image"):
            xs = m["lat"][k]
            cells.append(f"{pct(xs, 50):.2f} / {pct(xs, 99):.2f}" if xs else "-")
        cells.append(f"{m['images_per_s']:.2f}")
        rows.append("| " + " | ".join(cells) + " |")
    ratio = modes[0]["images_per_s"] / modes[1]["images_per_s"] if modes[1]["images_per_s"] else float("nan")
    from bench_generate import hardware

    n_img = sum(1 for r in reqs if r["kind"] == "image")
    text = (f"## load_serve.py ({time.strftime('%Y-%m-%d')})\n\nHardware: {hardware('cpu')}. Model: {args.model}. "
            f"{len(reqs)} requests ({n_img} image requests of {args.images_per_request} image(s), "
            f"{len(reqs) - n_img} chat requests with an image, max {args.max_tokens} tokens) at concurrency "
            f"{args.concurrency}, loopback, server in its own process; a 429 is retried after Retry-After. "
            f"Latency in seconds (p50 / p99) from first send to answer.\n\n"
            "| max batch | wall (s) | statuses | 5xx | server alive | chat p50 / p99 | image p50 / p99 | images/s |\n"
            "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) +
            f"\n\nBatched / one at a time: {ratio:.2f}x images/s.\n")
    print(text)
    write_section(args.out, "## load_serve.py", text)
    if any(m["errors_5xx"] or not m["alive"] for m in modes):
        raise SystemExit("load test failed: 5xx answers or a crashed server")


if __name__ == "__main__":
    main()
