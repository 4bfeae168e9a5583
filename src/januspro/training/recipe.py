"""The janus-pro-shapes recipe: the whole pipeline of a Janus-Pro trained from scratch, on the shapes world.

``januspro train recipe shapes --out DIR`` runs the parts below in order. Each part records its wall time in
``DIR/recipe.json`` when it finishes and is skipped when it is already recorded there, so a stopped run goes
on where it stopped (a part that was cut off resumes from its own checkpoint).

  data        shapes-world datasets (t2i half clean / half noisy "real", understanding chats, text, class names)
              and the held-out evaluation suites (GenEval-style prompts, POPE, VQA)
  tokenizer   byte-level BPE for the world's language + Janus' special tokens
  vq          the VQ image tokenizer (reconstruction + codebook losses, dead-code restart), then a polish run
  siglip      the understanding ViT with SigLIP's sigmoid loss on image-caption pairs (Stages I and II)
  siglip_sft  a second one whose tokens also learn the object under their patch (dense loss, weight 4): the
              understanding encoder of Stage III
  text        text-only pretraining of the LLM
  assemble    one model folder from the three components (the starting point of Stage I)
  stage1      adaptors + image head, LLM frozen, und:text:t2i = 1:0:3 on class-name images
  stage2      unified pretraining, 2:3:5, real:synthetic text-to-image 1:1
  stage3      supervised fine-tuning, 5:1:4, with siglip_sft's ViT in place of siglip's; the understanding
              encoder trains too, clean captions only; half its chats open with a judge turn ("Does the image
              show <prompt>?") and 8,000 counting chats join them; constant LR, then a linear cool-down over the
              last 1,200 steps
  eval        shapes-GenEval, shapes-POPE and VQA on combinations held out from training
  package     the shipped folder (bf16 safetensors, config, tokenizer) + model card with plots and scores

Every trained part is an ordinary run config of the one trainer (``januspro train``); the settings of each
are in :data:`PARTS` and can be changed with ``--set part.section.key=value``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..shapes.datasets import DataStyle
from ..system import atomic_write

if TYPE_CHECKING:
    from .config import RunConfig

ORDER = ("data", "tokenizer", "vq", "vq_polish", "siglip", "siglip_sft", "text", "assemble", "stage1", "stage2", "stage3",
         "eval", "package")

# Dataset sizes (items) written by the data part.
DATA_SIZES = {"t2i": 200000, "und": 40000, "text": 20000, "classname": 4000}

EVAL_SEED = 1000  # evaluation suites are drawn from another seed than the training data
VALIDATION_SEED = 2000  # the prompts on which the sampling settings are chosen
# shapes-GenEval is also scored with each image the best of this many candidates by the model's "ask" judge
# ("Does the image show <prompt>?", generation/rerank.py); it costs about this many times the plain scoring
EVAL_BEST_OF = 8
VQ_RECORDS = "recipe_parts.json"  # beside a trained vq.safetensors: the records of the runs that trained it

_COMMON = {"train.device": "cpu", "train.log_every": "10"}

# Run-config overrides of every trained part. {out}, {data}, {tok} are filled in by the recipe.
PARTS: dict[str, dict[str, str]] = {
    "vq": {"model.init": "shapes", "data.t2i": "{data}/t2i/t2i.jsonl", "stage.name": "vq",
           "data.max_items": "24000", "stage.vq_restart_every": "100", "optim.lr": "1e-3",
           "optim.warmup_steps": "100", "train.steps": "1500", "train.batch_size": "32", "train.save_every": "250",
           # fp32: the shipped model's VQ. bf16 convolutions are 1.3x faster on a 2-core Xeon with AMX and reconstruct
           # as well (held-out exact 0.95 vs 0.92, artifacts/experiments/depth/), but their codes are harder to
           # predict (Stage III image loss 1.31 vs 1.20 from the same data) for no measured GenEval gain
           # (artifacts/experiments/count-judge/)
           "train.eval_every": "500", "train.dtype": "fp32"},
    "vq_polish": {"model.init": "{out}/vq/model", "data.t2i": "{data}/t2i/t2i.jsonl", "stage.name": "vq",
                  "data.max_items": "24000", "stage.vq_restart_every": "0", "optim.lr": "3e-4",
                  "optim.decay_steps": "600", "optim.min_lr_ratio": "0.1", "train.steps": "900",
                  "train.batch_size": "32", "train.save_every": "300", "train.eval_every": "300",
                  "train.dtype": "fp32"},
    # the understanding ViT of Stages I and II. bf16 autocast where the CPU has bf16 units: 1.29x the images/s
    # of fp32 on a 2-core Xeon with AMX; the first 80k images suffice for its 76.8k samples and load 2.5x faster
    "siglip": {"model.init": "shapes", "model.tokenizer": "{tok}", "data.t2i": "{data}/t2i/t2i.jsonl",
               "data.max_items": "80000", "stage.name": "siglip", "stage.dense_weight": "1", "optim.lr": "5e-4",
               "optim.warmup_steps": "50", "train.steps": "1200", "train.batch_size": "64", "train.save_every": "200",
               "train.eval_every": "300", "train.dtype": "auto"},
    "text": {"model.init": "shapes", "model.tokenizer": "{tok}", "data.text": "{data}/text/text.jsonl",
             "data.ratio": "[0,1,0]", "data.pack_length": "256", "stage.name": "text", "optim.lr": "1e-3",
             "optim.warmup_steps": "50", "train.steps": "300", "train.batch_size": "64", "train.save_every": "100",
             "train.dtype": "auto"},
    "stage1": {"model.init": "{out}/assemble/model", "data.und": "{data}/und/und.jsonl",
               "data.t2i": "{data}/classname/classname.jsonl", "data.ratio": "[1,0,3]", "data.pack_length": "256",
               "stage.name": "stage1", "optim.lr": "1e-3", "optim.warmup_steps": "50", "train.steps": "200",
               "train.batch_size": "64", "train.save_every": "100", "train.dtype": "auto"},
    "stage2": {"model.init": "{out}/stage1/model", "data.und": "{data}/und/und.jsonl",
               "data.text": "{data}/text/text.jsonl", "data.t2i": "{data}/t2i/t2i_stage2.jsonl", "data.ratio": "[2,3,5]",
               "data.pack_length": "256", "stage.name": "stage2", "optim.lr": "5e-4", "optim.warmup_steps": "100",
               "train.steps": "2400", "train.batch_size": "64", "train.save_every": "100", "train.dtype": "auto"},
    "stage3": {"model.init": "{out}/stage2/model", "model.vision": "{out}/siglip_sft/model",
               "data.und": "{data}/und/und_sft.jsonl",
               "data.text": "{data}/text/text.jsonl", "data.t2i": "{data}/t2i/t2i_synthetic.jsonl",
               "data.ratio": "[5,1,4]", "data.pack_length": "256", "stage.name": "stage3", "optim.lr": "2e-4",
               "optim.warmup_steps": "0", "optim.decay_steps": "1200", "optim.min_lr_ratio": "0.05", "train.steps": "3400", "train.batch_size": "64", "train.save_every": "100",
               # compiled decoder layers (eager, with a warning, where no C++ compiler is found): Stage III
               # steps 1.10x faster here (artifacts/experiments/stage3-length/)
               "train.dtype": "auto", "train.compile": "true"},
}
# the understanding ViT Stage III starts from: the siglip part's settings, but every token also learns the object
# under its patch with 4x the weight (token shape probe 0.91 vs 0.57). Against Stage III without it from the same
# Stage II model: VQA 0.68 -> 0.74 (run s32) and 0.66 -> 0.76 (s31-d4swap), GenEval -0.01 both times; in the model
# from Stage I on it cost POPE 0.06-0.08 (artifacts/experiments/siglip-sft/, self-rerank/ section 3, dense4-*)
PARTS["siglip_sft"] = {**PARTS["siglip"], "stage.dense_weight": "4"}


class RecipeError(ValueError):
    """A recipe that cannot run as asked."""


def _write_atomic(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


@dataclass
class Recipe:
    out: Path
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)  # part -> {section.key: value}
    vq: str = ""  # use these trained VQ weights (vq.safetensors) instead of training the VQ parts
    data_scale: float = 1.0  # multiply the dataset sizes (small runs for tests)
    eval_items: int = 24  # GenEval prompts per category; POPE images = 4x; VQA questions = 12x
    eval_best_of: int = EVAL_BEST_OF  # also score shapes-GenEval as the best of this many by the "ask" judge; 1: not
    progress: bool = True
    log: Callable[[str], None] = print
    # the training-data design; the plain data made the shipped model. A canonical-layout / multi-question /
    # near-miss style was worse at the compute it got (artifacts/experiments/canonical-style/README.md)
    style: DataStyle = field(default_factory=lambda: Recipe.default_style())
    # Stage III's clean captions list their object groups in this order (DataStyle.caption_order); Stage II's
    # text-to-image data keeps the style's own order
    sft_caption_order: str = "raster"
    # share of Stage III's understanding chats opened by "Does the image show <prompt>?" (the judge of best-of-K
    # with judge "ask"; shapes.datasets.match_rows); Stages I-II keep the plain chats. Against Stage III without
    # them from the same Stage II model (run s32 -> s33-match): POPE F1 0.840/0.829/0.688 -> 0.889/0.879/0.717, VQA
    # 0.740 -> 0.753, plain GenEval 0.434 -> 0.420, ask-judged best of 8 0.507 -> 0.535; share 1.0 judged about as
    # well and lost VQA 0.03 (artifacts/experiments/match-judge/)
    sft_match_share: float = 0.5
    # share of Stage III's understanding chats (the judge-opened and counting ones included) that open with a look
    # turn: "List the objects." answered with the scene's inventory in the drawing plans' words (colour, shape, grid
    # cell; shapes.datasets.look_rows), so that understanding can look first (TextGenParams.look)
    sft_look_share: float = 0.5
    # share of those look-opened chats that next ask whether the image shows an object, present or absent but
    # easily confused (shapes.datasets.look_exist_turn), so that answering from the inventory pays. Against the
    # same Stage III without look turns (run s35-plan2 -> s36-look2): POPE F1 0.904/0.906/0.716 -> 0.929/0.920/0.825
    # answering directly and 0.941/0.939/0.914 looking first, VQA 0.771 -> 0.809 / 0.837; look turns alone (share
    # 0, run s36-look) gave right inventories that the answers ignored (artifacts/experiments/look/)
    sft_look_exist_share: float = 1.0
    # share of the look-opened chats that next ask where one object is relative to another (a relation yes/no or a
    # "where" question; shapes.datasets.look_space_turn): the inventory's grid cells settle most of them. Off: at
    # share 1 (run s37-space) the model still answered them at chance after the true list (0.50 relation, 0.28
    # "where"; a drill of 300 steps on them alone, too), and GenEval --plan fell 0.799 -> 0.696
    # (artifacts/experiments/look/, Result 3)
    sft_look_space_share: float = 0.0
    # share of the look-opened chats whose colour and shape answers first cite the inventory entry of the object
    # asked about ("What color is the circle?" -> "blue circle 2 1: blue"; shapes.language.cited_answer); scorers
    # read the answer after the citation (strip_citation). A 300-step drill from the shipped model with citations
    # for every kind fixed colour questions, held-out pairs included (0.80 / 0.65 -> 1.00 / 0.87 seen / held-out)
    # and cost counting; citing colour and shape alone (what this share does): VQA --look 0.837 -> 0.878 but GenEval
    # with plans 0.799 -> 0.552, and on Stage III's mix generation kept but VQA 0.823 (artifacts/experiments/cite/).
    # Off until a whole Stage III with it is measured
    sft_look_cite_share: float = 0.0
    # counting chats added to Stage III's chats (shapes.judge.count_chat: a scene of 1-6 objects of one shape beside
    # 0-2 others, "Does the image show <n> <shape>s?" and "How many <shape>s are there?"); scaled by data_scale.
    # Against the same Stage III without them (run s34 -> s34-count): the ask judge's counting AUC 0.55 -> 0.63,
    # its best of 8 0.580 -> 0.592 (recipe eval 0.571 -> 0.601), POPE F1 -0.01/-0.03/-0.00, VQA -0.01
    # (artifacts/experiments/count-judge/)
    sft_count_chats: int = 8000
    # share of Stage III's text-to-image pairs whose assistant turn first writes the scene's drawing plan ("red circle
    # 0 2, blue square 1 1": colour, shape, grid cell; shapes.language.layout_plan) and then the image codes, so that
    # generation with ImageGenParams(plan=True) can plan before drawing (generation/plan.py)
    sft_plan_share: float = 0.5
    # the same for Stage II's text-to-image pairs (clean and noisy alike; t2i_stage2.jsonl). Against the same Stages
    # II-III without plans (run s34-count -> s35-plan2), shapes-GenEval 0.443 -> 0.625 plain and 0.771 drawn after the
    # model's own greedy plan; plans in Stage III alone (run s35-plan): 0.443 plain, 0.576 planned
    # (artifacts/experiments/plan/)
    plan_share: float = 0.5

    def __post_init__(self) -> None:
        try:
            self.sft_style()
        except ValueError as e:
            raise RecipeError(f"sft_caption_order={self.sft_caption_order!r}: {e}") from None
        if not 0.0 <= self.sft_match_share <= 1.0:
            raise RecipeError(f"sft_match_share must be in [0, 1], got {self.sft_match_share}")
        for name in ("plan_share", "sft_plan_share", "sft_look_share", "sft_look_exist_share",
                     "sft_look_space_share", "sft_look_cite_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise RecipeError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.sft_count_chats < 0:
            raise RecipeError(f"sft_count_chats must be >= 0, got {self.sft_count_chats}")
        if self.eval_best_of < 1:
            raise RecipeError(f"eval_best_of must be >= 1, got {self.eval_best_of}")

    @staticmethod
    def default_style() -> DataStyle:
        """The data style the shipped model was trained with."""
        return DataStyle()

    def sft_style(self) -> DataStyle:
        """The data style of Stage III's clean captions."""
        return replace(self.style, caption_order=self.sft_caption_order)

    @property
    def data(self) -> Path:
        return self.out / "data"

    @property
    def tok(self) -> Path:
        return self.out / "tokenizer"

    @property
    def state_path(self) -> Path:
        return self.out / "recipe.json"

    def state(self) -> dict[str, Any]:
        if self.state_path.is_file():
            return json.loads(self.state_path.read_text())
        return {"parts": {}}

    def _record(self, part: str, seconds: float, extra: dict[str, Any] | None = None) -> None:
        self._store(part, {"seconds": round(seconds, 1), **(extra or {})})

    def _store(self, part: str, record: dict[str, Any]) -> None:
        st = self.state()
        st["parts"][part] = record
        _write_atomic(self.state_path, json.dumps(st, indent=2) + "\n")

    def run_config_overrides(self, part: str, out: Path | None = None) -> list[str]:
        """The ``section.key=value`` settings of ``part``'s run (written to ``out``, default OUT/part)."""
        values = {**_COMMON, **PARTS[part], **self.overrides.get(part, {})}
        values["train.out"] = str(out or self.out / part)
        values["train.progress"] = "true" if self.progress else "false"
        subst = {"out": str(self.out), "data": str(self.data), "tok": str(self.tok)}
        return [f"{k}={v.format(**subst)}" for k, v in values.items()]

    def run_config(self, part: str, out: Path | None = None) -> RunConfig:
        """``part``'s run config, as the recipe trains it; ``out`` writes the run elsewhere (a probe that
        trains a part again beside a finished run)."""
        from .config import load_run_config

        return load_run_config(None, self.run_config_overrides(part, out))

    # ------------------------------------------------------------------ parts
    def run(self, until: str | None = None, only: list[str] | None = None) -> dict[str, Any]:
        if until is not None and until not in ORDER:
            raise RecipeError(f"unknown part {until!r}; parts: {', '.join(ORDER)}")
        bad = [p for p in (only or []) if p not in ORDER]
        if bad:
            raise RecipeError(f"unknown part(s) {bad}; parts: {', '.join(ORDER)}")
        if self.vq and not Path(self.vq).is_file():
            raise RecipeError(f"--vq: no VQ weights file at {self.vq}")
        self.out.mkdir(parents=True, exist_ok=True)
        for part in ORDER:
            if only and part not in only:
                continue
            done = self.state()["parts"]
            if part in done:
                self.log(f"[recipe] {part}: done before ({done[part]['seconds']:.0f} s), skipped")
            elif part in ("vq", "vq_polish") and self.vq:
                self._store(part, self.reused_vq_record(part))
                self.log(f"[recipe] {part}: using the given VQ weights {self.vq}")
            else:
                self.log(f"[recipe] {part} ...")
                t0 = time.time()
                if part in ("stage2", "stage3") and not self.stage_data_current():
                    # a run whose data part predates the stages' own data, or wrote it with other settings than
                    # this recipe's: written now (seconds), and the data part's record says so
                    self.write_stage_data()
                    if "data" in done:
                        self._store("data", {**done["data"], **self.stage_data_settings()})
                    self.log(f"[recipe] wrote the data of Stages II-III ({self.stage_data_settings()})")
                extra = (self._train(part) if part in PARTS else getattr(self, f"part_{part}")()) or {}
                self._record(part, time.time() - t0, extra)
                self.log(f"[recipe] {part}: {time.time() - t0:.0f} s")
                if part == "vq_polish":
                    self.keep_vq_records()
            if part == until:
                break
        return self.state()

    def reused_vq_record(self, part: str) -> dict[str, Any]:
        """The record of a VQ part whose trained weights were given (``--vq``): the one kept beside the weights
        in ``recipe_parts.json`` (the run that trained them: steps, wall time, scores), or zero seconds."""
        kept = Path(self.vq).with_name(VQ_RECORDS)
        record = json.loads(kept.read_text()).get(part) if kept.is_file() else None
        return {**(record or {"seconds": 0.0, "note": "time not recorded with the weights"}), "reused": str(self.vq)}

    def keep_vq_records(self) -> None:
        """Beside the trained ``vq_polish/vq.safetensors``: the records of both VQ parts (``recipe_parts.json``)
        and the VQ's loss plot, which a later run that reuses these weights (``--vq``) takes over."""
        from .shapes_eval import VQ_PLOT, part_plot

        weights = self.out / "vq_polish" / "vq.safetensors"
        parts = self.state()["parts"]
        kept = {p: parts[p] for p in ("vq", "vq_polish") if p in parts}
        weights.with_name(VQ_RECORDS).write_text(json.dumps(kept, indent=2) + "\n")
        log = self.out / "vq" / "log.jsonl"
        if log.is_file():
            part_plot("vq", log, weights.with_name(VQ_PLOT))

    def part_data(self) -> dict[str, Any]:
        from dataclasses import asdict

        from ..shapes.datasets import usable_cpus, write_task

        sizes = {k: max(8, int(v * self.data_scale)) for k, v in DATA_SIZES.items()}
        style = self.style
        for task, n in sizes.items():
            jsonl = self.data / task / f"{task}.jsonl"
            stamp = self.data / task / "style.json"
            want = json.dumps({"n": n, **asdict(style)}, sort_keys=True)
            if jsonl.is_file() and stamp.is_file() and stamp.read_text() == want:
                continue  # written by an earlier, interrupted run with the same settings
            write_task(task, self.data / task, n, seed=0, variant="mixed" if task == "t2i" else "synthetic",
                       style=style, workers=usable_cpus())
            stamp.write_text(want)
        self.write_stage_data()
        write_eval_suites(self.data / "eval", self.eval_items)
        return {"items": sizes, "style": asdict(style), **self.stage_data_settings()}

    @property
    def sft_chats(self) -> Path:
        """Stage III's understanding chats (``und_sft.jsonl``)."""
        return self.data / "und" / "und_sft.jsonl"

    @property
    def stage2_pairs(self) -> Path:
        """Stage II's text-to-image pairs (``t2i_stage2.jsonl``): ``t2i.jsonl``, some with drawing plans."""
        return self.data / "t2i" / "t2i_stage2.jsonl"

    @property
    def sft_pairs(self) -> Path:
        """Stage III's text-to-image pairs (``t2i_synthetic.jsonl``): the clean half of Stage II's."""
        return self.data / "t2i" / "t2i_synthetic.jsonl"

    @property
    def stage_stamp(self) -> Path:
        """The settings the data of Stages II-III was written with (:meth:`stage_data_settings`)."""
        return self.data / "stages.json"

    @property
    def count_chats(self) -> int:
        """How many counting chats Stage III's chats get (``sft_count_chats`` times ``data_scale``, at least 8)."""
        return max(8, int(self.sft_count_chats * self.data_scale)) if self.sft_count_chats else 0

    def write_stage_data(self) -> None:
        """The data of Stages II and III. Stage II's text-to-image pairs: ``t2i.jsonl`` (clean and noisy), a share
        ``plan_share`` of them with their scene's drawing plan (:func:`~januspro.shapes.datasets.plan_rows`,
        seed 1). Stage III's text-to-image pairs: the clean ones of ``t2i.jsonl`` (re-captioned when
        ``sft_caption_order`` differs from the style's), a share ``sft_plan_share`` of them with their scene's
        drawing plan (:func:`~januspro.shapes.datasets.plan_rows`). Its understanding chats: the plain ones, a share
        ``sft_match_share`` of them opened by a judge turn (:func:`~januspro.shapes.datasets.match_rows`), then
        :attr:`count_chats` counting chats (:func:`~januspro.shapes.datasets.count_rows`; the trainer draws
        samples at random, so their place does not matter), a share ``sft_look_share`` of all of them opened by a
        look turn (:func:`~januspro.shapes.datasets.look_rows`, seed 2; a share ``sft_look_exist_share`` of those
        next ask about an object, present or easily confused, a share ``sft_look_space_share`` where one object is
        relative to another, and a share ``sft_look_cite_share`` cite the inventory entry before each colour or shape
        answer). Stamped with :meth:`stage_data_settings`."""
        from ..shapes.datasets import clean_t2i_rows, count_rows, look_rows, match_rows, plan_rows

        t2i = self.data / "t2i" / "t2i.jsonl"
        with open(t2i) as f:
            _write_atomic(self.stage2_pairs, "".join(plan_rows(f.readlines(), self.plan_share, seed=1)))
        sft = self.sft_style()
        rows = clean_t2i_rows(t2i, 0, sft if sft != self.style else None)
        _write_atomic(self.sft_pairs, "".join(plan_rows(rows, self.sft_plan_share)))
        und = self.data / "und"
        chats = match_rows(und / "und.jsonl", self.sft_match_share) + count_rows(und, self.count_chats)
        _write_atomic(self.sft_chats, "".join(look_rows(chats, self.sft_look_share, seed=2,
                                                        exist_share=self.sft_look_exist_share,
                                                        space_share=self.sft_look_space_share,
                                                        cite_share=self.sft_look_cite_share)))
        self.stamp_stage_data()

    def stamp_stage_data(self) -> None:
        """Record that the data of Stages II-III is this recipe's (:meth:`stage_data_settings`)."""
        _write_atomic(self.stage_stamp, json.dumps(self.stage_data_settings()))

    def stage_data_settings(self) -> dict[str, Any]:
        """What the data of Stages II-III is made with (stamped beside it, recorded with the data part)."""
        return {"plan_share": self.plan_share, "sft_caption_order": self.sft_caption_order,
                "sft_plan_share": self.sft_plan_share,
                "sft_match_share": self.sft_match_share, "sft_count_chats": self.count_chats,
                "sft_look_share": self.sft_look_share, "sft_look_exist_share": self.sft_look_exist_share,
                "sft_look_space_share": self.sft_look_space_share, "sft_look_cite_share": self.sft_look_cite_share}

    def stage_data_current(self) -> bool:
        """Was the data of Stages II-III written with this recipe's settings (its stamp)? A setting the stamp lacks
        (added to the recipe after the data was made) matches only at its off value (0), which is how that data
        was made."""
        if not (self.sft_chats.is_file() and self.sft_pairs.is_file() and self.stage2_pairs.is_file()
                and self.stage_stamp.is_file()):
            return False
        stamp = json.loads(self.stage_stamp.read_text())
        settings = self.stage_data_settings()
        return set(stamp) <= set(settings) and all(stamp.get(k, 0) == v for k, v in settings.items())

    def part_tokenizer(self) -> dict[str, Any]:
        from ..shapes.tokenizer import build_shapes_tokenizer

        tok = build_shapes_tokenizer(self.tok, n=max(200, int(6000 * self.data_scale)))
        return {"vocab_size": tok.vocab_size}

    def _train(self, part: str) -> dict[str, Any]:
        from .config import describe_schedule
        from .trainer import make_trainer

        trainer = make_trainer(self.run_config(part))
        stats = trainer.run()
        last = stats[-1].row() if stats else {}
        ev = trainer.evaluate() if trainer.cfg.stage.name in ("vq", "siglip") else {}  # the component parts
        return {"steps": trainer.step, "lr": describe_schedule(trainer.cfg.optim), "final": {k: round(float(v), 4) for k, v in {**last, **ev}.items()}}

    def part_assemble(self) -> dict[str, Any]:
        """The trained VQ, ViT and LLM put together, adaptors and heads fresh. The architecture is the one the
        parts were trained with (the text part's config, with the siglip part's vision tower), so a recipe
        whose parts start from another architecture (``--set text.model.init=arch.json``) assembles that."""
        import dataclasses

        import torch

        from ..checkpoint import load_model, save_model
        from ..models.janus import JanusModel
        from .trainer import load_vq_weights

        vision = load_model(self.out / "siglip" / "model", dtype="fp32")
        text = load_model(self.out / "text" / "model", dtype="fp32")
        # the adaptors and the image head follow the widths of the two towers (None: derived again)
        cfg = dataclasses.replace(text.cfg, vision=vision.cfg.vision, aligner=None, gen_aligner=None, gen_head=None)
        torch.manual_seed(0)
        model = JanusModel(cfg)
        model.init_weights_()
        load_vq_weights(model, self.vq or self.out / "vq_polish" / "vq.safetensors")
        model.vision.load_state_dict(vision.vision.state_dict())
        model.llm.load_state_dict(text.llm.state_dict())
        model.lm_head.load_state_dict(text.lm_head.state_dict())
        save_model(model, self.out / "assemble" / "model", tokenizer_dir=self.tok)
        return {}

    def part_eval(self) -> dict[str, Any]:
        import shutil

        from .shapes_eval import evaluate_shapes_model, targets_met, trained_modes

        # the eval part runs whole: samples and answers left by an earlier evaluation (of another Stage III, or
        # with other settings) would otherwise be resumed as if they were this one's
        shutil.rmtree(self.out / "eval", ignore_errors=True)
        # a model trained with plans is also scored drawing after its own plans, and one trained with look turns
        # answering after its own inventory
        modes = trained_modes(self.state())
        scores = evaluate_shapes_model(self.out / "stage3" / "model", self.data / "eval", self.out / "eval",
                                       progress=self.progress, best_of=self.eval_best_of, judge="ask", plan=modes.plan,
                                       look=modes.look)
        return {**scores, "targets": targets_met(scores)}

    def part_package(self) -> dict[str, Any]:
        from .shapes_eval import package_model

        return package_model(self, self.out / "janus-pro-shapes")


def write_eval_suites(folder: Path, per_tag: int, seed: int = EVAL_SEED) -> None:
    """GenEval-style prompts, POPE questions and VQA items drawn from a separate seed, including the
    combinations held out from training."""
    from ..shapes.datasets import write_task
    from .shapes_eval import write_vqa_suite

    write_task("geneval", folder / "geneval", per_tag, seed=seed)
    # picks the sampling settings: as many prompts as the evaluation itself, since a third of them (16 images a
    # category) ranked the settings almost in reverse (artifacts/experiments/gen-diagnosis)
    write_task("geneval", folder / "validation", per_tag, seed=VALIDATION_SEED)
    write_task("pope", folder / "pope", 4 * per_tag, seed=seed)
    write_vqa_suite(folder / "vqa", 12 * per_tag, seed=seed)


def parse_sets(items: list[str]) -> dict[str, dict[str, str]]:
    """``part.section.key=value`` strings -> {part: {section.key: value}}."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        part, dot, rest = key.partition(".")
        if not sep or not dot or "." not in rest:
            raise RecipeError(f"--set takes part.section.key=value, got {item!r}")
        if part not in PARTS:
            raise RecipeError(f"--set: {part!r} is not a trained part; trained parts: {', '.join(PARTS)}")
        out.setdefault(part, {})[rest] = value
    return out
