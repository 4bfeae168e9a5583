"""Best-of-K text-to-image by the model's own understanding path (generation/rerank.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import make_tiny_checkpoint
from januspro.checkpoint import load_model, load_processor
from januspro.generation.image import ImageGenParams, generate_codes, generate_images, unconditional_ids
from januspro.generation.rerank import ASK_QUESTION, answer_logprobs, judge_scores, pick_best
from januspro.processing.chat import DEFAULT_SYSTEM_PROMPT
from januspro.training.data import SampleBuilder
from januspro.training.packing import pack, packed_loss


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model = load_model(make_tiny_checkpoint(tmp_path_factory.mktemp("rerank"))).eval()
    return model, load_processor(model)


def _images(n: int, size: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


def test_answer_logprobs_equal_the_training_loss_of_the_same_chat(tiny, tmp_path):
    """The score is minus the understanding loss training computes for that chat, row by row, in a padded batch
    of answers of different lengths."""
    model, proc = tiny
    mc = model.cfg
    images = _images(4, 40)
    answers = ["a red circle", "two blue squares and a triangle above a green diamond", "x", "a circle"]
    got = answer_logprobs(model, proc, images, answers, batch_size=3)
    # the chat's system prompt: the model's own, else DeepSeek's default (the tiny preset has none of its own)
    system = DEFAULT_SYSTEM_PROMPT if mc.system_prompt is None else mc.system_prompt
    builder = SampleBuilder(proc.tokenizer, mc.chat_template, mc.vision.image_size, mc.vision.num_tokens,
                            mc.vision.image_mean, mc.vision.image_std, system)
    shape = (3, mc.vision.image_size, mc.vision.image_size)
    want = []
    for k, (im, ans) in enumerate(zip(images, answers, strict=True)):
        im.save(tmp_path / f"{k}.png")
        rec = {"messages": [{"role": "user", "content": "<image_placeholder>\nDescribe the image."},
                            {"role": "assistant", "content": ans}], "images": [f"{k}.png"]}
        with torch.no_grad():
            batch = pack([builder.und(rec, tmp_path)], 512, proc.tokenizer.pad_id, shape)
            want.append(-packed_loss(model, batch, proc.tokenizer.image_id, 1.0).text_sum)
    torch.testing.assert_close(got, torch.tensor(want), rtol=1e-4, atol=1e-3)
    assert len(set(got.tolist())) == 4
    # the image matters: the same answer scores differently on another picture
    other = answer_logprobs(model, proc, _images(1, 40, seed=9), answers[:1])
    assert abs(float(other[0] - got[0])) > 1e-4


def test_answer_logprobs_bad_input(tiny):
    model, proc = tiny
    with pytest.raises(ValueError, match="2 images for 1 answers"):
        answer_logprobs(model, proc, _images(2, 16), ["a"])
    with pytest.raises(ValueError, match="batch_size"):
        answer_logprobs(model, proc, _images(1, 16), ["a"], batch_size=0)
    with pytest.raises(ValueError, match="the model's context is"):
        answer_logprobs(model, proc, _images(1, 16), ["word " * (model.cfg.llm.max_position_embeddings + 1)])


def test_pick_best():
    assert pick_best(torch.tensor([0.0, 2.0, 1.0, 5.0, 5.0, -1.0]), 3).tolist() == [1, 3]
    assert pick_best(torch.tensor([1.0, 2.0]), 1).tolist() == [0, 1]
    with pytest.raises(ValueError, match="groups of 4"):
        pick_best(torch.zeros(6), 4)


def test_best_of_keeps_each_groups_likeliest_candidate(tiny):
    """best_of = K draws exactly the n*K candidates of a plain call with n*K images (same seed) and keeps, for
    each image, the candidate of its group of K that answer_logprobs scores highest."""
    model, proc = tiny
    prompts = ["a red circle", "two squares left of a big blue triangle"]
    base = dict(cfg_weight=3.0, temperature=1.0, seed=4)
    best = generate_images(model, proc, prompts, ImageGenParams(n=2, best_of=3, **base))
    cands = generate_images(model, proc, prompts, ImageGenParams(n=6, **base))
    for prompt, got, pool in zip(prompts, best, cands, strict=True):
        scores = answer_logprobs(model, proc, pool, [prompt] * 6)
        assert len(set(scores.tolist())) == 6  # the candidates differ, so the choice is a real one
        want = [pool[i] for i in pick_best(scores, 3).tolist()]
        assert len(got) == 2
        for g, w in zip(got, want, strict=True):
            assert np.array_equal(np.asarray(g), np.asarray(w))
    with pytest.raises(ValueError, match="best_of"):
        ImageGenParams(best_of=0)
    # codes alone cannot be judged: generate_codes refuses a best_of it would not apply
    cond = proc.encode_generation_prompt(prompts[0])
    with pytest.raises(ValueError, match="best_of is applied by generate_images"):
        generate_codes(model, [cond], [unconditional_ids(cond, proc.tokenizer.pad_id)],
                       ImageGenParams(n=1, best_of=2, **base), proc.tokenizer.pad_id)


def test_ask_judge_scores_yes_against_no(tiny):
    """The "ask" judge: log p(yes) - log p(no) to "Does the image show <prompt>?", per image and prompt; the
    question is the one the shapes world's judge turns train (DataStyle.match_share)."""
    from januspro.shapes.judge import JUDGE_QUESTION

    assert ASK_QUESTION == JUDGE_QUESTION
    model, proc = tiny
    images, prompts = _images(3, 32), ["a red circle", "two squares", "a blue triangle above a circle"]
    got = judge_scores(model, proc, images, prompts, "ask", batch_size=2)
    for im, p, g in zip(images, prompts, got.tolist(), strict=True):
        q = f"Does the image show {p}?"
        want = answer_logprobs(model, proc, [im], ["yes"], q) - answer_logprobs(model, proc, [im], ["no"], q)
        assert abs(g - float(want[0])) < 1e-3
    assert len(set(got.tolist())) == 3
    torch.testing.assert_close(judge_scores(model, proc, images, prompts, "describe"),
                               answer_logprobs(model, proc, images, prompts))
    with pytest.raises(ValueError, match="unknown judge"):
        judge_scores(model, proc, images, prompts, "vote")
    with pytest.raises(ValueError, match="3 questions for 2 images"):
        answer_logprobs(model, proc, images[:2], ["yes", "no"], ["a?", "b?", "c?"])


def test_best_of_with_the_ask_judge_keeps_each_groups_best_candidate(tiny):
    model, proc = tiny
    base = dict(cfg_weight=3.0, temperature=1.0, seed=5)
    best = generate_images(model, proc, "a red circle", ImageGenParams(n=1, best_of=4, judge="ask", **base))[0]
    pool = generate_images(model, proc, "a red circle", ImageGenParams(n=4, **base))[0]
    scores = judge_scores(model, proc, pool, ["a red circle"] * 4, "ask")
    assert len(set(scores.tolist())) == 4
    assert np.array_equal(np.asarray(best[0]), np.asarray(pool[int(scores.argmax())]))
    with pytest.raises(ValueError, match="judge must be one of"):
        ImageGenParams(judge="vote")
