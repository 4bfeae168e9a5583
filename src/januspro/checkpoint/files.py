"""Reading and writing weight files: safetensors (single or sharded) and pickle ``.bin`` (weights only)."""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..system import atomic_write


class CheckpointError(RuntimeError):
    """A model folder or weight file that cannot be loaded as asked."""


def _index_files(folder: Path, index_name: str) -> list[Path]:
    index_path = folder / index_name
    try:
        index = json.loads(index_path.read_text())
        weight_map = index["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"{index_path} is not a valid shard index: {e}") from None
    shards = sorted(set(weight_map.values()))
    missing = [s for s in shards if not (folder / s).is_file()]
    if missing:
        raise CheckpointError(f"{folder}: shard(s) named in {index_name} are missing: {', '.join(missing)}")
    return [folder / s for s in shards]


def weight_files(folder: Path) -> list[Path]:
    """The weight files of a model folder, preferring safetensors."""
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (folder / index_name).is_file():
            return _index_files(folder, index_name)
    st = sorted(folder.glob("*.safetensors"))
    if st:
        return st
    bins = sorted(folder.glob("pytorch_model*.bin"))
    if bins:
        return bins
    raise CheckpointError(f"{folder} holds no weights (looked for *.safetensors and pytorch_model*.bin)")


def read_weight_file(path: Path) -> dict[str, torch.Tensor]:
    """Load one weight file. Pickle files are opened with ``weights_only=True``: code in them is refused."""
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"cannot read {path}: {e}") from None
    try:
        sd = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"refusing to load {path}: it is not a plain weights file (it asks to run code or build "
            f"objects other than tensors). Details: {str(e).splitlines()[0]}") from None
    except (RuntimeError, OSError, EOFError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from None
    if not isinstance(sd, Mapping) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{path} does not hold a flat mapping of names to tensors")
    return dict(sd)


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    from tqdm.auto import tqdm

    files = weight_files(folder)
    out: dict[str, torch.Tensor] = {}
    for f in tqdm(files, desc="reading weights", unit="shard", disable=len(files) < 2):
        out.update(read_weight_file(f))
    return out


def write_safetensors(state_dict: Mapping[str, torch.Tensor], folder: Path, max_shard_bytes: int = 4 << 30) -> None:
    """Write ``model.safetensors`` (or numbered shards plus ``model.safetensors.index.json``) atomically per file."""
    folder.mkdir(parents=True, exist_ok=True)
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key in sorted(state_dict):
        t = state_dict[key].detach().contiguous()
        n = t.numel() * t.element_size()
        if shards[-1] and size + n > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = t.cpu()
        size += n
    # Tied weights share storage; safetensors refuses shared tensors, so write independent copies.
    seen: dict[int, str] = {}
    for shard in shards:
        for key, t in shard.items():
            ptr = t.untyped_storage().data_ptr()
            if ptr in seen:
                shard[key] = t.clone()
            seen[ptr] = key
    if len(shards) == 1:
        _atomic_save(shards[0], folder / "model.safetensors")
        return
    weight_map: dict[str, str] = {}
    total = 0
    for i, shard in enumerate(shards, 1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        _atomic_save(shard, folder / name)
        for key, t in shard.items():
            weight_map[key] = name
            total += t.numel() * t.element_size()
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path) -> None:
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
