"""Training data: the three JSONL formats read into token sequences with per-position targets.

A :class:`Sample` is one sequence for the trunk. Position ``t`` holds an input (a text token, an
understanding-image slot, or a generation image code) and at most one target for the output at ``t``:
the next text token (scored by ``lm_head``) or the next image code (scored by ``gen_head``).

* understanding: the chat rendered with the model's template; targets on the assistant answers (and the
  end-of-sentence token that closes each answer) only;
* text-to-image: ``BOS prompt... <begin_of_image> c1 ... cN``; targets c1..cN on the image codes; with
  probability ``prompt_dropout`` the prompt is replaced by the unconditional prompt (pad tokens between
  BOS and <begin_of_image>, exactly what classifier-free guidance feeds at inference);
* text: ``BOS text EOS``; targets on every token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from ..processing.chat import get_template, normalize_messages
from ..processing.image import (
    fit_generation,
    load_image,
    normalise_generation,
    preprocess_understanding,
    to_uint8,
)
from ..processing.tokenizer import JanusTokenizer

Kind = Literal["und", "t2i", "text"]
IGNORE = -100
TARGET_NONE, TARGET_TEXT, TARGET_IMAGE = 0, 1, 2


class DataError(ValueError):
    """A training file or record that cannot be used."""


@dataclass
class Sample:
    kind: Kind
    ids: list[int]  # input token ids; generation-code positions hold the pad id
    gen_codes: list[int]  # image code fed at each position, -1 where the input is a token
    targets: list[int]  # target id for the output at each position, IGNORE where none
    target_kind: list[int]  # TARGET_NONE / TARGET_TEXT / TARGET_IMAGE per position
    images: list[torch.Tensor] = field(default_factory=list)  # understanding images [3, S, S], in order

    def __len__(self) -> int:
        return len(self.ids)


def read_jsonl(path: str | Path) -> list[dict]:
    """A training JSONL file's records (errors as :class:`DataError`)."""
    from ..jsonl import read_jsonl as _read

    try:
        return _read(path, what="data file")
    except (FileNotFoundError, ValueError) as e:
        raise DataError(str(e)) from None


class SampleBuilder:
    """Turns records of the three formats into :class:`Sample`s for one model and tokenizer."""

    def __init__(self, tokenizer: JanusTokenizer, template: str, image_size: int, num_image_tokens: int,
                 image_mean: tuple[float, ...], image_std: tuple[float, ...], system_prompt: str = "") -> None:
        self.tok = tokenizer
        self.template = get_template(template)
        self.image_size = image_size
        self.num_image_tokens = num_image_tokens
        self.mean, self.std = image_mean, image_std
        self.system_prompt = system_prompt

    # ------------------------------------------------------------------ understanding
    def und(self, record: dict, root: Path) -> Sample:
        """Segments as the template renders them; the text after each ``<|Assistant|>:`` (with the
        end-of-sentence token that closes it) is the target, everything else is input."""
        if "messages" not in record:
            raise DataError("an understanding record needs 'messages'")
        system, turns, _ = normalize_messages(record["messages"], check_images=False)
        system = self.system_prompt if system is None else system
        tpl, tok = self.template, self.tok
        ids: list[int] = [tok.bos_id]
        targets: list[int] = [IGNORE]
        kinds: list[int] = [TARGET_NONE]
        pending = system + tpl.sep if system else ""
        learned = False
        for role, content in turns:
            content = content.strip()
            if role == "user":
                pending += f"{tpl.user}: {content}{tpl.sep}"
                continue
            pending += f"{tpl.assistant}:"
            self._append(ids, targets, kinds, tok.encode(pending, add_bos=False), learn=False)
            pending = ""
            self._append(ids, targets, kinds, tok.encode(f" {content}{tpl.sep2}", add_bos=False), learn=True)
            learned = True
        if not learned:
            raise DataError("an understanding conversation needs at least one assistant answer")
        ids, targets, kinds, n_tags = self._expand_images(ids, targets, kinds)
        images = [root / p for p in record.get("images", [])]
        if n_tags != len(images):
            raise DataError(f"conversation has {n_tags} image tags but {len(images)} images")
        pixels = [preprocess_understanding(load_image(p), self.image_size, self.mean, self.std) for p in images]
        return Sample("und", ids, [-1] * len(ids), targets, kinds, pixels)

    def _append(self, ids: list[int], targets: list[int], kinds: list[int], new: list[int], learn: bool) -> None:
        """Append tokens; when ``learn``, the output before each new token predicts it."""
        for t in new:
            if learn:
                targets[-1] = t
                kinds[-1] = TARGET_TEXT
            ids.append(t)
            targets.append(IGNORE)
            kinds.append(TARGET_NONE)

    def _expand_images(self, ids: list[int], targets: list[int], kinds: list[int]
                       ) -> tuple[list[int], list[int], list[int], int]:
        tok = self.tok
        out_i, out_t, out_k = [], [], []
        n = 0
        for t, y, k in zip(ids, targets, kinds, strict=True):
            if t == tok.image_id:
                n += 1
                block = [tok.image_start_id] + [tok.image_id] * self.num_image_tokens + [tok.image_end_id]
                out_i += block
                out_t += [IGNORE] * (len(block) - 1) + [y]
                out_k += [TARGET_NONE] * (len(block) - 1) + [k]
            else:
                out_i.append(t)
                out_t.append(y)
                out_k.append(k)
        return out_i, out_t, out_k, n

    # ------------------------------------------------------------------ text-to-image
    def t2i(self, prompt: str, codes: list[int], drop_prompt: bool, plan: str | None = None) -> Sample:
        """The prompt, then ``<begin_of_image>`` and the image codes (the targets). With a ``plan``, the
        assistant first writes the plan (text targets, ``<begin_of_image>`` closing it); a dropped prompt pads
        the plan too, as the unconditional row of guidance pads everything between BOS and ``<begin_of_image>``."""
        from ..processing.chat import generation_prompt

        tok = self.tok
        head = tok.encode(generation_prompt(prompt, self.template.name))
        n_prompt = len(head)
        if plan:
            head += tok.encode(" " + plan.strip(), add_bos=False)
        head += [tok.image_start_id]
        if drop_prompt:
            head = [head[0]] + [tok.pad_id] * (len(head) - 2) + [head[-1]]
        n = len(codes)
        ids = head + [tok.pad_id] * n
        gen = [-1] * len(head) + list(codes)
        targets = [IGNORE] * len(ids)
        kinds = [TARGET_NONE] * len(ids)
        if plan and not drop_prompt:  # the output before each plan token (and <begin_of_image>) predicts it
            for pos in range(n_prompt - 1, len(head) - 1):
                targets[pos] = head[pos + 1]
                kinds[pos] = TARGET_TEXT
        for j in range(n):  # output at <begin_of_image> predicts c1, at c_j predicts c_{j+1}
            pos = len(head) - 1 + j
            targets[pos] = codes[j]
            kinds[pos] = TARGET_IMAGE
        return Sample("t2i", ids, gen, targets, kinds)

    # ------------------------------------------------------------------ text
    def text(self, text: str, max_len: int) -> Sample:
        ids = [self.tok.bos_id] + self.tok.encode(text, add_bos=False) + [self.tok.eos_id]
        ids = ids[:max_len]
        targets = ids[1:] + [IGNORE]
        kinds = [TARGET_TEXT] * (len(ids) - 1) + [TARGET_NONE]
        return Sample("text", ids, [-1] * len(ids), targets, kinds)


def load_images_uint8(rows: list[dict], root: Path, fit: Callable[[Image.Image], Image.Image],
                      size: int, progress: bool = False) -> torch.Tensor:
    """The images of ``rows`` (``image`` paths under ``root``) fitted to ``size`` x ``size`` by ``fit``, as one
    uint8 tensor [N, 3, size, size] filled in place: a whole dataset held in RAM costs N * 3 * size^2 bytes,
    with no float copy on the way (200,000 64x64 images: 2.5 GB rather than a 10 GB float stack plus the
    10 GB list it is stacked from). ``progress`` shows a bar (200,000 images take ~2 minutes)."""
    from tqdm.auto import tqdm

    out = torch.empty(len(rows), 3, size, size, dtype=torch.uint8)
    for i, r in enumerate(tqdm(rows, desc="loading images", unit="image", disable=not progress, leave=False)):
        img = fit(load_image(root / r["image"]))
        if img.size != (size, size):
            raise DataError(f"{root / r['image']}: fitted to {img.size}, expected {size}x{size}")
        out[i] = to_uint8(img)
    return out


def load_generation_images(rows: list[dict], root: Path, size: int) -> torch.Tensor:
    """[N, 3, size, size] images in [-1, 1] for text-to-image records (to encode into VQ codes)."""
    return normalise_generation(load_images_uint8(rows, root, lambda im: fit_generation(im, size), size))


@torch.no_grad()
def encode_codes(vq: torch.nn.Module, images: torch.Tensor, batch: int = 64) -> np.ndarray:
    """VQ codes [N, grid*grid] of generation images (run once; cached by the caller)."""
    out = [vq.encode(images[i:i + batch]).cpu().numpy() for i in range(0, len(images), batch)]
    return np.concatenate(out).astype(np.int32)
