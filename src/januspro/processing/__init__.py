"""Tokenizer, chat templates, image pre/post-processing and batching."""

from .chat import (
                   DEFAULT_SYSTEM_PROMPT,
                   IMAGE_TAG,
                   TEMPLATES,
                   ChatTemplate,
                   ConversationError,
                   format_conversation,
                   generation_prompt,
)
from .image import ImageError, load_image, preprocess_generation, preprocess_understanding, to_pil
from .processor import ChatBatch, EncodedChat, JanusProcessor
from .tokenizer import JanusTokenizer, SpecialTokens, TokenizerError

__all__ = [
    "DEFAULT_SYSTEM_PROMPT", "IMAGE_TAG", "TEMPLATES", "ChatTemplate", "ConversationError", "format_conversation",
    "generation_prompt", "ImageError", "load_image", "preprocess_generation", "preprocess_understanding", "to_pil",
    "ChatBatch", "EncodedChat", "JanusProcessor", "JanusTokenizer", "SpecialTokens", "TokenizerError",
]
