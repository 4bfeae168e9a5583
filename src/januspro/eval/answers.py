"""The shared loop of the understanding benchmarks: answer (image, question) items in batches, append each
answer to a JSON-lines file as it comes (so an interrupted run resumes where it stopped)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..generation.text import TextGenParams, generate_text
from ..models.janus import JanusModel
from ..processing.processor import JanusProcessor


def read_answers(path: Path) -> dict[Any, str]:
    """``{question_id: answer}`` from an answers file written by a (possibly interrupted) earlier run."""
    done: dict[Any, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done[r["question_id"]] = r["answer"]
    return done


def answer_items(model: JanusModel, processor: JanusProcessor, items: Sequence[dict[str, Any]], image_root: Path | None,
                 answers_path: Path, question: Callable[[dict[str, Any]], str], params: TextGenParams,
                 batch_size: int = 8, progress: Callable[[int, int], None] | None = None) -> dict[Any, str]:
    """``{question_id: answer}`` for every item (``question_id``, ``image`` under ``image_root``, or a full path
    when ``image_root`` is None); answers already in ``answers_path`` are reused."""
    if image_root is not None and not image_root.is_dir():
        raise FileNotFoundError(f"no image folder at {image_root}")
    done = read_answers(answers_path)
    todo = [it for it in items if it["question_id"] not in done]
    with open(answers_path, "a") as f:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            convs = []
            for it in chunk:
                img = image_root / it["image"] if image_root is not None else Path(it["image"])
                if not img.is_file():
                    raise FileNotFoundError(f"image {it['image']} of question {it['question_id']} is not in "
                                            f"{image_root if image_root is not None else 'its folder'}")
                convs.append([{"role": "user", "content": [{"type": "image", "image": img},
                                                           {"type": "text", "text": question(it)}]}])
            for it, a in zip(chunk, generate_text(model, processor, convs, params), strict=True):
                done[it["question_id"]] = a
                f.write(json.dumps({"question_id": it["question_id"], "answer": a}) + "\n")
            f.flush()
            if progress is not None:
                progress(min(start + batch_size, len(todo)), len(todo))
    return done
