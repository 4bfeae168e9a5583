"""The Janus processor: conversations and prompts to model inputs, and batching with left padding."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import JanusConfig
from .chat import IMAGE_TAG, ConversationError, format_conversation, generation_prompt, get_template
from .image import ImageError, load_image, preprocess_understanding
from .tokenizer import JanusTokenizer


@dataclass
class EncodedChat:
    """One conversation ready for the model."""

    prompt: str  # the rendered prompt text (with <image_placeholder> tags)
    input_ids: list[int]  # with each image expanded to <begin_of_image> + N image slots + <end_of_image>
    pixel_values: torch.Tensor  # [n_images, 3, S, S]


@dataclass
class ChatBatch:
    """Several conversations, left-padded."""

    input_ids: torch.Tensor  # [B, T]
    attention_mask: torch.Tensor  # [B, T] 1 for real tokens
    pixel_values: torch.Tensor  # [N, 3, S, S], all images of all rows in reading order
    prompts: list[str] = field(default_factory=list)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> ChatBatch:
        pv = self.pixel_values.to(device=device, dtype=dtype or self.pixel_values.dtype)
        return ChatBatch(self.input_ids.to(device), self.attention_mask.to(device), pv, self.prompts)


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-id rows of different lengths -> ids [B, T] padded on the left with ``pad_id``, and a bool
    mask [B, T] that is True on real tokens."""
    t = max(len(r) for r in rows)
    ids = torch.full((len(rows), t), pad_id, dtype=torch.long)
    mask = torch.zeros(len(rows), t, dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, t - len(r):] = torch.tensor(r, dtype=torch.long)
        mask[i, t - len(r):] = True
    return ids, mask


class JanusProcessor:
    def __init__(self, tokenizer: JanusTokenizer, cfg: JanusConfig) -> None:
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.template = get_template(cfg.chat_template)
        if tokenizer.vocab_size > cfg.llm.vocab_size:
            raise ValueError(f"the tokenizer has {tokenizer.vocab_size} tokens but the model only "
                             f"{cfg.llm.vocab_size} embeddings")

    @classmethod
    def from_dir(cls, folder: str | Path, cfg: JanusConfig) -> JanusProcessor:
        return cls(JanusTokenizer.from_dir(folder), cfg)

    @property
    def num_image_tokens(self) -> int:
        return self.cfg.vision.num_tokens

    # ---------------------------------------------------------------- understanding
    def preprocess_images(self, images: list[Any]) -> torch.Tensor:
        v = self.cfg.vision
        size = v.image_size
        if not images:
            return torch.zeros(0, 3, size, size)
        tensors = [preprocess_understanding(load_image(im), size, v.image_mean, v.image_std) for im in images]
        return torch.stack(tensors)  # [N, 3, S, S]

    def expand_image_tags(self, ids: list[int]) -> list[int]:
        """Replace each image tag id with <begin_of_image> + N image slots + <end_of_image>."""
        tok = self.tokenizer
        out: list[int] = []
        for t in ids:
            if t == tok.image_id:
                out += [tok.image_start_id] + [tok.image_id] * self.num_image_tokens + [tok.image_end_id]
            else:
                out.append(t)
        return out

    def encode_chat(self, messages: list[dict[str, Any]], system_prompt: str | None = None,
                    add_generation_prompt: bool = True) -> EncodedChat:
        """Render, tokenise and preprocess one conversation (see :func:`chat.normalize_messages`).
        ``system_prompt`` None: the conversation's own system message, else the model's default."""
        if system_prompt is None and not (messages and isinstance(messages[0], dict)
                                          and messages[0].get("role") == "system"):
            system_prompt = self.cfg.system_prompt
        prompt, images = format_conversation(messages, self.template.name, system_prompt, add_generation_prompt)
        ids = self.tokenizer.encode(prompt)
        n_tags = sum(1 for t in ids if t == self.tokenizer.image_id)
        if n_tags != len(images):
            raise ConversationError(f"the prompt holds {n_tags} {IMAGE_TAG} tag(s) but {len(images)} image(s) were given")
        ids = self.expand_image_tags(ids)
        if len(ids) > self.cfg.llm.max_position_embeddings:
            raise ConversationError(f"the conversation is {len(ids)} tokens long; the model's context is "
                                    f"{self.cfg.llm.max_position_embeddings}")
        return EncodedChat(prompt, ids, self.preprocess_images(images))

    def batch(self, items: list[EncodedChat]) -> ChatBatch:
        """Left-pad several encoded conversations into one batch."""
        if not items:
            raise ValueError("nothing to batch")
        ids, mask = left_pad([x.input_ids for x in items], self.tokenizer.pad_id)
        pixels = torch.cat([x.pixel_values for x in items])
        return ChatBatch(ids, mask.long(), pixels, [x.prompt for x in items])

    def __call__(self, conversations: list[list[dict[str, Any]]], system_prompt: str | None = None) -> ChatBatch:
        return self.batch([self.encode_chat(c, system_prompt) for c in conversations])

    # ---------------------------------------------------------------- generation
    def encode_generation_prompt(self, prompt: str) -> list[int]:
        """Token ids of a text-to-image prompt, ending with <begin_of_image>."""
        if not isinstance(prompt, str):
            raise ConversationError("the prompt must be a string")
        ids = self.tokenizer.encode(generation_prompt(prompt, self.template.name)) + [self.tokenizer.image_start_id]
        if len(ids) + self.cfg.vq.num_tokens > self.cfg.llm.max_position_embeddings:
            raise ConversationError(f"the prompt is {len(ids)} tokens; with {self.cfg.vq.num_tokens} image codes it "
                                    f"exceeds the model's context of {self.cfg.llm.max_position_embeddings}")
        return ids

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens)


__all__ = ["JanusProcessor", "EncodedChat", "ChatBatch", "ImageError", "ConversationError"]
