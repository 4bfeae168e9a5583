"""Chat templates, image pre/post-processing and batching."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from januspro.config import preset
from januspro.processing import (
    DEFAULT_SYSTEM_PROMPT,
    ConversationError,
    ImageError,
    JanusProcessor,
    JanusTokenizer,
    format_conversation,
    generation_prompt,
    load_image,
    preprocess_generation,
    preprocess_understanding,
    to_pil,
)

EOS = "<｜end▁of▁sentence｜>"


def test_janus_pro_template_with_image():
    msgs = [{"role": "user", "content": "<image_placeholder>\nWhat is in the picture?", "images": ["a.png"]}]
    prompt, images = format_conversation(msgs, "janus-pro")
    assert prompt == (DEFAULT_SYSTEM_PROMPT + "\n\n<|User|>: <image_placeholder>\nWhat is in the picture?"
                      "\n\n<|Assistant|>:")
    assert images == ["a.png"]
    prompt, _ = format_conversation(msgs, "janus-pro", system_prompt="")
    assert prompt == "<|User|>: <image_placeholder>\nWhat is in the picture?\n\n<|Assistant|>:"


def test_janus_13b_template_multi_turn_multi_image():
    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "image", "image": "x.png"}, {"type": "text", "text": "is Figure 1."},
                                     {"type": "image", "image": "y.png"}, {"type": "text", "text": "Brighter?"}]},
        {"role": "assistant", "content": "The second."},
        {"role": "user", "content": "Why?"},
    ]
    prompt, images = format_conversation(msgs, "janus-1.3b")
    assert prompt == ("Be brief.\n\nUser: <image_placeholder>\nis Figure 1.\n<image_placeholder>\nBrighter?\n\n"
                      f"Assistant: The second.{EOS}User: Why?\n\nAssistant:")
    assert images == ["x.png", "y.png"]


def test_generation_prompt():
    assert generation_prompt("a red circle") == "<|User|>: a red circle\n\n<|Assistant|>:"
    assert generation_prompt(" two squares ", "janus-1.3b") == "User: two squares\n\nAssistant:"


@pytest.mark.parametrize("msgs,match", [
    ([{"role": "user", "content": "<image_placeholder> hi"}], "1 <image_placeholder> tag"),
    ([{"role": "assistant", "content": "hi"}], "expected a user turn"),
    ([{"role": "robot", "content": "hi"}], "role must be"),
    ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}], "system message may only come first"),
    ([{"content": "a"}], "must be a dict with a 'role'"),
])
def test_bad_conversations(msgs, match):
    with pytest.raises(ConversationError, match=match):
        format_conversation(msgs)


@pytest.fixture(scope="module")
def processor(deepseek_tokenizer_dir):
    return JanusProcessor(JanusTokenizer.from_dir(deepseek_tokenizer_dir), preset("janus-pro-1b"))


def _png(w: int, h: int, color=(200, 10, 10), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h), color).save(buf, format="PNG")
    return buf.getvalue()


def test_encode_chat_expands_images(processor):
    msgs = [{"role": "user", "content": [{"type": "image", "image": _png(40, 20)}, {"type": "text", "text": "Describe."}]}]
    enc = processor.encode_chat(msgs)
    ids = enc.input_ids
    assert ids[0] == 100000
    assert ids.count(100581) == 576 and ids.count(100016) == 1 and ids.count(100593) == 1
    start = ids.index(100016)
    assert ids[start + 1:start + 577] == [100581] * 576 and ids[start + 577] == 100593
    assert enc.pixel_values.shape == (1, 3, 384, 384)


def test_batch_left_pads_with_the_tokenizer_pad(processor):
    a = processor.encode_chat([{"role": "user", "content": "Hi"}], system_prompt="")
    b = processor.encode_chat([{"role": "user", "content": "<image_placeholder>\nWhat colour?",
                                "images": [_png(10, 10)]}])
    batch = processor.batch([a, b])
    t = len(b.input_ids)
    assert batch.input_ids.shape == (2, t)
    pad = t - len(a.input_ids)
    assert batch.input_ids[0, :pad].eq(processor.tokenizer.pad_id).all()
    assert batch.attention_mask[0].tolist() == [0] * pad + [1] * len(a.input_ids)
    assert batch.attention_mask[1].all()
    assert batch.pixel_values.shape == (1, 3, 384, 384)


def test_generation_ids_end_with_begin_of_image(processor):
    ids = processor.encode_generation_prompt("a red circle")
    assert ids[0] == 100000 and ids[-1] == 100016
    assert processor.decode(ids[1:-1]) == "<|User|>: a red circle\n\n<|Assistant|>:"


def test_too_long_prompt(processor):
    with pytest.raises(ConversationError, match="exceeds the model's context"):
        processor.encode_generation_prompt("word " * 16000)


def test_understanding_preprocessing_pads_with_grey():
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    x = preprocess_understanding(img, 32, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert x.shape == (3, 32, 32)
    grey = (127 / 255 - 0.5) / 0.5
    assert torch.allclose(x[:, 0, :], torch.full((3, 32), grey))  # top padding row
    assert torch.allclose(x[:, 31, :], torch.full((3, 32), grey))  # bottom padding row
    assert torch.allclose(x[:, 16, 16], torch.tensor([1.0, -1.0, -1.0]), atol=1e-6)  # red in the middle


def test_generation_preprocessing_crops_centre():
    img = Image.new("RGB", (60, 30), (0, 0, 255))
    img.paste((255, 255, 0), (0, 0, 8, 30))  # a yellow strip on the left, cropped away
    x = preprocess_generation(img, 16)
    assert x.shape == (3, 16, 16)
    assert x.min() >= -1 and x.max() <= 1
    assert torch.allclose(x[:, 8, 8], torch.tensor([-1.0, -1.0, 1.0]))
    assert (x[2] > 0.9).all()  # only blue survives the centre crop


def test_uint8_halves_match_the_float_preprocessing(tmp_path):
    """Datasets held in RAM as uint8 (fit_* then to_uint8, normalised per batch) feed the models exactly
    the values the one-shot float preprocessing gives."""
    from januspro.processing.image import fit_generation, fit_understanding, normalise_understanding, to_uint8
    from januspro.training.data import DataError, load_images_uint8

    g = torch.Generator().manual_seed(0)
    imgs = [Image.fromarray(torch.randint(0, 256, (h, w, 3), generator=g, dtype=torch.uint8).numpy())
            for w, h in ((40, 20), (32, 32), (17, 50))]
    mean, std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    for img in imgs:
        u = to_uint8(fit_understanding(img, 32, mean))
        assert u.dtype == torch.uint8 and u.shape == (3, 32, 32)
        assert torch.equal(normalise_understanding(u, mean, std), preprocess_understanding(img, 32, mean, std))
        gen = to_uint8(fit_generation(img, 16)).float() / 127.5 - 1.0
        assert torch.allclose(gen, preprocess_generation(img, 16), atol=1e-6)
    for i, img in enumerate(imgs):
        img.save(tmp_path / f"{i}.png")
    rows = [{"image": f"{i}.png"} for i in range(3)]
    stack = load_images_uint8(rows, tmp_path, lambda im: fit_understanding(im, 32, mean), 32)
    assert stack.dtype == torch.uint8 and stack.shape == (3, 3, 32, 32)
    assert torch.equal(normalise_understanding(stack, mean, std)[2], preprocess_understanding(imgs[2], 32, mean, std))
    with pytest.raises(DataError, match="expected 16x16"):
        load_images_uint8(rows, tmp_path, lambda im: im, 16)


def test_to_pil_round_trip():
    img = Image.new("RGB", (8, 8), (10, 128, 250))
    x = preprocess_generation(img, 8)
    back = to_pil(x)[0]
    assert back.size == (8, 8)
    r, g, b = back.getpixel((3, 3))
    assert abs(r - 10) <= 1 and abs(g - 128) <= 1 and abs(b - 250) <= 1


def test_to_pil_clips_and_truncates_like_the_official_sampler():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 3, 5, 7, generator=g) * 1.5  # values outside [-1, 1] too
    x[0, 0, 0, :4] = torch.tensor([-1.0, 1.0, 0.0, 1 / 255 - 1])
    ref = ((x + 1.0) / 2.0 * 255.0).clamp(0, 255).permute(0, 2, 3, 1).numpy().astype(np.uint8)
    got = np.stack([np.asarray(im) for im in to_pil(x)])
    assert got.shape == (3, 5, 7, 3)
    np.testing.assert_array_equal(got, ref)
    assert to_pil(x[0])[0].size == (7, 5)


def test_image_modes_are_converted():
    assert load_image(_png(5, 5, (1, 2, 3, 0), "RGBA")).getpixel((0, 0)) == (255, 255, 255)
    assert load_image(_png(5, 5, 128, "L")).mode == "RGB"


def test_bad_images(tmp_path):
    with pytest.raises(ImageError, match="no image file"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "notes.png").write_text("this is text")
    with pytest.raises(ImageError, match="not a readable image"):
        load_image(tmp_path / "notes.png")
    with pytest.raises(ImageError, match="could not be decoded|not a readable image"):
        load_image(_png(50, 50)[:60])
    with pytest.raises(ImageError, match="pixel limit"):
        load_image(_png(100, 100), max_pixels=1000)
