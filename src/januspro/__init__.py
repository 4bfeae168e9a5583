"""januspro: Janus-Pro in PyTorch -- load the released checkpoints, run, train, serve and evaluate."""

from .checkpoint import CheckpointError, convert, load_model, save_model
from .config import JanusConfig, load_config, preset
from .models import JanusModel
from .processing import JanusProcessor, JanusTokenizer

__version__ = "0.1.0"

__all__ = ["CheckpointError", "convert", "load_model", "save_model", "JanusConfig", "load_config", "preset",
           "JanusModel", "JanusProcessor", "JanusTokenizer", "__version__"]
