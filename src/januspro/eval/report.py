"""``januspro eval report DIR...``: benchmark runs side by side, with the paper's numbers as reference rows.

Each DIR is an output folder of ``januspro eval`` (its ``results.json``), or a folder whose sub-folders are.
Runs of the same model (config hash) share a row; each benchmark is one column with its headline number:
GenEval overall, POPE F1 averaged over the splits (x100), MME perception, MMBench circular accuracy (x100),
GQA accuracy (x100), shapes VQA accuracy (x100). DPG-Bench runs are listed (their scoring needs the official
mPLUG scorer).
"""

from __future__ import annotations

import json
from pathlib import Path

# Janus-Pro paper (Tables 3-5) headline numbers, as given in the project brief.
PAPER = {
    "Janus-Pro-1B (paper)": {"geneval": 0.73, "dpg": 82.63, "pope": 86.2, "mme": 1444.0, "mmbench": 75.5},
    "Janus-Pro-7B (paper)": {"geneval": 0.80, "dpg": 84.19, "pope": 87.4, "mme": 1567.0, "mmbench": 79.2},
}
COLUMNS = (("geneval", "GenEval"), ("dpg", "DPG-Bench"), ("pope", "POPE F1"), ("mme", "MME-P"),
           ("mmbench", "MMBench"), ("mmmu", "MMMU"), ("gqa", "GQA"), ("vqa", "VQA (shapes)"))


def find_results(paths: list[str | Path]) -> list[Path]:
    found: list[Path] = []
    for p in map(Path, paths):
        before = len(found)
        if (p / "results.json").is_file():
            found.append(p / "results.json")
        elif p.is_dir():
            found += sorted(p.glob("*/results.json"))
        if len(found) == before:
            raise FileNotFoundError(f"no results.json in {p} or its sub-folders")
    return found


def headline(res: dict) -> tuple[str, float | None]:
    """(benchmark, headline number) of one results.json."""
    b = res.get("benchmark")
    s = res.get("scores") or {}
    if b == "geneval":
        return b, s.get("overall")
    if b == "pope":
        f1 = [v["f1"] for v in s.values()]
        return b, 100 * sum(f1) / len(f1) if f1 else None
    if b == "mme":
        return b, s.get("perception")
    if b == "mmbench":
        return b, 100 * s["circular_accuracy"] if "circular_accuracy" in s else None
    if b in ("gqa", "vqa", "mmmu"):
        return b, 100 * s["accuracy"] if s.get("accuracy") is not None else None
    if b == "dpg":
        return b, None
    raise ValueError(f"unknown benchmark {b!r} in results.json")


def report(paths: list[str | Path]) -> str:
    rows: dict[str, dict[str, str]] = {}
    for f in find_results(paths):
        res = json.loads(f.read_text())
        bench, value = headline(res)
        name = f"{Path(res.get('model') or '?').name} ({res.get('config_hash', '?')[:8]})"
        cell = "generated" if value is None else (f"{value:.3f}" if bench == "geneval" else f"{value:.1f}")
        rows.setdefault(name, {})[bench] = cell
    head = "| model | " + " | ".join(t for _, t in COLUMNS) + " |\n|---|" + "---|" * len(COLUMNS) + "\n"
    lines = []
    for name, vals in PAPER.items():
        lines.append(f"| {name} | " + " | ".join(
            (f"{vals[k]:.2f}" if k == "geneval" else f"{vals[k]:g}") if k in vals else "" for k, _ in COLUMNS) + " |")
    for name, vals in rows.items():
        lines.append(f"| {name} | " + " | ".join(vals.get(k, "") for k, _ in COLUMNS) + " |")
    return head + "\n".join(lines) + "\n\nGenEval: overall (0-1); POPE: mean F1 of the splits x100; MME-P: perception " \
        "score (max 2000); MMBench: circular accuracy x100; MMMU: accuracy x100; GQA / VQA: exact-match accuracy x100.\n"
