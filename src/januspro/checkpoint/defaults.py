"""A model folder's default inference modes: whether the model plans before it draws and looks before it answers.

Some models are trained to answer in two steps of their own: janus-pro-shapes writes a drawing plan before an
image's codes (``generation/plan.py``) and lists a scene's objects before it answers about them
(``generation/look.py``). Which of those steps a model takes by default is a fact about the model, so it is
written beside its weights, in the ``"januspro"`` section of ``generation_config.json`` (the file that holds a
model's default generation settings in `transformers`' layout too; other sections are left as they are)::

    {"januspro": {"plan": true, "look": true}}

The command line (``generate``, ``chat``, ``eval``) and the server read it; their ``--plan/--no-plan`` and
``--look/--no-look`` options (``plan`` / ``look`` in the API) override it. A folder without the section (every
released Janus checkpoint) has both off. The Python functions take their modes explicitly
(``ImageGenParams(plan=...)``, ``look=`` arguments); :func:`read_defaults` gives a folder's.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError, build_block

DEFAULTS_FILE = "generation_config.json"
SECTION = "januspro"


@dataclass(frozen=True)
class ModelDefaults:
    """The modes a model uses unless told otherwise."""

    plan: bool = False  # text-to-image: write a drawing plan after the prompt, then draw it
    look: bool = False  # understanding: list the image's objects first, then answer after that list

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if not isinstance(getattr(self, f.name), bool):
                raise ConfigError(f"{SECTION}.{f.name} must be true or false, got {getattr(self, f.name)!r}")

    def to_dict(self) -> dict[str, bool]:
        return dataclasses.asdict(self)


def read_defaults(folder: str | os.PathLike[str]) -> ModelDefaults:
    """The defaults recorded in ``folder``'s generation_config.json (all off when it has none)."""
    path = Path(folder) / DEFAULTS_FILE
    if not path.is_file():
        return ModelDefaults()
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: not readable JSON ({e})") from None
    section = data.get(SECTION, {}) if isinstance(data, dict) else None
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: '{SECTION}' must be an object of settings")
    try:
        return build_block(ModelDefaults, section, SECTION, noun=f"{SECTION} setting")
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def write_defaults(folder: str | os.PathLike[str], defaults: ModelDefaults) -> Path:
    """Record ``defaults`` in ``folder``'s generation_config.json, keeping the file's other sections."""
    path = Path(folder) / DEFAULTS_FILE
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[SECTION] = defaults.to_dict()
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
