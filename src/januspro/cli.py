"""Command line: ``januspro <command> ...``. Each command parses its arguments and calls one library function."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import __version__


def _cmd_convert(args: argparse.Namespace) -> int:
    from .checkpoint import convert

    out = convert(args.src, args.dst, to=args.to, dtype=args.dtype, max_shard_bytes=int(args.shard_gb * (1 << 30)))
    print(f"wrote {args.to} layout to {out}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .checkpoint import resolve_model_path
    from .config import load_config

    folder = resolve_model_path(args.model)
    cfg, fmt = load_config(folder)
    import torch

    from .models.janus import JanusModel

    with torch.device("meta"):
        n = JanusModel(cfg).num_parameters()
    info = {"folder": str(folder), "layout": fmt, "parameters": n, "config": cfg.to_dict()}
    print(json.dumps(info, indent=2))
    return 0


def _load(args: argparse.Namespace):
    from .checkpoint import load_model, load_processor

    device = args.device or ("cuda" if _cuda() else "cpu")
    dtype = args.dtype or ("bf16" if device.startswith("cuda") else "fp32")
    model = load_model(args.model, dtype=dtype, device=device)
    return model, load_processor(model)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _cmd_generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm.auto import tqdm

    from .generation.image import generate_images
    from .processing.image import contact_sheet

    params = _image_params(args, args.n, args.seed)
    model, proc = _load(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=model.cfg.vq.num_tokens, desc="generating", unit="code", disable=args.quiet)

    def progress(i: int, total: int) -> None:
        bar.update(i - bar.n)

    plans: list[list[str]] = []
    images = generate_images(model, proc, args.prompt, params, args.negative_prompt, progress, plans=plans)
    bar.close()
    flat = []
    for k, per_prompt in enumerate(images):
        for i, im in enumerate(per_prompt):
            name = f"{i:03d}.png" if len(images) == 1 else f"p{k:02d}_{i:03d}.png"
            im.save(out / name)
            flat.append(im)
            if plans:
                print(f"{name}: plan: {plans[k][i]}")
    contact_sheet(flat, cols=args.n if len(images) > 1 else None).save(out / "grid.png")
    print(f"wrote {len(flat)} image(s) and grid.png to {out}")
    return 0


def _image_params(args: argparse.Namespace, n: int, seed: int | None):
    """The image sampling settings of ``_add_image_sampling_args``' options."""
    from .generation.image import ImageGenParams

    return ImageGenParams(cfg_weight=args.cfg, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                          n=n, seed=seed, compile=args.compile, cfg_end=args.cfg_end, best_of=args.best_of,
                          judge=args.judge, plan=_mode(args, "plan"), plan_temperature=args.plan_temperature)


def _add_look_arg(p: argparse.ArgumentParser) -> None:
    from .shapes.language import LOOK_QUESTION

    p.add_argument("--look", action=argparse.BooleanOptionalAction, default=None,
                   help=f"look, then answer: first ask '{LOOK_QUESTION}' about the image (a model trained with look "
                        "turns answers with each object's colour, shape and grid cell), then answer the question "
                        "after the model's own answer to it (default: the model's, from the 'januspro' section of "
                        "its generation_config.json; on for janus-pro-shapes, off for models without it)")
    p.add_argument("--look-question", default=None, metavar="TEXT",
                   help="the question --look asks first (implies --look; default: the one above)")


def _mode(args: argparse.Namespace, name: str) -> bool:
    """``--plan`` / ``--look`` as given, else the model folder's default (read before the model loads; said on
    stderr when it turns the mode on, so that a run's mode is never a surprise)."""
    given = getattr(args, name)
    if given is not None:
        return given
    from .checkpoint import resolve_model_path
    from .checkpoint.defaults import read_defaults

    on = getattr(read_defaults(resolve_model_path(args.model)), name)
    if on and not getattr(args, "quiet", False):
        print(f"[{name} on: the model's default (its generation_config.json); --no-{name} turns it off]",
              file=sys.stderr)
    return on


def _look(args: argparse.Namespace) -> str:
    """The look question ('' = off); an empty --look-question is a user mistake."""
    from .shapes.language import LOOK_QUESTION

    if args.look_question is not None:
        if not args.look_question.strip():
            raise ValueError("--look-question must not be empty")
        if args.look is False:
            raise ValueError("--look-question asks a look question; it cannot go with --no-look")
        return args.look_question
    return LOOK_QUESTION if _mode(args, "look") else ""


def _cmd_chat(args: argparse.Namespace) -> int:
    from .generation.text import TextGenParams, stream_chat
    from .processing.image import load_image

    params = TextGenParams(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                           top_p=args.top_p, repetition_penalty=args.repetition_penalty, seed=args.seed,
                           compile=args.compile)
    look = _look(args) if args.image else ""  # the look turn looks at the first turn's images: none, no look
    images = [load_image(p) for p in args.image]  # fail early, before loading the model
    model, proc = _load(args)
    history: list[dict] = []

    def answer(question: str) -> str:
        parts: list[dict] = [{"type": "image", "image": im} for im in images] if not history else []
        parts.append({"type": "text", "text": question})
        history.append({"role": "user", "content": parts})
        if look and len(history) == 1:  # the look turn opens the chat, once
            from .generation.look import look_first

            convs, seen = look_first(model, proc, [history], look, params, args.system_prompt)
            history[:] = convs[0]
            print(f"[look] {seen[0]}", file=sys.stderr)
        text = ""
        for _, piece in stream_chat(model, proc, [history], params, args.system_prompt):
            if not text:
                piece = piece.lstrip()  # the answer's leading space (after "Assistant:") is not shown
            print(piece, end="", flush=True)
            text += piece
        print()
        history.append({"role": "assistant", "content": text.strip()})
        return text

    if args.question:
        answer(args.question)
        return 0
    print("Interactive chat: type a message, an empty line or Ctrl-D to quit.", file=sys.stderr)
    while True:
        try:
            line = input("> ")
        except EOFError:
            break
        if not line.strip():
            break
        answer(line)
    return 0


def _cmd_data_shapes(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from .shapes.datasets import DataStyle, write_task

    try:
        style = DataStyle(args.synthetic_jitter, args.single_turn_share, args.max_turns, args.hard_negatives,
                          args.caption_order, args.kind_balance, args.simple_scenes, args.describe_share,
                          args.match_share)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    if args.workers < 1:
        raise SystemExit(f"error: --workers must be >= 1, got {args.workers}")
    total = args.n * 6 if args.task == "geneval" else args.n
    with tqdm(total=total, desc=f"shapes {args.task}", unit="item", disable=args.quiet) as bar:
        path = write_task(args.task, args.out, args.n, args.seed, args.resolution, args.variant,
                          progress=lambda k: bar.update(k - bar.n), style=style, workers=args.workers)
    print(f"wrote {path}")
    return 0


def _cmd_data_score(args: argparse.Namespace) -> int:
    from .shapes.scoring import score_geneval_folder

    report = score_geneval_folder(args.folder, args.out or args.folder)
    print(report.markdown(), end="")
    return 0


def _recipe_parser() -> argparse.ArgumentParser:
    from .shapes.language import ORDERS
    from .training.recipe import ORDER, Recipe

    p = argparse.ArgumentParser(
        prog="januspro train recipe",
        description="Run a whole training recipe from scratch. 'shapes' trains janus-pro-shapes on the shapes "
                    "world: " + ", ".join(ORDER) + ". Each finished part is recorded in OUT/recipe.json and "
                    "skipped on the next run, so an interrupted recipe goes on where it stopped.")
    p.add_argument("name", choices=["shapes"], help="the recipe")
    p.add_argument("--out", default="runs/recipe-shapes", help="working folder (default: runs/recipe-shapes)")
    p.add_argument("--until", default=None, metavar="PART", help="stop after this part")
    p.add_argument("--only", action="append", default=[], metavar="PART", help="run only these parts (repeatable)")
    p.add_argument("--vq", default="", metavar="FILE",
                   help="use these trained VQ weights (vq.safetensors) instead of training the VQ")
    p.add_argument("--set", action="append", default=[], metavar="PART.SECTION.KEY=VALUE",
                   help="change a trained part's run config, e.g. stage2.train.steps=3000 (repeatable)")
    p.add_argument("--data-scale", type=float, default=1.0, help="multiply the dataset sizes (default: 1)")
    p.add_argument("--eval-items", type=int, default=24,
                   help="GenEval prompts per category (POPE images: 4x, VQA questions: 12x; default: 24)")
    p.add_argument("--eval-best-of", type=int, default=Recipe.eval_best_of, metavar="K",
                   help="also score shapes-GenEval with each image the best of K candidates by the model's own "
                        "'ask' judge (about K times the plain scoring's time); 1 skips it (default: %(default)s)")
    p.add_argument("--caption-order", choices=ORDERS, default=Recipe.default_style().caption_order,
                   help="order of the object groups in the text-to-image captions (Stage II's data, both the "
                        "clean and the noisy half): 'raster' names them in the order the image codes reach them, "
                        "'mixed' in shape order or shuffled (default: %(default)s)")
    p.add_argument("--sft-caption-order", choices=ORDERS, default=Recipe.sft_caption_order,
                   help="the same for Stage III's clean captions (re-captioned from the same scenes when it "
                        "differs from --caption-order; default: %(default)s)")
    p.add_argument("--sft-match-share", type=float, default=Recipe.sft_match_share,
                   help="share of Stage III's understanding chats that open with 'Does the image show <prompt>?' "
                        "about a GenEval-style prompt, true or false of the image, which trains the judge of "
                        "--best-of K --judge ask; Stages I-II keep the plain chats (default: %(default)s)")
    p.add_argument("--sft-look-share", type=float, default=Recipe.sft_look_share,
                   help="share of Stage III's understanding chats that open with 'List the objects.' answered with "
                        "the scene's inventory (each object's colour, shape and grid cell), which lets 'januspro "
                        "chat --look' and 'eval pope|vqa --look' list what the image shows before answering "
                        "(default: %(default)s)")
    p.add_argument("--sft-look-exist-share", type=float, default=Recipe.sft_look_exist_share,
                   help="share of those look-opened chats that next ask whether the image shows an object: "
                        "present, or absent but easily confused (a near miss of a present object, or an object "
                        "whose colour and shape the scene shows on different objects), so that answering from the "
                        "inventory pays (default: %(default)s)")
    p.add_argument("--sft-look-space-share", type=float, default=Recipe.sft_look_space_share,
                   help="share of those look-opened chats that next ask where one object is relative to another "
                        "('Is the square below the circle?', 'Where is the square relative to the circle?'), which "
                        "the inventory's grid cells settle (default: %(default)s)")
    p.add_argument("--sft-look-cite-share", type=float, default=Recipe.sft_look_cite_share,
                   help="share of those look-opened chats whose colour and shape answers first cite the inventory "
                        "entry of the object asked about ('What color is the circle?' -> 'blue circle 2 1: blue'); "
                        "the VQA scorer reads the answer after the citation (default: %(default)s)")
    p.add_argument("--sft-count-chats", type=int, default=Recipe.sft_count_chats,
                   help="counting chats added to Stage III's understanding chats: a scene of 1-6 objects of one "
                        "shape (beside 0-2 others), 'Does the image show <n> <shape>s?' and 'How many <shape>s are "
                        "there?', which teaches the 'ask' judge to count; scaled by --data-scale (default: "
                        "%(default)s)")
    p.add_argument("--plan-share", type=float, default=Recipe.plan_share,
                   help="the same for Stage II's text-to-image pairs, clean and noisy (default: %(default)s)")
    p.add_argument("--sft-plan-share", type=float, default=Recipe.sft_plan_share,
                   help="share of Stage III's text-to-image pairs that first write the scene's drawing plan (each "
                        "object's colour, shape and grid cell) and then the image, which lets 'januspro generate "
                        "--plan' plan before drawing (default: %(default)s)")
    p.add_argument("--kind-balance", type=float, default=Recipe.default_style().kind_balance,
                   help="share of the understanding chats whose questions are drawn kind by kind, every question "
                        "kind a scene offers equally likely, instead of uniformly over its questions (~40%% counts, "
                        "~6%% relations, ~4%% 'where'; default: %(default)s)")
    p.add_argument("--hard-negatives", type=float, default=Recipe.default_style().hard_negatives,
                   help="share of the understanding chats' 'Is there ...?' questions about an absent object that "
                        "ask for a near miss of a present one (its shape in another colour or its colour on another "
                        "shape), the kind POPE's adversarial split asks; default: %(default)s)")
    p.add_argument("--simple-scenes", type=float, default=Recipe.default_style().simple_scenes,
                   help="share of the clean text-to-image scenes (Stages II and III) drawn from three simple "
                        "families: one object, two objects of two shapes, 2-4 objects of one shape (default: "
                        "%(default)s)")
    p.add_argument("--describe-share", type=float, default=Recipe.default_style().describe_share,
                   help="share of the understanding chats that are one 'Describe the image.' turn answered with a "
                        "caption, which teaches the model to judge its own drafts for --best-of generation "
                        "(default: %(default)s)")
    p.add_argument("--match-share", type=float, default=Recipe.default_style().match_share,
                   help="share of the understanding chats that open with 'Does the image show <prompt>?' about a "
                        "GenEval-style prompt, true or false of the image by GenEval's rule, which teaches the model "
                        "to judge its own drafts for --best-of generation with --judge ask (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _cmd_recipe(argv: list[str]) -> int:
    from dataclasses import replace
    from pathlib import Path

    from .training.recipe import Recipe, parse_sets

    args = _recipe_parser().parse_args(argv)
    if args.data_scale <= 0 or args.eval_items < 1:
        raise SystemExit("error: --data-scale must be > 0 and --eval-items >= 1")
    try:
        style = replace(Recipe.default_style(), caption_order=args.caption_order, kind_balance=args.kind_balance,
                        hard_negatives=args.hard_negatives, simple_scenes=args.simple_scenes,
                        describe_share=args.describe_share, match_share=args.match_share)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    recipe = Recipe(Path(args.out), parse_sets(args.set), vq=args.vq, data_scale=args.data_scale,
                    eval_items=args.eval_items, progress=not args.quiet, style=style,
                    sft_caption_order=args.sft_caption_order, sft_match_share=args.sft_match_share,
                    sft_look_share=args.sft_look_share, sft_look_exist_share=args.sft_look_exist_share,
                    sft_look_space_share=args.sft_look_space_share, sft_look_cite_share=args.sft_look_cite_share,
                    sft_count_chats=args.sft_count_chats, sft_plan_share=args.sft_plan_share,
                    plan_share=args.plan_share,
                    eval_best_of=args.eval_best_of)
    state = recipe.run(until=args.until, only=args.only or None)
    total = sum(p["seconds"] for p in state["parts"].values())
    print(f"recipe parts done: {', '.join(state['parts'])} ({total / 60:.1f} min in all); see {args.out}/recipe.json")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import os

    try:
        import uvicorn

        from .serve.app import create_app
    except ImportError:
        raise SystemExit("januspro serve needs the [serve] extra: pip install 'januspro[serve]'") from None
    if args.queue_size < 1 or args.max_batch < 1 or args.timeout <= 0 or args.max_body_mb <= 0:
        raise SystemExit("error: --queue-size and --max-batch must be >= 1, --timeout and --max-body-mb > 0")
    if args.image_dir and not os.path.isdir(args.image_dir):
        raise SystemExit(f"error: --image-dir {args.image_dir} is not a folder")
    from .checkpoint import resolve_model_path
    from .checkpoint.defaults import read_defaults

    defaults = read_defaults(resolve_model_path(args.model))
    model, proc = _load(args)
    api_key = args.api_key or os.environ.get("JANUSPRO_API_KEY") or None
    app = create_app(model, proc, model_id=args.model_id or _model_name(args.model), api_key=api_key,
                     defaults=defaults,
                     image_dir=args.image_dir, queue_size=args.queue_size, max_batch=args.max_batch,
                     request_timeout=args.timeout, max_body_bytes=int(args.max_body_mb * (1 << 20)))
    modes = ", ".join(f"{k} {'on' if v else 'off'}" for k, v in defaults.to_dict().items())
    print(f"serving {args.model} on http://{args.host}:{args.port}/ (API key {'on' if api_key else 'off'}; "
          f"default modes: {modes})")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning" if args.quiet else "info")
    return 0


def _model_name(source: str) -> str:
    from pathlib import Path

    return Path(source).name or str(source)


def _cmd_train(args: argparse.Namespace) -> int:
    from .training import load_run_config, train

    if args.config == "recipe":
        return _cmd_recipe(args.overrides)
    cfg = load_run_config(args.config, args.overrides)
    stats = train(cfg)
    if stats:
        s = stats[-1]
        detail = ", ".join(f"{k} {v:.4g}" for k, v in s.parts.items())
        print(f"step {s.step}: loss {s.loss:.4f} ({detail}); model written to {cfg.train.out}/model")
    else:
        print(f"nothing to do: {cfg.train.out} is already at step {cfg.train.steps}")
    return 0


def _progress(desc: str, unit: str, quiet: bool):
    """A progress bar and the ``(done, total)`` callback that drives it."""
    from tqdm.auto import tqdm

    bar = tqdm(desc=desc, unit=unit, disable=quiet)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return bar, update


def _cmd_eval_geneval(args: argparse.Namespace) -> int:
    from .eval.geneval import run_geneval

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    params = _image_params(args, args.n, args.seed or 0)
    model, proc = _load(args)
    bar, progress = _progress("geneval", "prompt", args.quiet)
    results = run_geneval(model, proc, args.data, args.out, params, args.scorer, progress, args.batch_size)
    bar.close()
    if "scores" in results:
        s = results["scores"]
        print(f"overall {s['overall']:.3f}; " + ", ".join(f"{k} {v:.3f}" for k, v in s["per_tag"].items()))
    print(f"wrote GenEval layout and results.json to {args.out}")
    return 0


def _cmd_eval_pope(args: argparse.Namespace) -> int:
    from .eval.pope import run_pope

    model, proc = _load(args)
    bar, progress = _progress("pope", "question", args.quiet)
    results = run_pope(model, proc, args.data, args.images, args.out, args.batch_size, suffix=args.prompt_suffix,
                       progress=progress, look=_look(args))
    bar.close()
    for split, m in results["scores"].items():
        print(f"{split}: accuracy {m['accuracy']:.3f}, precision {m['precision']:.3f}, recall {m['recall']:.3f}, "
              f"F1 {m['f1']:.3f}, yes-ratio {m['yes_ratio']:.3f}")
    return 0


def _cmd_eval_understanding(args: argparse.Namespace) -> int:
    """mme, mmbench, mmmu, gqa and vqa: answer, score, print the headline numbers."""
    from .generation.text import TextGenParams

    TextGenParams(max_new_tokens=args.max_new_tokens)  # its checks, before the model loads
    model, proc = _load(args)
    bar, progress = _progress(args.eval_command, "question", args.quiet)
    if args.eval_command == "mme":
        from .eval.mme import run_mme

        res = run_mme(model, proc, args.data, args.images, args.out, args.batch_size, progress=progress, max_new_tokens=args.max_new_tokens)
        s = res["scores"]
        print(f"MME perception {s['perception']:.1f}, cognition {s['cognition']:.1f}")
    elif args.eval_command == "mmmu":
        from .eval.mmmu import run_mmmu

        res = run_mmmu(model, proc, args.data, args.out, progress=progress, max_new_tokens=args.max_new_tokens)
        print(f"MMMU accuracy {res['scores']['accuracy']:.3f} ({res['scores']['n_questions']} questions)")
    elif args.eval_command == "mmbench":
        from .eval.mmbench import run_mmbench

        res = run_mmbench(model, proc, args.data, args.out, args.batch_size, progress=progress, max_new_tokens=args.max_new_tokens)
        s = res["scores"]
        print(f"MMBench circular accuracy {s['circular_accuracy']:.3f} ({s['n_questions']} questions), "
              f"single pass {s['single_pass_accuracy']:.3f}")
    else:
        from .eval.vqa import GQA_SUFFIX, run_vqa

        gqa = args.eval_command == "gqa"
        res = run_vqa(model, proc, args.data, args.images, args.out, args.batch_size,
                      suffix=GQA_SUFFIX if gqa else "", progress=progress, benchmark=args.eval_command,
                      look=_look(args), max_new_tokens=args.max_new_tokens)
        s = res["scores"]
        extra = "".join(f", {k} {s[k]:.3f}" for k in ("seen", "heldout") if s.get(k) is not None)
        print(f"{args.eval_command} accuracy {s['accuracy']:.3f}{extra}")
    bar.close()
    print(f"results written to {args.out}/results.json")
    return 0


def _cmd_eval_dpg(args: argparse.Namespace) -> int:
    from .eval.dpg import run_dpg

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    params = _image_params(args, 4, args.seed or 0)
    model, proc = _load(args)
    bar, progress = _progress("dpg", "prompt", args.quiet)
    res = run_dpg(model, proc, args.data, args.out, params, args.limit, progress, args.batch_size)
    bar.close()
    print(f"{res['n_prompts']} 2x2 grids in {args.out} (score them with DPG-Bench's compute_dpg_bench.py "
          f"--resolution {res['resolution']} --pic-num 4)")
    return 0


def _cmd_eval_report(args: argparse.Namespace) -> int:
    from .eval.report import report

    text = report(args.runs)
    print(text)
    if args.out:
        from pathlib import Path

        Path(args.out).write_text(text)
    return 0


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="janus-pro-shapes",
                   help="model folder (any supported layout), hub id, or a shipped model's name (default: "
                        "janus-pro-shapes, the small shapes-world model inside the package)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available, else cpu)")
    p.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default=None,
                   help="weight dtype (default: bf16 on GPU, fp32 on CPU)")
    p.add_argument("--compile", action="store_true", help="torch.compile the decode step (CUDA graphs on GPU)")
    p.add_argument("--seed", type=int, default=None, help="random seed: the same seed gives the same output")


def _add_image_sampling_args(p: argparse.ArgumentParser, with_n: bool = True) -> None:
    from .generation.rerank import JUDGES

    if with_n:
        p.add_argument("-n", type=int, default=4, help="images per prompt (default: 4)")
    p.add_argument("--cfg", type=float, default=5.0,
                   help="classifier-free guidance weight; 1 disables guidance, 0 is unconditional (default: 5)")
    p.add_argument("--cfg-end", type=float, default=None,
                   help="guidance schedule: the weight moves linearly from --cfg at the first image code to this "
                        "value at the last (default: constant --cfg)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature; 0 is greedy (default: 1)")
    p.add_argument("--top-k", type=int, default=0, help="sample only among the k likeliest codes (default: off)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default: 1, off)")
    p.add_argument("--best-of", type=int, default=1, metavar="K",
                   help="draw K candidates for every image and keep the one the model itself, reading it through "
                        "its understanding path, judges best (see --judge); costs about K times the generation "
                        "time (default: 1, plain sampling)")
    p.add_argument("--judge", choices=JUDGES, default="describe",
                   help="how --best-of judges a candidate: 'describe' scores how likely the model describes it with "
                        "the prompt; 'ask' asks it 'Does the image show <prompt>?' and scores log p(yes) - "
                        "log p(no), for models trained on such questions (default: describe)")
    p.add_argument("--plan", action=argparse.BooleanOptionalAction, default=None,
                   help="let the model first write a drawing plan after the prompt (for janus-pro-shapes: each "
                        "object's colour, shape and grid cell) and then draw it, for models trained with plans "
                        "(generate prints each image's plan); default: the model's, from the 'januspro' section "
                        "of its generation_config.json (on for janus-pro-shapes, off for models without it)")
    p.add_argument("--plan-temperature", type=float, default=0.0,
                   help="sampling temperature of the plan's text; 0 is greedy: the same plan for every image of a "
                        "prompt (default: 0)")


def build_parser() -> argparse.ArgumentParser:
    from .shapes.language import ORDERS

    p = argparse.ArgumentParser(
        prog="januspro",
        description="Janus-Pro in PyTorch: load the released checkpoints, convert between layouts, and more.")
    p.add_argument("--version", action="version", version=f"januspro {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("convert", help="convert a model folder between layouts",
                       description="Convert a Janus model folder (our layout, DeepSeek's official layout or "
                                   "transformers' layout) into another layout: safetensors shards, config.json and "
                                   "the tokenizer files.")
    c.add_argument("src", help="source model folder or hub id (downloaded only when online)")
    c.add_argument("dst", help="output folder (created)")
    c.add_argument("--to", choices=["ours", "official", "transformers"], default="ours",
                   help="layout to write (default: ours)")
    c.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default=None,
                   help="cast floating-point weights (default: keep the stored dtype)")
    c.add_argument("--shard-gb", type=float, default=4.0, help="maximum shard size in GiB (default: 4)")
    c.set_defaults(func=_cmd_convert)

    i = sub.add_parser("info", help="print a model folder's layout, size and config",
                       description="Read a model folder's config.json (any supported layout) and print its layout, "
                                   "parameter count and the parsed config as JSON. Reads no weights.")
    i.add_argument("model", help="model folder or hub id")
    i.set_defaults(func=_cmd_info)

    g = sub.add_parser("generate", help="text-to-image generation",
                       description="Generate images from text prompts with classifier-free guidance and write PNGs "
                                   "plus a contact sheet (grid.png). Several prompts run as one batch.")
    g.add_argument("prompt", nargs="+", help="one or more text prompts")
    _add_model_args(g)
    _add_image_sampling_args(g)
    g.add_argument("--negative-prompt", default=None, help="text that replaces the unconditional prompt")
    g.add_argument("--out", default="generated", help="output folder (default: ./generated)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.set_defaults(func=_cmd_generate)

    ch = sub.add_parser("chat", help="ask about images (understanding), streaming the answer",
                        description="Answer a question about zero or more images, streaming the answer. Without a "
                                    "question, starts an interactive multi-turn chat (the images belong to the first "
                                    "turn).")
    ch.add_argument("question", nargs="?", default=None, help="the question (omit for interactive mode)")
    _add_model_args(ch)
    ch.add_argument("--image", action="append", default=[], metavar="PATH", help="an image file (repeatable)")
    ch.add_argument("--max-new-tokens", type=int, default=512, help="answer length limit in tokens (default: 512)")
    ch.add_argument("--temperature", type=float, default=0.0, help="sampling temperature; 0 is greedy (default)")
    ch.add_argument("--top-k", type=int, default=0, help="top-k filter (default: off)")
    ch.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default: 1, off)")
    ch.add_argument("--repetition-penalty", type=float, default=1.0, help="penalty > 1 discourages repeats")
    ch.add_argument("--system-prompt", default=None,
                    help="system prompt (default: DeepSeek's understanding prompt; '' for none)")
    _add_look_arg(ch)
    ch.set_defaults(func=_cmd_chat)

    sv = sub.add_parser("serve", help="OpenAI-compatible HTTP API + web page",
                        description="Serve the model over HTTP: POST /v1/chat/completions (streaming too), POST "
                                    "/v1/images/generations, GET /v1/models, /health, /metrics, and a web page at /. "
                                    "Requests that arrive together run as one batch; a full queue answers 429.")
    _add_model_args(sv)
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    sv.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    sv.add_argument("--api-key", default=None,
                    help="require 'Authorization: Bearer KEY' on every route but /health and the page "
                         "(default: $JANUSPRO_API_KEY, else no key)")
    sv.add_argument("--model-id", default=None, help="model name reported by the API (default: the --model name)")
    sv.add_argument("--image-dir", default=None,
                    help="allow chat images given as local paths inside this folder (default: data: URLs only)")
    sv.add_argument("--queue-size", type=int, default=64, help="requests that may wait; more get 429 (default: 64)")
    sv.add_argument("--max-batch", type=int, default=16, help="rows (conversations or images) per batch (default: 16)")
    sv.add_argument("--timeout", type=float, default=600, help="per-request timeout in seconds (default: 600)")
    sv.add_argument("--max-body-mb", type=float, default=20, help="request body limit in MiB (default: 20)")
    sv.add_argument("--quiet", action="store_true", help="log warnings only")
    sv.set_defaults(func=_cmd_serve)

    t = sub.add_parser("train", help="train a stage from a YAML run config",
                       description="Run one training stage described by a YAML config (see configs/), with "
                                   "'section.key=value' overrides after it, e.g. 'optim.lr=1e-4 train.steps=500'. "
                                   "Resumes from OUT/checkpoint.pt when it exists; writes OUT/log.jsonl and the "
                                   "trained model folder OUT/model. 'januspro train recipe shapes' runs "
                                   "the whole janus-pro-shapes recipe instead (see 'januspro train recipe --help').")
    t.add_argument("config", help="run config YAML, or 'recipe'")
    t.add_argument("overrides", nargs=argparse.REMAINDER, help="section.key=value overrides (for recipe: its options)")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("eval", help="run a benchmark (geneval, dpg, pope, mme, mmbench, mmmu, gqa, vqa) or a report",
                       description="Run a benchmark and write the official output layout plus results.json "
                                   "(recipe, model, config hash, version, hardware).")
    esub = e.add_subparsers(dest="eval_command", metavar="BENCH", required=True)
    ge = esub.add_parser("geneval", help="GenEval: N samples per prompt in GenEval's folder layout",
                         description="Generate N samples per prompt of GenEval's evaluation_metadata.jsonl into "
                                     "GenEval's layout (OUT/<index>/metadata.jsonl, OUT/<index>/samples/NNNN.png) "
                                     "so the official scorer can run on it; resumable; '--scorer shapes' scores "
                                     "shapes-world prompts exactly.")
    _add_model_args(ge)
    ge.add_argument("--data", required=True, help="evaluation_metadata.jsonl")
    ge.add_argument("--out", required=True, help="output folder")
    _add_image_sampling_args(ge)
    ge.add_argument("--scorer", choices=["none", "shapes"], default="none",
                    help="score with the exact shapes detector (shapes-world prompts only)")
    ge.add_argument("--batch-size", type=int, default=4,
                    help="prompts generated together, each from its own seed (seed + prompt index), so the batch size "
                         "changes only the speed; the images of all of them and their KV cache are held at once "
                         "(default: 4)")
    ge.add_argument("--quiet", action="store_true")
    ge.set_defaults(func=_cmd_eval_geneval)
    po = esub.add_parser("pope", help="POPE: yes/no object existence, greedy answers, POPE's metrics",
                         description="Answer POPE question files (JSON lines with question_id, image, text, "
                                     "label) greedily and score them with POPE's rules per split; resumable.")
    _add_model_args(po)
    po.add_argument("--data", nargs="+", required=True, help="POPE question files (e.g. coco_pope_random.json)")
    po.add_argument("--images", required=True, help="folder holding the images the questions name")
    po.add_argument("--out", required=True, help="output folder")
    po.add_argument("--batch-size", type=int, default=8, help="questions per batch (default: 8)")
    po.add_argument("--prompt-suffix", default="Answer the question using a single word or phrase.",
                    help="instruction after each question (default: the LLaVA-style short-answer one; '' for none)")
    _add_look_arg(po)
    po.add_argument("--quiet", action="store_true")
    po.set_defaults(func=_cmd_eval_pope)
    dp = esub.add_parser("dpg", help="DPG-Bench: one 2x2 grid of 4 samples per prompt, named as its scorer expects",
                         description="Generate 4 samples per DPG-Bench prompt file (prompts/<name>.txt) into "
                                     "OUT/<name>.png as a 2x2 grid without padding; resumable; prompt i uses seed "
                                     "seed + i. Score with DPG-Bench's own compute_dpg_bench.py.")
    _add_model_args(dp)
    dp.add_argument("--data", required=True, help="DPG-Bench prompt folder (prompts/*.txt)")
    dp.add_argument("--out", required=True, help="output folder")
    dp.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    _add_image_sampling_args(dp, with_n=False)
    dp.add_argument("--batch-size", type=int, default=4,
                    help="prompts generated together, each from its own seed (seed + prompt index), so the batch size "
                         "changes only the speed; the images of all of them and their KV cache are held at once "
                         "(default: 4)")
    dp.add_argument("--quiet", action="store_true")
    dp.set_defaults(func=_cmd_eval_dpg)
    for name, helptext, desc, needs_images in (
        ("mme", "MME: yes/no questions per subtask, MME's acc + acc+ scores",
         "Answer MME's question lists (Your_Results/<subtask>.txt: image, question, answer) greedily; writes "
         "the lists with responses appended (the input of MME's calculation.py) and results.json with every "
         "subtask's score and the perception / cognition sums; resumable.", True),
        ("mmbench", "MMBench: multiple choice with circular evaluation",
         "Answer MMBench's TSV (base64 images inside) once per circular shift of the options; a question is "
         "right only when every shift is; per-category accuracy; resumable.", False),
        ("mmmu", "MMMU: multiple choice and open questions with MMMU's answer parsing",
         "Answer MMMU questions (JSON lines with the dataset's fields and image_1.. paths, or the dataset's "
         "Parquet files when pyarrow is installed) greedily; MMMU's parsing (random option when none is named, "
         "seeded by question id); accuracy; resumable.", False),
        ("gqa", "GQA: short answers, exact match",
         "Answer GQA's question JSON (e.g. testdev_balanced_questions.json; images <imageId>.jpg) with the "
         "instruction 'Answer the question using a single word or phrase.'; exact match after normalisation.",
         True),
        ("vqa", "short-answer VQA from a JSONL (the shapes world's VQA suite)",
         "Answer JSON lines {question_id, image, question, answer} greedily; exact match after normalisation, "
         "per kind and for seen / held-out items when the lines say.", True),
    ):
        ep = esub.add_parser(name, help=helptext, description=desc)
        _add_model_args(ep)
        ep.add_argument("--data", required=True, help="question file (folder of lists for mme)")
        if needs_images:
            ep.add_argument("--images", required=True, help="image folder")
        ep.add_argument("--out", required=True, help="output folder")
        ep.add_argument("--batch-size", type=int, default=8, help="questions per batch (default: 8)")
        ep.add_argument("--max-new-tokens", type=int, default=8 if name in ("mme", "mmbench") else 16,
                        help="answer length limit in tokens (default: %(default)s)")
        if name in ("gqa", "vqa"):
            _add_look_arg(ep)
        ep.add_argument("--quiet", action="store_true")
        ep.set_defaults(func=_cmd_eval_understanding)
    rp = esub.add_parser("report", help="runs side by side with the paper's numbers",
                         description="Put several eval output folders (or folders of them) side by side in a "
                                     "markdown table, with Janus-Pro-1B / 7B's published numbers as reference rows.")
    rp.add_argument("runs", nargs="+", help="eval output folders")
    rp.add_argument("--out", default=None, help="also write the table to this file")
    rp.set_defaults(func=_cmd_eval_report)

    d = sub.add_parser("data", help="synthetic shapes-world data and its exact scorer",
                       description="Write shapes-world datasets, or score images in GenEval's folder layout.")
    dsub = d.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    sh = dsub.add_parser("shapes", help="write a shapes-world dataset (JSONL + PNG)",
                         description="Write N items of one task as JSONL (+ PNG images). Tasks: t2i (prompt, "
                                     "image), classname (single objects and their class names), und (chat "
                                     "conversations about an image), text (text-only corpus), geneval "
                                     "(GenEval-style prompts with metadata, N per category, plus reference "
                                     "renders in GenEval's layout), pope (N images, yes/no questions in three "
                                     "splits). The same seed gives byte-identical files.")
    sh.add_argument("--task", required=True, choices=["t2i", "classname", "und", "text", "geneval", "pope"])
    sh.add_argument("--n", type=int, required=True, help="number of items (geneval: prompts per category)")
    sh.add_argument("--seed", type=int, default=0)
    sh.add_argument("--out", required=True, help="output folder")
    sh.add_argument("--resolution", type=int, default=64, help="image side in pixels (default: 64)")
    sh.add_argument("--variant", choices=["synthetic", "real", "mixed"], default="synthetic",
                    help="t2i only: clean exact captions, noisy 'real' alt-text, or half and half")
    sh.add_argument("--synthetic-jitter", type=float, default=1.0,
                    help="t2i/classname: placement jitter of the clean images, 0-1 (0 puts every object at its "
                         "grid-cell centre; the 'real' images are always jittered; default: 1)")
    sh.add_argument("--max-turns", type=int, default=3,
                    help="und: most questions in one conversation (default: 3)")
    sh.add_argument("--single-turn-share", type=float, default=0.7,
                    help="und: share of conversations with one question (default: 0.7)")
    sh.add_argument("--hard-negatives", type=float, default=0.0,
                    help="und: share of 'Is there ...?' questions about a near miss of a present object, i.e. "
                         "its shape in another colour or its colour on another shape (default: 0)")
    sh.add_argument("--kind-balance", type=float, default=0.0,
                    help="und: share of conversations whose questions are drawn kind by kind (colour, shape, "
                         "count, exist, relation, where, describe: every kind the scene offers equally likely) "
                         "instead of uniformly over the scene's questions, of which ~40%% are counts (default: 0)")
    sh.add_argument("--describe-share", type=float, default=0.0,
                    help="und: share of conversations that are one 'Describe the image.' turn answered with a "
                         "caption drawn like the t2i captions (default: 0)")
    sh.add_argument("--match-share", type=float, default=0.0,
                    help="und: share of conversations that open with 'Does the image show <prompt>?' about a "
                         "GenEval-style prompt (a shape, two shapes, a count, a coloured shape, a relation, two "
                         "coloured shapes), true or false of the image by GenEval's rule and answered yes or no; "
                         "it trains the judge of --best-of K --judge ask (default: 0)")
    sh.add_argument("--simple-scenes", type=float, default=0.0,
                    help="t2i: share of the clean scenes drawn from three simple families (one object; two "
                         "objects of two shapes; 2-4 objects of one shape) instead of 1-4 random objects, which "
                         "rarely show the last two (default: 0)")
    sh.add_argument("--caption-order", choices=ORDERS, default="mixed",
                    help="t2i: order of the object groups in a caption: 'mixed' (shape order or shuffled, half "
                         "each) or 'raster' (where the image's codes reach them: top row first, left to right; "
                         "default: mixed)")
    sh.add_argument("--workers", type=int, default=1,
                    help="t2i/classname/und/text: processes that render and save the items (the files are the "
                         "same as with one; default: 1)")
    sh.add_argument("--quiet", action="store_true", help="no progress bar")
    sh.set_defaults(func=_cmd_data_shapes)
    sc = dsub.add_parser("score", help="score a GenEval-layout folder with the exact shapes detector",
                         description="Score generated images laid out like GenEval's (<index>/metadata.jsonl, "
                                     "<index>/samples/NNNN.png) with the shapes detector and GenEval's rules; "
                                     "writes results.jsonl, report.json and report.md.")
    sc.add_argument("folder")
    sc.add_argument("--out", default=None, help="report folder (default: the scored folder)")
    sc.set_defaults(func=_cmd_data_score)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    from .checkpoint import CheckpointError
    from .config import ConfigError
    from .processing import ConversationError, ImageError, TokenizerError
    from .training import RunConfigError, TrainingError
    from .training.data import DataError

    try:
        return int(args.func(args))
    except (CheckpointError, ConfigError, ConversationError, ImageError, TokenizerError, ValueError,
            FileNotFoundError, RunConfigError, TrainingError, DataError) as e:
        print(f"januspro {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
