"""Training: data readers and packing, stages as data, one trainer loop."""

from .config import RunConfig, RunConfigError, load_run_config
from .trainer import Trainer, TrainingError, train

__all__ = ["RunConfig", "RunConfigError", "load_run_config", "Trainer", "TrainingError", "train"]
