"""OpenAI-compatible HTTP serving with request batching, and a web page (extra ``[serve]``)."""

from .engine import ChatRequest, Engine, ImageRequest, QueueFull

__all__ = ["ChatRequest", "Engine", "ImageRequest", "QueueFull", "create_app"]


def create_app(*args, **kwargs):  # imported lazily: FastAPI is an optional dependency
    from .app import create_app as make

    return make(*args, **kwargs)
