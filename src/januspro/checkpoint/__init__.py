"""Load and save Janus models in our layout, DeepSeek's official layout and transformers' layout."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from ..config import (
    ChatTemplateName,
    ConfigError,
    JanusConfig,
    load_config,
    to_official_dict,
    to_transformers_dict,
)
from ..models.janus import JanusModel
from .files import CheckpointError, read_weights, write_safetensors
from .keys import FORMATS, Format, export_state_dict, import_state_dict

__all__ = ["CheckpointError", "FORMATS", "load_model", "load_processor", "save_model", "convert", "resolve_model_path",
           "state_dict_from", "TOKENIZER_FILES"]

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "processor_config.json",
                   "preprocessor_config.json", "chat_template.json", "generation_config.json")

DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
          "fp16": torch.float16, "float16": torch.float16}


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[dtype.lower()]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of fp32, bf16, fp16") from None


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


# The model shipped inside the package (trained by ``januspro train recipe shapes``): every command's default.
DEFAULT_MODEL = "janus-pro-shapes"
SHIPPED_MODELS = {DEFAULT_MODEL: Path(__file__).resolve().parent.parent / "assets" / DEFAULT_MODEL}


def resolve_model_path(source: str | os.PathLike[str]) -> Path:
    """A local model folder for ``source``: the folder itself, a shipped model's name (``janus-pro-shapes``),
    or a hub id from the local cache or the hub."""
    p = Path(source).expanduser()
    if str(source) in SHIPPED_MODELS and not p.exists():
        shipped = SHIPPED_MODELS[str(source)]
        if not (shipped / "config.json").is_file():
            raise CheckpointError(f"the shipped model {source!r} is missing from this installation ({shipped})")
        return shipped
    if p.exists():
        if not p.is_dir():
            raise CheckpointError(f"{p} is a file; give the model folder that holds config.json and the weights")
        return p
    s = str(source)
    if not _HUB_ID.match(s):
        raise CheckpointError(f"no model folder at {p}")
    try:
        from huggingface_hub import snapshot_download

        patterns = ["*.json", "*.safetensors", "*.bin", "*.model", "*.txt"]
        try:
            return Path(snapshot_download(s, allow_patterns=patterns, local_files_only=True))
        except Exception:
            if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
                raise
            return Path(snapshot_download(s, allow_patterns=patterns))
    except Exception as e:
        raise CheckpointError(
            f"{s!r} is not a local folder, and it is not in the hub cache or could not be downloaded "
            f"(offline? wrong id?). Download it where there is network and pass the folder. ({type(e).__name__})"
        ) from None


def _guess_template(folder: Path) -> ChatTemplateName | None:
    name = folder.resolve().name.lower()
    if "janus-1.3b" in name or ("1.3b" in name and "pro" not in name):
        return "janus-1.3b"
    return None


def state_dict_from(folder: Path, cfg: JanusConfig, fmt: Format, model: JanusModel | None = None
                    ) -> dict[str, torch.Tensor]:
    """Read a folder's weights and rename them into our layout, with a strict check against ``cfg``
    (against ``model``'s own state dict when the caller already built it, e.g. on the meta device)."""
    theirs = read_weights(folder)
    res = import_state_dict(theirs, fmt, cfg)
    if model is None:
        with torch.device("meta"):
            model = JanusModel(cfg)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    sd = res.state_dict
    if cfg.llm.tie_word_embeddings and "lm_head.weight" not in sd and "llm.embed_tokens.weight" in sd:
        sd["lm_head.weight"] = sd["llm.embed_tokens.weight"]
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(res.unmapped + [k for k in sd if k not in expected])
    misshaped = sorted(f"{k}: checkpoint {tuple(sd[k].shape)} vs model {expected[k]}"
                       for k in sd if k in expected and tuple(sd[k].shape) != expected[k])
    if missing or unexpected or misshaped:
        lines = [f"{folder} does not match its config ({fmt} layout):"]
        for title, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshaped)):
            if items:
                shown = items[:20] + ([f"... and {len(items) - 20} more"] if len(items) > 20 else [])
                lines.append(f"  {title} ({len(items)}): " + "; ".join(shown))
        raise CheckpointError("\n".join(lines))
    return sd


def load_model(source: str | os.PathLike[str], dtype: str | torch.dtype | None = None,
               device: str | torch.device = "cpu", chat_template: ChatTemplateName | None = None) -> JanusModel:
    """Load a Janus model from a folder (ours, official or transformers layout) or a hub id.

    The model is built on the meta device and the weights are assigned strictly: every parameter must come
    from the checkpoint, and every checkpoint tensor must be used or be on the format's drop list.
    ``dtype`` None keeps the stored dtype.
    """
    folder = resolve_model_path(source)
    try:
        cfg, fmt = load_config(folder, chat_template or _guess_template(folder))
    except ConfigError as e:
        raise CheckpointError(str(e)) from None
    with torch.device("meta"):
        model = JanusModel(cfg)
    sd = state_dict_from(folder, cfg, fmt, model)
    dt = parse_dtype(dtype)
    if dt is not None:
        sd = {k: v.to(dt) if v.is_floating_point() else v for k, v in sd.items()}
    model.load_state_dict(sd, strict=True, assign=True)
    if cfg.llm.tie_word_embeddings:
        model.lm_head.weight = model.llm.embed_tokens.weight
    model.source_path = folder  # type: ignore[attr-defined]
    return model.to(device).eval()


def load_processor(model: JanusModel, tokenizer_dir: str | os.PathLike[str] | None = None):  # -> JanusProcessor
    """The processor for a loaded model, from its own folder's tokenizer files unless another folder is given."""
    from ..processing.processor import JanusProcessor

    folder = Path(tokenizer_dir) if tokenizer_dir is not None else getattr(model, "source_path", None)
    if folder is None:
        raise CheckpointError("this model was not loaded from a folder: give tokenizer_dir")
    return JanusProcessor.from_dir(folder, model.cfg)


def _special_ids(tokenizer_dir: Path | None) -> dict[str, int]:
    if tokenizer_dir is None or not (tokenizer_dir / "tokenizer.json").is_file():
        return {}
    from ..processing.tokenizer import JanusTokenizer

    tok = JanusTokenizer.from_dir(tokenizer_dir)
    out = {"bos_token_id": tok.bos_id, "eos_token_id": tok.eos_id, "pad_token_id": tok.pad_id}
    out["image_token_id"] = tok.image_id
    return out


def save_model(model: JanusModel, folder: str | os.PathLike[str], fmt: Format = "ours",
               tokenizer_dir: str | os.PathLike[str] | None = None, dtype: str | torch.dtype | None = None,
               image_token_id: int | None = None, max_shard_bytes: int = 4 << 30) -> Path:
    """Write ``model`` as safetensors shards + config.json (+ tokenizer files copied from ``tokenizer_dir``)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    cfg = model.cfg
    dt = parse_dtype(dtype)
    sd = {k: (v.to(dt) if dt is not None and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    if cfg.llm.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    tdir = Path(tokenizer_dir) if tokenizer_dir is not None else None
    config: dict[str, Any]
    if fmt == "ours":
        config = cfg.to_dict()
    elif fmt == "official":
        config = to_official_dict(cfg)
    else:
        sid = _special_ids(tdir)
        itid = image_token_id if image_token_id is not None else sid.get("image_token_id")
        if itid is None:
            raise CheckpointError("the transformers layout records the image token id: give a tokenizer folder "
                                  "or image_token_id")
        config = to_transformers_dict(cfg, itid, sid)
    theirs = export_state_dict(sd, fmt, cfg)
    if fmt == "official":
        # DeepSeek's VQ registers this usage counter as a persistent buffer; write it so their loader is clean.
        theirs["gen_vision_model.quantize.codebook_used"] = torch.zeros(65536)
    write_safetensors(theirs, out, max_shard_bytes)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    if tdir is not None:
        for name in TOKENIZER_FILES:
            src = tdir / name
            if src.is_file() and src.resolve() != (out / name).resolve():
                shutil.copyfile(src, out / name)
    return out


def convert(src: str | os.PathLike[str], dst: str | os.PathLike[str], to: Format = "ours",
            dtype: str | torch.dtype | None = None, max_shard_bytes: int = 4 << 30) -> Path:
    """Convert a model folder (any supported layout) into layout ``to``; tokenizer files travel along."""
    model = load_model(src, dtype=dtype)
    return save_model(model, dst, to, tokenizer_dir=model.source_path,  # type: ignore[attr-defined]
                      max_shard_bytes=max_shard_bytes)
