"""The web page in a real headless Chromium (Debian's chromium, driven by Playwright): upload an image and get
a streamed answer, generate images and see them in the gallery. Saves a screenshot as a test artefact."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("JANUSPRO_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts"))


def _need_browser():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = "the playwright package"
    else:
        missing = "" if CHROMIUM else "a chromium executable (apt-get install -y chromium)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test needs {missing}; .ci/run installs it")
        pytest.skip(f"needs {missing}")


@pytest.fixture()
def server(tmp_path):
    from helpers import make_tiny_checkpoint, serve_in_thread
    from januspro.checkpoint import load_model, load_processor
    from januspro.serve.app import create_app

    model = load_model(make_tiny_checkpoint(tmp_path / "model"))
    with serve_in_thread(create_app(model, load_processor(model), model_id="tiny-test")) as base:
        yield base


def test_page_chat_and_generate(server, tmp_path):
    _need_browser()
    from playwright.sync_api import sync_playwright

    img = tmp_path / "upload.png"
    Image.new("RGB", (48, 48), (30, 160, 40)).save(img)
    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server + "/")
            page.wait_for_function("document.getElementById('model-name').textContent === 'tiny-test'")
            # chat: upload an image, ask, get a streamed answer
            page.set_input_files("#chat-image", str(img))
            page.wait_for_timeout(200)  # FileReader
            page.fill("#chat-input", "What color is it?")
            page.click("#chat-send")
            page.wait_for_selector(".msg.assistant[data-done='1']", timeout=60000)
            assert page.locator(".msg.user img").count() == 1
            answer = page.locator(".msg.assistant span").first.text_content()
            assert answer.startswith("Model: ") and len(answer) > len("Model: ")
            # look first: a new chat shows the model's list before its answer
            page.click("#chat-clear")
            page.check("#chat-look")
            page.set_input_files("#chat-image", str(img))
            page.wait_for_timeout(200)
            page.fill("#chat-input", "Is there a green square?")
            page.click("#chat-send")
            page.wait_for_selector(".msg.assistant[data-done='1']", timeout=60000)
            assert page.locator(".msg.look span").first.text_content().startswith("Model (looked): ")
            assert page.locator(".msg.look + .msg.assistant").count() == 1
            # images: two of them in the gallery
            page.fill("#gen-prompt", "a green square")
            page.fill("#gen-n", "2")
            page.fill("#gen-seed", "7")
            page.check("#gen-plan")
            page.click("#gen-go")
            page.wait_for_function("document.querySelectorAll('#gallery img').length === 2", timeout=120000)
            assert "(plan: " in page.locator("#gallery figcaption").first.text_content()
            loaded = page.evaluate("Array.from(document.querySelectorAll('#gallery img')).every(i => i.naturalWidth > 0)")
            assert loaded
            assert page.locator("#gen-error").text_content() == "" and page.locator("#chat-error").text_content() == ""
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "serve_page.png"), full_page=True)
            assert not errors, errors
        finally:
            browser.close()
