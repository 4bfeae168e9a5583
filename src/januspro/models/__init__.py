"""Architecture only: no sampling, no file I/O, no parallelism."""

from .janus import JanusModel
from .kv_cache import KVCache
from .llm import DecoderLM, attention_mask, positions_from_padding

__all__ = ["JanusModel", "KVCache", "DecoderLM", "attention_mask", "positions_from_padding"]
