"""Command line: ``januspro <command> ...``. Each command parses its arguments and calls one library function."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import __version__


def _cmd_convert(args: argparse.Namespace) -> int:
    from .checkpoint import convert

    out = convert(args.src, args.dst, to=args.to, dtype=args.dtype, max_shard_bytes=int(args.shard_gb * (1 << 30)))
    print(f"wrote {args.to} layout to {out}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .checkpoint import resolve_model_path
    from .config import load_config

    folder = resolve_model_path(args.model)
    cfg, fmt = load_config(folder)
    import torch

    from .models.janus import JanusModel

    with torch.device("meta"):
        n = JanusModel(cfg).num_parameters()
    info = {"folder": str(folder), "layout": fmt, "parameters": n, "config": cfg.to_dict()}
    print(json.dumps(info, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="januspro",
        description="Janus-Pro in PyTorch: load the released checkpoints, convert between layouts, and more.")
    p.add_argument("--version", action="version", version=f"januspro {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("convert", help="convert a model folder between layouts",
                       description="Convert a Janus model folder (our layout, DeepSeek's official layout or "
                                   "transformers' layout) into another layout: safetensors shards, config.json and "
                                   "the tokenizer files.")
    c.add_argument("src", help="source model folder or hub id (downloaded only when online)")
    c.add_argument("dst", help="output folder (created)")
    c.add_argument("--to", choices=["ours", "official", "transformers"], default="ours",
                   help="layout to write (default: ours)")
    c.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default=None,
                   help="cast floating-point weights (default: keep the stored dtype)")
    c.add_argument("--shard-gb", type=float, default=4.0, help="maximum shard size in GiB (default: 4)")
    c.set_defaults(func=_cmd_convert)

    i = sub.add_parser("info", help="print a model folder's layout, size and config",
                       description="Read a model folder's config.json (any supported layout) and print its layout, "
                                   "parameter count and the parsed config as JSON. Reads no weights.")
    i.add_argument("model", help="model folder or hub id")
    i.set_defaults(func=_cmd_info)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    from .checkpoint import CheckpointError
    from .config import ConfigError
    from .processing import ConversationError, ImageError, TokenizerError

    try:
        return int(args.func(args))
    except (CheckpointError, ConfigError, ConversationError, ImageError, TokenizerError, ValueError) as e:
        print(f"januspro {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
