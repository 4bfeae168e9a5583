"""JSON-lines reading shared by the data readers and the benchmark runners."""

from __future__ import annotations

import json
from pathlib import Path


def read_jsonl(path: str | Path, required: tuple[str, ...] = (), what: str = "data file") -> list[dict]:
    """Every non-empty line of ``path`` as a dict; clear errors for a missing file, bad JSON or missing keys."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no {what} at {p}")
    rows = []
    for k, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}:{k} is not valid JSON: {e}") from None
        if not isinstance(row, dict):
            raise ValueError(f"{p}:{k} is not a JSON object")
        missing = [key for key in required if key not in row]
        if missing:
            raise ValueError(f"{p}:{k} lacks {', '.join(missing)}")
        rows.append(row)
    if not rows:
        raise ValueError(f"{p} holds no records")
    return rows
