"""Evaluation and packaging of the shapes model: shapes-GenEval, shapes-POPE and VQA on held-out combinations,
then the shipped folder with its model card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..checkpoint.defaults import ModelDefaults, write_defaults
from ..shapes.world import HELD_OUT


def vqa_item_scene(seed: int, i: int):
    """Item ``i``'s scene of the VQA suite of ``seed`` (even items show a held-out combination, odd ones none), and
    the item's generator, which then draws its question."""
    from ..shapes.datasets import item_rng
    from ..shapes.world import sample_scene

    rng = item_rng(seed, i, 7)
    for _ in range(200):
        scene = sample_scene(rng, held_out=None)
        if HELD_OUT.scene_is_clean(scene) != (i % 2 == 0):
            break
    return scene, rng


def write_vqa_suite(folder: Path, n: int, seed: int) -> Path:
    """``n`` single-question VQA items (``vqa.jsonl``: question_id, image, question, answer, kind, heldout)
    on scenes that may show held-out combinations; about half of the items involve one."""
    from ..shapes.datasets import _save_png
    from ..shapes.language import mentions_held_out, qa_pairs
    from ..shapes.render import render

    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        scene, rng = vqa_item_scene(seed, i)
        qas = qa_pairs(scene, rng, held_out=None)
        q, a, kind = qas[int(rng.integers(len(qas)))]
        name = f"images/vqa_{i:06d}.png"
        _save_png(render(scene, 64), folder / name)
        rows.append({"question_id": i, "image": name, "question": q, "answer": a, "kind": kind,
                     "heldout": (not HELD_OUT.scene_is_clean(scene)) or mentions_held_out(f"{q} {a}")})
    path = folder / "vqa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# Sampling settings tried on the validation prompts (never on the evaluation suite).
SAMPLING_GRID = [(cfg, temp) for cfg in (3.0, 5.0, 8.0) for temp in (1.0, 0.7)]
# GenEval prompts generated together (each from its own seed, so scores do not depend on it)
EVAL_PROMPT_BATCH = 16


def select_sampling(model, processor, validation: Path, out: Path, progress: bool = True):
    """The (cfg weight, temperature) with the best shapes-GenEval score on the validation prompts (2 samples
    each); returns the ImageGenParams for the evaluation (4 samples) and the validation table."""
    from ..eval.geneval import run_geneval
    from ..generation.image import ImageGenParams

    table = []
    bar = _bar(progress)
    for cfg, temp in SAMPLING_GRID:
        params = ImageGenParams(cfg_weight=cfg, temperature=temp, n=2, seed=0)
        res = run_geneval(model, processor, validation, out / f"cfg{cfg:g}_t{temp:g}", params, scorer="shapes",
                          progress=bar(f"validation cfg {cfg:g} t {temp:g}", "prompt"), batch_size=EVAL_PROMPT_BATCH)
        table.append({"cfg_weight": cfg, "temperature": temp, "overall": res["scores"]["overall"]})
    best = max(table, key=lambda r: r["overall"])
    return ImageGenParams(cfg_weight=best["cfg_weight"], temperature=best["temperature"], n=4, seed=0), table


def load_shapes_model(model_dir: Path):
    """A shapes-world model in fp32 and without a system prompt (the recipe trains without one): as it is
    evaluated and packaged."""
    import dataclasses

    from ..checkpoint import load_model

    model = load_model(model_dir, dtype="fp32")
    model.cfg = dataclasses.replace(model.cfg, system_prompt="")
    return model


def evaluate_understanding(model, processor, suites: Path, out: Path, progress: bool = True, look: str = "") -> dict:
    """shapes-POPE (three splits, greedy, no instruction suffix) and VQA on the suites written by
    :func:`januspro.training.recipe.write_eval_suites`; returns the runners' results by benchmark. ``look``: each
    answer after the model's own answer to this question (:mod:`januspro.generation.look`)."""
    from ..eval.pope import run_pope
    from ..eval.vqa import run_vqa

    bar = _bar(progress)
    pope_files = [suites / "pope" / f"pope_{s}.jsonl" for s in ("random", "popular", "adversarial")]
    po = run_pope(model, processor, pope_files, suites / "pope", out / "pope", batch_size=16, suffix="",
                  progress=bar("shapes-POPE", "question"), look=look)
    vq = run_vqa(model, processor, suites / "vqa" / "vqa.jsonl", suites / "vqa", out / "vqa", batch_size=16,
                 progress=bar("VQA", "question"), look=look)
    return {"pope": po, "vqa": vq}


def evaluate_shapes_model(model_dir: Path, suites: Path, out: Path, image_params=None, progress: bool = True,
                          best_of: int = 1, judge: str = "ask", plan: bool = False, look: bool = False) -> dict:
    """shapes-GenEval (4 samples per prompt, exact detector), shapes-POPE (three splits) and VQA on the
    suites written by :func:`januspro.training.recipe.write_eval_suites`; returns the scores. Without
    ``image_params`` the sampling settings are chosen on the validation prompts first. ``best_of`` > 1 also
    scores shapes-GenEval with each image the best of that many candidates by the model's own ``judge``
    (``geneval_best_of``); ``plan`` (a model trained with drawing plans) also scores it with each image drawn
    after the model's own greedy plan (``geneval_plan``, and ``geneval_plan_best_of`` with ``best_of`` > 1: the
    candidates of an image share the greedy plan; sampled plans were worse, artifacts/experiments/plan/); all with
    the same sampling settings. ``look`` (a model trained with look turns) also scores POPE and VQA with each
    answer given after the model's own inventory (``pope_look``, ``vqa_look``; :mod:`januspro.generation.look`)."""
    import dataclasses

    from ..checkpoint import load_processor
    from ..eval.geneval import run_geneval

    model = load_shapes_model(model_dir)
    processor = load_processor(model)
    selection = None
    if image_params is None:
        image_params, selection = select_sampling(model, processor, suites / "validation" /
                                                  "evaluation_metadata.jsonl", out / "validation", progress)
    params = image_params
    ge = run_geneval(model, processor, suites / "geneval" / "evaluation_metadata.jsonl", out / "geneval", params,
                     scorer="shapes", progress=_bar(progress)("shapes-GenEval", "prompt"), batch_size=EVAL_PROMPT_BATCH)
    seconds = {"geneval": ge["generation_seconds"]}
    extra = {}
    picked = dataclasses.replace(params, best_of=best_of, judge=judge)
    variants = [("geneval_best_of", f"best of {best_of}", picked)] if best_of > 1 else []
    if plan:
        variants.append(("geneval_plan", "plan", dataclasses.replace(params, plan=True, plan_temperature=0.0)))
        if best_of > 1:
            variants.append(("geneval_plan_best_of", f"plan, best of {best_of}",
                             dataclasses.replace(picked, plan=True, plan_temperature=0.0)))
    for key, label, variant in variants:
        res = run_geneval(model, processor, suites / "geneval" / "evaluation_metadata.jsonl", out / key, variant,
                          scorer="shapes", progress=_bar(progress)(f"shapes-GenEval, {label}", "prompt"),
                          batch_size=EVAL_PROMPT_BATCH)
        extra[key] = {**res["scores"], "best_of": variant.best_of, "judge": judge, "plan": variant.plan,
                      "plan_temperature": variant.plan_temperature}
        seconds[key] = res["generation_seconds"]
    und = evaluate_understanding(model, processor, suites, out, progress)
    po, vq = und["pope"], und["vqa"]
    seconds.update(pope=po["seconds"], vqa=vq["seconds"])
    if look:
        from ..shapes.language import LOOK_QUESTION

        looked = evaluate_understanding(model, processor, suites, out / "look", progress, look=LOOK_QUESTION)
        extra.update(pope_look=looked["pope"]["scores"], vqa_look=looked["vqa"]["scores"])
        seconds.update(pope_look=looked["pope"]["seconds"], vqa_look=looked["vqa"]["seconds"])
    return {"geneval": ge["scores"], **extra, "pope": po["scores"], "vqa": vq["scores"],
            # the judge matters only with best of K (the best-of score records its own)
            "sampling": {k: v for k, v in dataclasses.asdict(params).items()
                         if k != "compile" and not (k == "judge" and params.best_of == 1)},
            "sampling_selection": selection, "eval_seconds": seconds}


def _bar(enabled: bool):
    from tqdm.auto import tqdm

    def make(desc: str, unit: str):
        bar = tqdm(desc=desc, unit=unit, disable=not enabled)

        def update(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)
            if done >= total:
                bar.close()

        return update

    return make


def targets_met(scores: dict) -> dict[str, bool]:
    """The shipped model's targets (issue 4) checked on held-out combinations. shapes-GenEval's are checked on
    plain sampling and, for a model scored drawing after its own plans (``geneval_plan``), on that too; POPE's and
    VQA's on direct answers and, for a model scored looking first (``pope_look``), on that too."""
    out = {}
    for key in ("geneval", "geneval_plan"):
        g = scores.get(key)
        if not g:
            continue
        held = g.get("per_split", {}).get("heldout", {})
        out.update({f"{key}_overall>=0.75": g["overall"] >= 0.75,
                    f"{key}_every_category>=0.50": min(g["per_tag"].values()) >= 0.5,
                    f"{key}_heldout_every_category>=0.50": bool(held) and min(held.values()) >= 0.5})
    for suffix in ("", "_look"):  # answering directly, and after the model's own inventory
        pope, vqa = scores.get("pope" + suffix), scores.get("vqa" + suffix)
        if not pope:
            continue
        out.update({f"pope{suffix}_f1>=0.90_all_splits": min(s["f1"] for s in pope.values()) >= 0.9,
                    f"vqa{suffix}>=0.85": vqa["accuracy"] >= 0.85,
                    f"vqa{suffix}_heldout>=0.85": (vqa.get("heldout") or 0.0) >= 0.85})
    return out


# ----------------------------------------------------------------------------- plots and the model card
def line_plot(series: dict[str, tuple[list[float], list[float]]], title: str, path: Path, ylabel: str = "loss",
              width: int = 640, height: int = 360, smooth: int = 20) -> Path:
    """A small PNG line chart drawn with PIL (no plotting dependency); series are moving-averaged."""
    import numpy as np
    from PIL import Image, ImageDraw

    colors = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    left, right, top, bottom = 60, width - 15, 30, height - 40
    pts = {}
    for name, (xs, ys) in series.items():
        y = np.asarray(ys, dtype=float)
        ok = np.isfinite(y)
        x = np.asarray(xs, dtype=float)[ok]
        y = y[ok]
        if len(y) == 0:
            continue
        k = max(1, min(smooth, len(y) // 10 or 1))
        y = np.convolve(y, np.ones(k) / k, mode="valid")
        pts[name] = (x[k - 1:], y)
    if not pts:
        raise ValueError(f"nothing to plot for {title!r}")
    x0 = min(float(x.min()) for x, _ in pts.values())
    x1 = max(float(x.max()) for x, _ in pts.values())
    y0 = min(float(y.min()) for _, y in pts.values())
    y1 = max(float(y.max()) for _, y in pts.values())
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

    def xy(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top))

    d.rectangle([left, top, right, bottom], outline="black")
    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        _, py = xy(x0, yv)
        d.line([left, py, right, py], fill=(230, 230, 230))
        d.text((5, py - 6), f"{yv:.3g}", fill="black")
    for i in range(5):
        xv = x0 + (x1 - x0) * i / 4
        px, _ = xy(xv, y0)
        d.text((px - 10, bottom + 5), f"{xv:.0f}", fill="black")
    d.text((left, 8), title, fill="black")
    d.text((right - 40, bottom + 22), "step", fill="black")
    d.text((5, top - 20), ylabel, fill="black")
    for k, (name, (x, y)) in enumerate(pts.items()):
        c = colors[k % len(colors)]
        d.line([xy(float(a), float(b)) for a, b in zip(x, y, strict=True)], fill=c, width=2)
        d.text((left + 10 + 130 * k, top + 6), name, fill=c)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def read_log(path: Path) -> list[dict]:
    return [r for r in (json.loads(x) for x in path.read_text().splitlines() if x.strip()) if "eval" not in r]


PLOTS = {  # part -> (title, {series name: log key})
    "vq": ("VQ tokenizer", {"reconstruction": "rec_loss", "commitment": "commit_loss"}),
    "siglip": ("SigLIP understanding ViT", {"sigmoid loss": "loss"}),
    "siglip_sft": ("SigLIP ViT of Stage III (dense loss x4)", {"sigmoid loss": "sigmoid_loss",
                                                                "dense loss": "dense_loss"}),
    "text": ("LLM text pretraining", {"text": "text_loss"}),
    "stage1": ("Stage I", {"text (und answers)": "text_loss", "image codes": "image_loss"}),
    "stage2": ("Stage II", {"text": "text_loss", "image codes": "image_loss"}),
    "stage3": ("Stage III", {"text": "text_loss", "image codes": "image_loss"}),
}


VQ_PLOT = "vq.png"  # the VQ tokenizer's loss curve, kept beside a trained vq.safetensors


def part_plot(part: str, log: Path, path: Path) -> Path:
    """The loss curve of one recipe part (its ``log.jsonl``) as a PNG."""
    title, keys = PLOTS[part]
    rows = read_log(log)
    series = {name: ([r["step"] for r in rows], [r.get(k, float("nan")) for r in rows]) for name, k in keys.items()}
    return line_plot(series, title, path)


def trained_modes(state: dict) -> ModelDefaults:
    """The two-step modes a recipe's model was trained for, which it is scored in besides the plain ones and which
    become its default modes when packaged: drawing plans (in either stage's text-to-image pairs) and look turns
    (Stage III's chats). The recipe's data record says what Stages II-III were trained on (a record without a
    setting predates it: trained without)."""
    data = state["parts"].get("data", {})
    return ModelDefaults(plan=any(data.get(k, 0.0) > 0 for k in ("plan_share", "sft_plan_share")),
                         look=data.get("sft_look_share", 0.0) > 0)


def package_model(recipe, dest: Path) -> dict:
    """The shipped folder: bf16 weights, config (no system prompt: the model was trained without one),
    tokenizer, loss plots and the model card (README.md)."""
    from ..checkpoint import save_model

    model = load_shapes_model(recipe.out / "stage3" / "model")
    save_model(model, dest, tokenizer_dir=recipe.tok, dtype="bf16")
    state = recipe.state()
    modes = trained_modes(state)
    write_defaults(dest, modes)  # the modes it was trained for are its defaults (checkpoint/defaults.py)
    plots = []
    for part in PLOTS:
        log = recipe.out / part / "log.jsonl"
        if log.is_file():
            plots.append(part_plot(part, log, dest / "plots" / f"{part}.png").name)
        elif part == "vq" and recipe.vq and Path(recipe.vq).with_name(VQ_PLOT).is_file():
            # a reused VQ's loss curve travels beside its weights (written by the run that trained it)
            (dest / "plots").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(recipe.vq).with_name(VQ_PLOT), dest / "plots" / VQ_PLOT)
            plots.append(VQ_PLOT)
    ev = state["parts"].get("eval")
    if ev:  # the record the shipped model's regression test checks against
        import tempfile

        from ..generation.image import ImageGenParams
        from .recipe import EVAL_SEED

        sampling = {k: v for k, v in ev["sampling"].items() if k in ("cfg_weight", "temperature", "top_k", "top_p",
                                                                     "n", "seed")}
        with tempfile.TemporaryDirectory() as tmp:
            small = small_eval(dest, Path(tmp), ImageGenParams(**sampling), seed=EVAL_SEED,
                               plan="geneval_plan" in ev, look="pope_look" in ev)
        (dest / "scores.json").write_text(json.dumps({"sampling": sampling, "small_set": small, "full": {
            k: ev[k] for k in ("geneval", "geneval_best_of", "geneval_plan", "geneval_plan_best_of", "pope", "vqa",
                               "pope_look", "vqa_look") if k in ev}, "targets": ev.get("targets")},
            indent=2) + "\n")
    n_params = sum(p.numel() for p in model.parameters())
    size_mb = sum(f.stat().st_size for f in dest.glob("*.safetensors")) / 1e6
    from ..eval.geneval import hardware

    card = model_card(state, n_params, size_mb, plots, hardware(), architecture_line(model.cfg),
                      vq_source=str(recipe.vq or ""))
    (dest / "README.md").write_text(card)
    return {"params": n_params, "weights_mb": round(size_mb, 2)}


def architecture_line(cfg) -> str:
    """The model card's summary of a model's shape (read from its config, so a recipe run with another
    architecture, ``--set text.model.init=arch.json``, is described as it is)."""
    llm, vis, vq = cfg.llm, cfg.vision, cfg.vq
    return (f"LLM {llm.num_layers} layers, width {llm.hidden_size}, {llm.num_heads} heads, FFN "
            f"{llm.intermediate_size}, vocab {llm.vocab_size};\n  understanding ViT {vis.image_size} px, patch "
            f"{vis.patch_size} ({vis.num_tokens} tokens), width {vis.hidden_size}, {vis.num_layers} layers; VQ "
            f"{vq.image_size} px -> {vq.grid_size}x{vq.grid_size} = {vq.num_tokens} codes, codebook "
            f"{vq.codebook_size} x {vq.codebook_dim}.")


def model_card(state: dict, n_params: int, size_mb: float, plots: list[str], cpu: str, architecture: str,
               vq_source: str = "") -> str:
    import torch

    parts = state["parts"]
    style = parts.get("data", {}).get("style")
    notes = []
    if style:
        notes.append("- Training data style (`Recipe.style`): clean text-to-image images with placement jitter "
                     f"{style['synthetic_jitter']:g} (0 = every object at its grid-cell centre; the noisy 'real' half "
                     f"stays jittered); understanding chats of up to {style['max_turns']} questions "
                     f"({style['single_turn_share']:.0%} ask one); {style['hard_negatives']:.0%} of the absent "
                     "objects asked about are near misses of present ones; "
                     f"{style.get('kind_balance', 0.0):.0%} of the chats draw their questions kind by kind (every "
                     "question kind the scene offers equally likely), the rest uniformly over the scene's questions.")
        orders = {"mixed": "in a fixed shape order or shuffled", "raster": "in raster order (the order the image "
                  "codes reach them: top code row first, left to right)"}
        sft = parts["data"].get("sft_caption_order", "mixed")
        notes.append(f"- Captions list their object groups {orders.get(style.get('caption_order', 'mixed'), '?')} "
                     f"in Stage II's text-to-image data and {orders.get(sft, '?')} in Stage III's clean captions "
                     "(`Recipe.sft_caption_order`).")
        share = parts["data"].get("sft_match_share", 0.0)
        if share:
            notes.append(f"- {share:.0%} of Stage III's understanding chats open with 'Does the image show <prompt>?' "
                         "about a GenEval-style prompt, true or false of the image by GenEval's rule "
                         "(`Recipe.sft_match_share`): the judge of best-of-K generation with `--judge ask`.")
        plans = parts["data"].get("plan_share", 0.0), parts["data"].get("sft_plan_share", 0.0)
        if any(plans):
            notes.append(f"- {plans[0]:.0%} of Stage II's and {plans[1]:.0%} of Stage III's text-to-image pairs first "
                         "write the scene's drawing plan (each object's colour, shape and grid cell: 'red circle 0 2, "
                         "blue square 1 1') and then the image (`Recipe.plan_share`, `Recipe.sft_plan_share`), so "
                         "`januspro generate --plan` can plan before drawing.")
        look = parts["data"].get("sft_look_share", 0.0)
        if look:
            exist = parts["data"].get("sft_look_exist_share", 0.0)
            space = parts["data"].get("sft_look_space_share", 0.0)
            cite = parts["data"].get("sft_look_cite_share", 0.0)
            notes.append(f"- {look:.0%} of Stage III's understanding chats open with 'List the objects.' answered "
                         "with the scene's inventory in the drawing plans' words (`Recipe.sft_look_share`), "
                         + (f"{exist:.0%} of them followed by a question about a present object or an easily "
                            "confused absent one (`Recipe.sft_look_exist_share`), " if exist else "")
                         + (f"{space:.0%} of them by a question about where one object is relative to another "
                            "(`Recipe.sft_look_space_share`), " if space else "")
                         + (f"{cite:.0%} of them answering colour and shape questions with the object's inventory "
                            "entry first ('blue circle 2 1: blue', `Recipe.sft_look_cite_share`), " if cite else "")
                         + "so `januspro chat --look` (and `eval pope|vqa --look`) can list what the image shows "
                         "before answering.")
        counts = parts["data"].get("sft_count_chats", 0)
        if counts:
            notes.append(f"- Stage III's chats also hold {counts:,} counting chats (`Recipe.sft_count_chats`): a scene "
                         "of 1-6 objects of one shape beside 0-2 others, asked whether it shows '<n> <shape>s' "
                         "(n = 2-4) and how many of that shape it holds.")
    if "siglip_sft" in parts:
        notes.append("- Understanding encoder: Stages I and II see the siglip part's ViT; Stage III starts from the "
                     "siglip_sft part's (its tokens also trained to name the object under their patch, dense loss "
                     "weight 4) and trains it further.")
    if vq_source:
        notes.append(f"- VQ tokenizer: the trained weights `{vq_source}` were reused, not retrained in this run; the "
                     "vq and vq_polish rows below are the run that trained them (`recipe_parts.json` beside the "
                     "weights), or zero minutes where that was not recorded.")
    modes = trained_modes(state)
    what = {"plan": "`generate` (and `eval geneval`) writes a drawing plan before each image",
            "look": "`chat` (and `eval pope|vqa`) lists the image's objects before answering"}
    on = [name for name in what if getattr(modes, name)]
    modes_line = [f"- Default modes (the `januspro` section of generation_config.json: the modes it was trained "
                  f"for): {'; '.join(what[n] for n in on)}; {' / '.join(f'`--no-{n}`' for n in on)} "
                  f"{'turns it' if len(on) == 1 else 'turn them'} off (the plain rows below)."] if on else []
    scores = parts.get("eval", {})
    lines = ["# janus-pro-shapes", "",
             "A Janus-Pro (same architecture and pipeline as DeepSeek's, scaled down) trained from scratch on the",
             "synthetic shapes world by `januspro train recipe shapes`. It is januspro's default model: it makes every",
             "command work offline and is the end-to-end test of the training code. It knows nothing outside the",
             "shapes world (4 shapes x 6 colours x 3 sizes on a 3x3 grid, 64x64 images).", "",
             f"- Parameters: {n_params / 1e6:.2f} M (bf16 weights: {size_mb:.1f} MB); {architecture}",
             "- No system prompt (the model was trained without one).", *modes_line,
             f"- Trained on {cpu} (torch {torch.__version__}).", *notes, "",
             "## Recipe and wall time", "", "| part | steps | learning rate | wall time (min) | final numbers |",
             "|---|---|---|---|---|"]
    total = 0.0
    for name, info in parts.items():
        if name in ("eval", "package"):
            continue
        total += info["seconds"]
        final = ", ".join(f"{k} {v:.4g}" for k, v in info.get("final", {}).items()
                          if k not in ("step", "lr", "grad_norm"))
        note = f" ({info['note']})" if info.get("note") else ""
        lines.append(f"| {name} | {info.get('steps', '')} | {info.get('lr', '')} | {info['seconds'] / 60:.1f}{note} "
                     f"| {final} |")
    lines += ["", f"Total training wall time: {total / 60:.1f} min (parts listed in recipe.json; a part reused "
              "from an earlier run keeps the time it took then).", ""]
    if scores:
        ge = scores["geneval"]

        def all_row(label: str, report: dict) -> str:
            return (f"| {label} | {report['overall']:.3f} | "
                    + " | ".join(f"{report['per_tag'].get(t, 0.0):.3f}" for t in ge["per_tag"]) + " |")

        lines += ["## Scores (held-out evaluation suites, seed 1000)", "",
                  f"Sampling: {scores['sampling']}.", ""]
        if scores.get("sampling_selection"):
            lines += ["The guidance weight and temperature were chosen on separate validation prompts (seed 2000, "
                      "2 samples each; shapes-GenEval overall): " + ", ".join(
                          f"cfg {r['cfg_weight']:g} / t {r['temperature']:g}: {r['overall']:.3f}"
                          for r in scores["sampling_selection"]) + ".", ""]
        lines += [
                  "shapes-GenEval (4 samples per prompt, exact detector):", "",
                  "| split | overall | " + " | ".join(ge["per_tag"]) + " |", "|---|---|" + "---|" * len(ge["per_tag"]),
                  all_row("all", ge)]
        for split, vals in ge.get("per_split", {}).items():
            cells = " | ".join(f"{vals[t]:.3f}" if t in vals else "-" for t in ge["per_tag"])
            lines.append(f"| {split} | {sum(vals.values()) / len(vals):.3f} | {cells} |")
        notes = []
        for key in ("geneval_best_of", "geneval_plan", "geneval_plan_best_of"):
            v = scores.get(key)
            if not v:
                continue
            label = ", ".join((["plan"] if v.get("plan") else []) + ([f"best of {v['best_of']}"] if v["best_of"] > 1
                                                                     else []))
            lines.append(all_row(f"all, {label}", v))
            temp = v.get("plan_temperature") or 0
            # a model that plans by default draws without a plan only when told (--no-plan)
            flags = ("--plan" + (f" --plan-temperature {temp:g}" if temp else "") if v.get("plan") else
                     "--no-plan" if modes.plan else "") + \
                    (f" --best-of {v['best_of']} --judge {v['judge']}" if v["best_of"] > 1 else "")
            notes.append(f"{label}: `januspro generate {flags.strip()}`")
        if notes:
            lines += ["", "Best of K: each image is the best of K candidates by the model's own judge; plan: each "
                      "image is drawn after the model's own drawing plan (greedy); the rows without either are "
                      "plain sampling" + (", `januspro generate --no-plan`" if modes.plan else "") + " ("
                      + "; ".join(notes) + ")."]
        looked = bool(scores.get("pope_look"))
        lines += ["", "shapes-POPE (greedy, no instruction suffix" + ("; 'look': answered after the model's own "
                  "inventory, `--look`; the other rows answer directly" if looked else "")
                  + (", `--no-look`" if looked and modes.look else "") + "):", "",
                  "| split | accuracy | precision | recall | F1 | yes-ratio |", "|---|---|---|---|---|---|"]
        for key, tag in (("pope", ""), ("pope_look", ", look")):
            for split, s in (scores.get(key) or {}).items():
                lines.append(f"| {split}{tag} | {s['accuracy']:.3f} | {s['precision']:.3f} | {s['recall']:.3f} | "
                             f"{s['f1']:.3f} | {s['yes_ratio']:.3f} |")
        lines.append("")
        for key, tag in (("vqa", ", answering directly (`--no-look`)" if modes.look else ""),
                         ("vqa_look", ", looking first (`--look`)")):
            v = scores.get(key)
            if v:
                lines.append(f"VQA (greedy, exact match after normalisation{tag}): {v['accuracy']:.3f} overall, seen "
                             f"{v.get('seen', 0):.3f}, held-out {v.get('heldout', 0):.3f}; per kind: "
                             + ", ".join(f"{k} {a:.2f}" for k, a in v["per_kind"].items() if a is not None) + ".")
        lines += ["", "Targets (issue 4): " + ", ".join(f"{k}: {'met' if ok else 'NOT met'}"
                                                     for k, ok in targets_met(scores).items()), ""]
    if plots:
        lines += ["## Loss curves", ""] + [f"![{p}](plots/{p})" for p in plots] + [""]
    return "\n".join(lines)


def small_eval(model_dir: Path, work: Path, params, seed: int, plan: bool = False, look: bool = False
               ) -> dict[str, float]:
    """A quick held-out check (about a minute on 2 cores): 24 GenEval-style prompts x 2 samples, POPE on 16
    images (three splits), 48 VQA questions; with ``plan``, the GenEval prompts also drawn after the model's own
    plans (``geneval_plan``); with ``look``, POPE and VQA also answered after the model's own inventory
    (``pope_look_f1_min``, ``vqa_look``). The shipped model's regression test and the card's record."""
    import dataclasses

    from .recipe import write_eval_suites

    write_eval_suites(work / "suites", per_tag=4, seed=seed)
    scores = evaluate_shapes_model(model_dir, work / "suites", work / "out", dataclasses.replace(params, n=2),
                                   progress=False, plan=plan, look=look)
    out = {"geneval": scores["geneval"]["overall"], "pope_f1_min": min(s["f1"] for s in scores["pope"].values()),
           "vqa": scores["vqa"]["accuracy"]}
    if plan:
        out["geneval_plan"] = scores["geneval_plan"]["overall"]
    if look:
        out["pope_look_f1_min"] = min(s["f1"] for s in scores["pope_look"].values())
        out["vqa_look"] = scores["vqa_look"]["accuracy"]
    return out
