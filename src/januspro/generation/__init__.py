"""Generation functions outside the model: sampling, prefill + static-cache decode, chat and text-to-image."""

from .image import ImageGenParams, decode_codes, generate_codes, generate_images, unconditional_ids
from .rerank import answer_logprobs
from .sampling import SamplingParams, sample
from .text import TextGenParams, chat, generate_text, stream_chat

__all__ = ["ImageGenParams", "decode_codes", "generate_codes", "generate_images", "unconditional_ids",
           "answer_logprobs",
           "SamplingParams", "sample", "TextGenParams", "chat", "generate_text", "stream_chat"]
