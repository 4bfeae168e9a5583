"""Best-of-K text-to-image by the model's own understanding path.

Janus-Pro reads images as well as it draws them, so the same model can judge its own drafts. Each candidate
image is shown to the understanding path and scored by one of two judges (``JUDGES``):

* ``describe``: the question "Describe the image." and the log-probability that the answer is the prompt
  itself (teacher forced, the closing end-of-sentence token included, so a picture with more in it than the
  prompt says scores lower);
* ``ask``: the question "Does the image show <prompt>?" and log p("yes") - log p("no") (each answer with its
  end-of-sentence token). A model trained on such questions (the shapes world's ``DataStyle.match_share``)
  checks exactly what the prompt asks for.

``ImageGenParams.best_of = K`` draws K candidates for every image asked for and keeps the best; K = 1 is plain
sampling.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from ..models.janus import JanusModel
from ..models.llm import attention_mask, positions_from_padding
from ..processing.chat import IMAGE_TAG
from ..processing.processor import EncodedChat, JanusProcessor

DESCRIBE_QUESTION = "Describe the image."
ASK_QUESTION = "Does the image show {}?"  # the "ask" judge's question; {} is the prompt
JUDGES = ("describe", "ask")


@torch.inference_mode()
def answer_logprobs(model: JanusModel, processor: JanusProcessor, images: Sequence[Image.Image],
                    answers: Sequence[str], question: str | Sequence[str] = DESCRIBE_QUESTION, batch_size: int = 16
                    ) -> torch.Tensor:
    """log p(answer | image, question) for each (image, answer) pair [N], float32. ``question``: one for every
    pair, or one per pair.

    The conversation is the one the model is trained on: one user turn with the image and the question, the
    assistant's turn holding the answer and its end-of-sentence token; the answer's tokens are scored."""
    if len(images) != len(answers):
        raise ValueError(f"{len(images)} images for {len(answers)} answers")
    questions = [question] * len(images) if isinstance(question, str) else list(question)
    if len(questions) != len(images):
        raise ValueError(f"{len(questions)} questions for {len(images)} images")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    tok = processor.tokenizer
    sep2 = processor.template.sep2
    device = model.lm_head.weight.device
    dtype = model.lm_head.weight.dtype
    scores: list[torch.Tensor] = []
    for start in range(0, len(images), batch_size):
        chats, lengths = [], []
        stop = start + batch_size
        for im, ans, q in zip(images[start:stop], answers[start:stop], questions[start:stop], strict=True):
            chat = processor.encode_chat([{"role": "user", "content": f"{IMAGE_TAG}\n{q}",
                                           "images": [im]}])
            target = tok.encode(f" {ans.strip()}{sep2}", add_bos=False)
            if len(chat.input_ids) + len(target) > model.cfg.llm.max_position_embeddings:
                raise ValueError(f"judging an image with a {len(target)}-token answer takes "
                                 f"{len(chat.input_ids) + len(target)} tokens; the model's context is "
                                 f"{model.cfg.llm.max_position_embeddings}")
            chats.append(EncodedChat(chat.prompt, chat.input_ids + target, chat.pixel_values))
            lengths.append(len(target))
        batch = processor.batch(chats).to(device, dtype)  # left-padded, images in reading order
        ids, pad = batch.input_ids, batch.attention_mask.bool()
        t = ids.shape[1]
        emb = model.embed_inputs(ids, batch.pixel_values, tok.image_id)
        mask = None if bool(pad.all()) else attention_mask(pad, torch.arange(t, device=device))
        hidden = model(emb, positions_from_padding(pad), mask)  # [B, T, H]
        for r, n in enumerate(lengths):
            # left padding puts every answer at the end of its row: outputs t-n-1 .. t-2 predict it
            logits = model.text_logits(hidden[r, t - n - 1:t - 1]).float()
            scores.append(torch.log_softmax(logits, -1).gather(-1, ids[r, t - n:, None]).sum())
    return torch.stack(scores).cpu()


def judge_scores(model: JanusModel, processor: JanusProcessor, images: Sequence[Image.Image],
                 prompts: Sequence[str], judge: str = "describe", batch_size: int = 16) -> torch.Tensor:
    """How well each image shows its prompt by the model's own judgement [N] (higher is better); ``judge`` is
    one of ``JUDGES`` (see the module's doc)."""
    if judge == "describe":
        return answer_logprobs(model, processor, images, prompts, DESCRIBE_QUESTION, batch_size)
    if judge == "ask":
        questions = [ASK_QUESTION.format(p.strip()) for p in prompts]
        yes = answer_logprobs(model, processor, images, ["yes"] * len(images), questions, batch_size)
        return yes - answer_logprobs(model, processor, images, ["no"] * len(images), questions, batch_size)
    raise ValueError(f"unknown judge {judge!r}; choose one of {JUDGES}")


def pick_best(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the best of each consecutive group of ``k`` scores (the first one on ties)."""
    if scores.numel() % k:
        raise ValueError(f"{scores.numel()} scores do not split into groups of {k}")
    groups = scores.view(-1, k)
    return groups.argmax(-1) + torch.arange(groups.shape[0]) * k


__all__ = ["ASK_QUESTION", "DESCRIBE_QUESTION", "JUDGES", "answer_logprobs", "judge_scores", "pick_best"]
