"""Tokenizer wrapper over a ``tokenizer.json`` (the ``tokenizers`` library), with special tokens by name.

Every special id is looked up once, by token text, in the tokenizer's own vocabulary: no id is hard-coded,
because released checkpoints differ (e.g. the pad id).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer


class TokenizerError(ValueError):
    """A tokenizer file that lacks what Janus needs."""


@dataclass(frozen=True)
class SpecialTokens:
    """Token texts that the Janus processor needs (the names the released tokenizers use)."""

    bos: str = "<｜begin▁of▁sentence｜>"
    eos: str = "<｜end▁of▁sentence｜>"
    pad: str = "<｜▁pad▁｜>"
    image: str = "<image_placeholder>"
    image_start: str = "<begin_of_image>"
    image_end: str = "<end_of_image>"


def _token_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


class JanusTokenizer:
    """Text <-> ids with the Janus special tokens resolved to ids."""

    def __init__(self, tokenizer: Tokenizer, special: SpecialTokens | None = None) -> None:
        self.tok = tokenizer
        self.special = special or SpecialTokens()
        ids = {}
        for field in ("bos", "eos", "pad", "image", "image_start", "image_end"):
            text = getattr(self.special, field)
            tid = tokenizer.token_to_id(text)
            if tid is None:
                raise TokenizerError(f"the tokenizer has no {field} token {text!r}")
            ids[field] = tid
        self.bos_id: int = ids["bos"]
        self.eos_id: int = ids["eos"]
        self.pad_id: int = ids["pad"]
        self.image_id: int = ids["image"]
        self.image_start_id: int = ids["image_start"]
        self.image_end_id: int = ids["image_end"]

    @classmethod
    def from_file(cls, path: str | Path, special: SpecialTokens | None = None) -> JanusTokenizer:
        try:
            return cls(Tokenizer.from_file(str(path)), special)
        except Exception as e:  # tokenizers raises plain Exception on a bad file
            if isinstance(e, TokenizerError):
                raise
            raise TokenizerError(f"cannot read tokenizer {path}: {e}") from None

    @classmethod
    def from_dir(cls, folder: str | Path) -> JanusTokenizer:
        """Load ``tokenizer.json``; bos/eos/pad names come from ``special_tokens_map.json`` or
        ``tokenizer_config.json`` when the folder has them."""
        folder = Path(folder)
        path = folder / "tokenizer.json"
        if not path.is_file():
            raise TokenizerError(f"no tokenizer.json in {folder}")
        names: dict[str, str] = {}
        for fname in ("tokenizer_config.json", "special_tokens_map.json"):
            f = folder / fname
            if f.is_file():
                try:
                    d = json.loads(f.read_text())
                except json.JSONDecodeError as e:
                    raise TokenizerError(f"{f} is not valid JSON: {e}") from None
                for key in ("bos", "eos", "pad"):
                    text = _token_text(d.get(f"{key}_token"))
                    if text:
                        names[key] = text
        return cls.from_file(path, SpecialTokens(**names) if names else None)

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str, add_bos: bool = True) -> list[int]:
        ids = self.tok.encode(text, add_special_tokens=False).ids
        return [self.bos_id, *ids] if add_bos else ids

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def token_to_id(self, text: str) -> int | None:
        return self.tok.token_to_id(text)

    def save(self, folder: str | Path) -> None:
        """Write tokenizer.json and a special_tokens_map.json naming bos/eos/pad."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.tok.save(str(folder / "tokenizer.json"))
        stm = {"bos_token": self.special.bos, "eos_token": self.special.eos, "pad_token": self.special.pad,
               "additional_special_tokens": [self.special.image, self.special.image_start, self.special.image_end]}
        (folder / "special_tokens_map.json").write_text(json.dumps(stm, indent=2, ensure_ascii=False) + "\n")
