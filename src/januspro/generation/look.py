"""Look, then answer: before a conversation's question, the model answers a fixed question about the image (the
shapes world's "List the objects.", answered with each object's colour, shape and grid cell) and then answers the
user's question with its own inventory in the chat.

A model trained with look turns (the recipe's ``--sft-look-share``) learns to write a scene's inventory from its
image; listing objects one by one binds each colour to its shape. Whether its answers then read the list depends
on its training: when every question after a list could as well be answered from the image, they did not; with
questions that only the list settles (``--sft-look-exist-share``: absent objects whose colour and shape the scene
shows on different objects, shapes-POPE's adversarial case) they do (artifacts/experiments/look/). On a model
never trained with look turns the inventory is whatever the model makes of the question.

The look turn takes the images of the conversation's first user turn; the rest of that turn follows as the next
user turn, as the training chats lay it out::

    user: <image>\\nList the objects.     assistant: red circle 0 2, blue square 1 1
    user: Is there a red square?          assistant: no
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from ..models.janus import JanusModel
from ..processing.chat import IMAGE_TAG, normalize_messages
from ..processing.processor import ConversationError, JanusProcessor

Conversation = list[dict[str, Any]]
LOOK_MAX_TOKENS = 128  # the look answer's token limit (a shapes inventory of 9 objects is ~60 tokens)


def split_for_look(conversation: Conversation, question: str) -> tuple[Conversation, Conversation] | None:
    """``(look, rest)``: the look turn's conversation (the system message if any, then a user turn with the
    images of the first user turn and ``question``) and the turns that follow its answer (the first user turn
    without its images, then the others). None when the first user turn shows no image (nothing to look at)."""
    if not question.strip():
        raise ValueError("the look question must not be empty")
    system, turns, images = normalize_messages(conversation)
    if not turns or IMAGE_TAG not in turns[0][1]:
        return None
    head = [{"role": "system", "content": system}] if system is not None else []
    first = turns[0][1]
    n = first.count(IMAGE_TAG)
    text = first.replace(IMAGE_TAG + "\n", "").replace(IMAGE_TAG, "").strip()
    if not text:
        raise ConversationError("look: the first user turn holds only images; ask a question with them")
    look = head + [{"role": "user", "content": (IMAGE_TAG + "\n") * n + question, "images": list(images[:n])}]
    rest: Conversation = [{"role": "user", "content": text, "images": []}]
    used = n
    for role, turn_text in turns[1:]:
        k = turn_text.count(IMAGE_TAG)
        rest.append({"role": role, "content": turn_text, "images": list(images[used:used + k])})
        used += k
    return look, rest


def join_look(look: Conversation, rest: Conversation, answer: str) -> Conversation:
    """The conversation :func:`split_for_look` split, with ``answer`` as the look turn's answer."""
    return look + [{"role": "assistant", "content": answer}] + rest


def look_first(model: JanusModel, processor: JanusProcessor, conversations: Sequence[Conversation],
               question: str, params: Any = None, system_prompt: str | None = None,
               max_new_tokens: int = LOOK_MAX_TOKENS) -> tuple[list[Conversation], list[str | None]]:
    """The conversations with a look turn put first: ``question`` about the first user turn's images, answered
    by the model (one batch, with ``params``' sampling, up to ``max_new_tokens``), then the rest of the
    conversation.
    Returns them and each one's look answer (None where the first user turn shows no image: left as it is)."""
    from .text import TextGenParams, generate_text

    params = dataclasses.replace(params or TextGenParams(), look="", max_new_tokens=max_new_tokens)
    split = [split_for_look(list(c), question) for c in conversations]
    todo = [i for i, s in enumerate(split) if s is not None]
    answers: list[str | None] = [None] * len(conversations)
    if todo:
        seen = generate_text(model, processor, [split[i][0] for i in todo], params, system_prompt)  # type: ignore[index]
        for i, a in zip(todo, seen, strict=True):
            answers[i] = a
    out = []
    for c, s, a in zip(conversations, split, answers, strict=True):
        out.append(list(c) if s is None else join_look(s[0], s[1], a))
    return out, answers
