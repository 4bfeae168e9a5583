"""How well a best-of-K score ranks a prompt's candidates, from rerank_und.py's OUT/all/ (scored).

    python artifacts/experiments/self-rerank/analyse.py OUT K [SCORE]

SCORE ranks the candidates (default ``und``): ``und`` (the understanding path's log p(prompt | image)), ``pmi``
(the generation path's log p(codes | prompt) - log p(codes | dropped prompt)), ``cond``, or ``und+pmi`` (the
sum of the two after standardising each within the prompt's candidates).

Prints, per category: plain sampling, the score's best of K, the oracle's best of K (any correct candidate
wins) and the within-group AUC (how often a correct candidate outscores an incorrect one of its group).
"""
import json
import sys
from collections import defaultdict
from pathlib import Path

out, k = Path(sys.argv[1]), int(sys.argv[2])
how = sys.argv[3] if len(sys.argv) > 3 else "und"


def z(xs: list[float]) -> list[float]:
    m = sum(xs) / len(xs)
    sd = (sum((x - m) ** 2 for x in xs) / len(xs)) ** 0.5 or 1.0
    return [(x - m) / sd for x in xs]


def ranking(raw: dict | list) -> list[float]:
    if isinstance(raw, list):  # the first version of rerank_und.py saved the understanding score alone
        raw = {"und": raw}
    pmi = [c - u for c, u in zip(raw.get("cond", []), raw.get("uncond", []), strict=True)]
    if how == "und+pmi":
        return [a + b for a, b in zip(z(raw["und"]), z(pmi), strict=True)]
    return pmi if how == "pmi" else raw[how]


rows = [json.loads(x) for x in (out / "all" / "results.jsonl").read_text().splitlines()]
by_prompt: dict[str, list[dict]] = defaultdict(list)
for r in rows:
    by_prompt[str(Path(r["filename"]).parent.parent)].append(r)
stats: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
for folder, rs in by_prompt.items():
    rs.sort(key=lambda r: r["filename"])
    scores = ranking(json.loads((Path(folder) / "scores.json").read_text()))
    tag = rs[0]["tag"]
    for g in range(len(rs) // k):
        grp = list(zip(rs[g * k:(g + 1) * k], scores[g * k:(g + 1) * k], strict=True))
        ok = [r["correct"] for r, _ in grp]
        stats[tag]["plain"].append(sum(ok) / k)
        stats[tag]["score"].append(float(max(grp, key=lambda x: x[1])[0]["correct"]))
        stats[tag]["oracle"].append(float(any(ok)))
        for r1, s1 in grp:
            for r2, s2 in grp:
                if r1["correct"] and not r2["correct"]:
                    stats[tag]["auc"].append(1.0 if s1 > s2 else 0.5 if s1 == s2 else 0.0)
print(f"{'category':<14} {'plain':>6} {'best-of-K':>9} {'oracle':>6} {'AUC':>5} (pairs)")
for tag, st in stats.items():
    m = {key: sum(v) / len(v) if v else float("nan") for key, v in st.items()}
    print(f"{tag:<14} {m['plain']:6.3f} {m['score']:9.3f} {m['oracle']:6.3f} {m.get('auc', float('nan')):5.2f} ({len(st['auc'])})")
allm = {key: sum(sum(st[key]) / len(st[key]) for st in stats.values()) / len(stats) for key in ("plain", "score", "oracle")}
print(f"{'overall':<14} {allm['plain']:6.3f} {allm['score']:9.3f} {allm['oracle']:6.3f}")
