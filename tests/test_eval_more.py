"""MME, MMBench, GQA, DPG-Bench runners and scorers, and the report (tiny random checkpoint, stand-in data in
the real file formats; the real MME question lists and DPG-Bench prompts from shared/fixtures)."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

from helpers import make_tiny_checkpoint
from januspro.cli import main
from januspro.eval.mmbench import circular_items, circular_scores, extract_choice, write_tsv
from januspro.eval.mme import mme_answer, subtask_scores, totals


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("evalmodel2"))


def stable(res: dict) -> dict:
    return {k: v for k, v in res.items() if k not in ("seconds", "generation_seconds")}


# ----------------------------------------------------------------------------- MME
@pytest.mark.parametrize("text,want", [("Yes", "yes"), ("no", "no"), ("Yes.", "yes"), ("No, there is not.", "no"),
                                       ("yes, it is", "yes"), ("There is one.", "other"), ("", "other"),
                                       ("Not really", "no")])
def test_mme_answer_parsing(text, want):
    assert mme_answer(text) == want


def test_mme_scores_by_hand():
    rows = [{"image": "a.jpg", "answer": "yes"}, {"image": "a.jpg", "answer": "no"},
            {"image": "b.jpg", "answer": "yes"}, {"image": "b.jpg", "answer": "no"}]
    # a: both right; b: first right, second wrong ("maybe" is "other")
    s = subtask_scores(rows, ["Yes.", "No", "yes", "maybe"])
    assert s == {"acc": 0.75, "acc_plus": 0.5, "score": 125.0}
    t = totals({"count": s, "OCR": {"score": 10.0}, "code_reasoning": {"score": 7.5}})
    assert t == {"perception": 135.0, "cognition": 7.5}


def test_mme_runner_official_layout_and_resume(tiny, fixtures_dir, tmp_path, capsys):
    data = tmp_path / "lists"
    data.mkdir()
    images = tmp_path / "MME"
    for sub, nested in (("count", False), ("existence", True)):
        lines = (fixtures_dir / "mme" / "Your_Results" / f"{sub}.txt").read_text().splitlines()[:4]
        (data / f"{sub}.txt").write_text("\n".join(lines) + "\n")
        folder = images / sub / ("images" if nested else "")
        folder.mkdir(parents=True, exist_ok=True)
        for ln in lines:
            Image.new("RGB", (40, 30), (20, 90, 200)).save(folder / ln.split("\t")[0])
    argv = ["eval", "mme", "--model", str(tiny), "--data", str(data), "--images", str(images), "--out",
            str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 0
    for sub in ("count", "existence"):
        src = (data / f"{sub}.txt").read_text().splitlines()
        got = (tmp_path / "out" / "Your_Results" / f"{sub}.txt").read_text().splitlines()
        assert len(got) == len(src) and all(g.startswith(s + "\t") and g.count("\t") == 3 for g, s in zip(got, src, strict=True))
    first = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(first["scores"]["subtasks"]) == {"count", "existence"}
    assert 0 <= first["scores"]["perception"] <= 400 and first["scores"]["cognition"] == 0
    # interrupted: one answer lost -> rerun answers only that one, same results
    ans = tmp_path / "out" / "answers_count.jsonl"
    ans.write_text("".join(ans.read_text().splitlines(keepends=True)[:-1]))
    assert main(argv) == 0
    assert stable(json.loads((tmp_path / "out" / "results.json").read_text())) == stable(first)
    assert "MME perception" in capsys.readouterr().out
    refused(argv + ["--max-new-tokens", "4"], capsys)
    assert main(argv + ["--max-new-tokens", "0"]) == 2 and ">= 1" in capsys.readouterr().err
    shutil.rmtree(images / "count")
    assert main(argv[:-2] + [str(tmp_path / "out2"), "--quiet"]) == 2
    assert "MME image" in capsys.readouterr().err


def refused(argv: list[str], capsys) -> None:
    """The run is refused: its output folder holds answers of other decoding settings (the folder's run.json),
    which would otherwise be resumed as they are."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "holds outputs made by another model or other settings" in err and "max_new_tokens" in err


# ----------------------------------------------------------------------------- MMBench
@pytest.mark.parametrize("answer,want", [("B", "B"), ("B.", "B"), ("(C) a cat", "C"), ("A) yes", "A"),
                                         ("The answer is D.", "D"), ("a dog", "A"), ("cat", "C"), ("E", None),
                                         ("I am not sure", None), ("a", None)])
def test_mmbench_choice_extraction(answer, want):
    assert extract_choice(answer, ["dog", "bird", "cat", "fish"]) == want


def test_mmbench_circular_scoring_by_hand():
    rows = [{"index": "1", "question": "q1", "A": "red", "B": "blue", "C": "green", "answer": "B", "category": "x"},
            {"index": "2", "question": "q2", "A": "yes", "B": "no", "answer": "A", "category": "y"}]
    items = circular_items(rows)
    assert [it["gold"] for it in items] == ["B", "A", "C", "A", "B"]  # "blue" moves as the options rotate
    assert items[1]["options"] == ["blue", "green", "red"] and "A. blue" in items[1]["prompt"]
    answers = {"1/0": "B", "1/1": "A", "1/2": "C", "2/0": "A", "2/1": "A"}  # q2 fails its second pass
    s = circular_scores(items, answers)
    assert s["circular_accuracy"] == 0.5 and s["single_pass_accuracy"] == 1.0
    assert s["per_category"] == {"x": 1.0, "y": 0.0}


def test_mmbench_runner_and_resume(tiny, tmp_path, capsys):
    rows = [{"index": i, "question": f"What colour is shape {i}?", "hint": "A drawing." if i else "nan",
             "A": "red", "B": "green", "C": "blue", "D": "nan", "answer": "ABC"[i], "category": "colour",
             "image": Image.new("RGB", (24, 24), (200, 10 * i, 10))} for i in range(3)]
    tsv = write_tsv(rows, tmp_path / "mmbench_dev.tsv")
    argv = ["eval", "mmbench", "--model", str(tiny), "--data", str(tsv), "--out", str(tmp_path / "mb"), "--quiet"]
    assert main(argv) == 0
    first = json.loads((tmp_path / "mb" / "results.json").read_text())
    assert first["scores"]["n_questions"] == 3 and first["evaluation"] == "circular"
    assert len((tmp_path / "mb" / "answers.jsonl").read_text().splitlines()) == 9  # 3 questions x 3 options
    ans = tmp_path / "mb" / "answers.jsonl"
    ans.write_text("".join(ans.read_text().splitlines(keepends=True)[:4]))
    assert main(argv) == 0
    assert stable(json.loads((tmp_path / "mb" / "results.json").read_text())) == stable(first)
    assert "circular accuracy" in capsys.readouterr().out
    refused(argv + ["--max-new-tokens", "4"], capsys)
    bad = tmp_path / "bad.tsv"
    bad.write_text("index\tquestion\n1\tq\n")
    assert main(["eval", "mmbench", "--model", str(tiny), "--data", str(bad), "--out", str(tmp_path / "x"),
                 "--quiet"]) == 2
    assert "lacks the MMBench column" in capsys.readouterr().err


# ----------------------------------------------------------------------------- GQA
def test_gqa_runner(tiny, tmp_path, capsys):
    qs = {"20968046": {"imageId": "n161313", "question": "Is it red?", "answer": "yes"},
          "20968047": {"imageId": "n161313", "question": "What is it?", "answer": "ball"},
          "201307251": {"imageId": "n35842", "question": "Which colour?", "answer": "blue"}}
    (tmp_path / "testdev_balanced_questions.json").write_text(json.dumps(qs))
    (tmp_path / "images").mkdir()
    for name in ("n161313", "n35842"):
        Image.new("RGB", (30, 30), (0, 0, 255)).save(tmp_path / "images" / f"{name}.jpg")
    assert main(["eval", "gqa", "--model", str(tiny), "--data", str(tmp_path / "testdev_balanced_questions.json"),
                 "--images", str(tmp_path / "images"), "--out", str(tmp_path / "g"), "--quiet",
                 "--max-new-tokens", "6"]) == 0
    res = json.loads((tmp_path / "g" / "results.json").read_text())
    assert res["benchmark"] == "gqa" and res["n_questions"] == 3 and 0 <= res["scores"]["accuracy"] <= 1
    assert res["max_new_tokens"] == 6
    assert res["prompt_suffix"] == "Answer the question using a single word or phrase."
    md = (tmp_path / "g" / "results.md").read_text()
    assert md.startswith("# gqa results") and f"| accuracy | {res['scores']['accuracy']:.4f} |" in md
    assert "gqa accuracy" in capsys.readouterr().out


# ----------------------------------------------------------------------------- DPG-Bench
def test_dpg_reads_real_prompts(fixtures_dir):
    from januspro.eval.dpg import read_prompts

    items = read_prompts(fixtures_dir / "dpg_bench" / "prompts")
    assert len(items) == 1065 and items[0][0] == "0" and items[1][0] == "1"
    assert all(len(text) > 10 for _, text in items)


def test_dpg_grids_layout_and_resume(tiny, tmp_path, capsys):
    from januspro.checkpoint import load_model, load_processor
    from januspro.generation.image import ImageGenParams, generate_images

    prompts = tmp_path / "prompts"
    prompts.mkdir()
    for name, text in (("COCOval0", "a red ball"), ("10", "two cats"), ("9", "a blue sky")):
        (prompts / f"{name}.txt").write_text(text + "\n")
    argv = ["eval", "dpg", "--model", str(tiny), "--data", str(prompts), "--out", str(tmp_path / "d"), "--seed", "5",
            "--cfg", "3", "--quiet"]
    assert main(argv) == 0
    model = load_model(tiny)
    s = model.cfg.vq.image_size
    grid = Image.open(tmp_path / "d" / "10.png")
    assert grid.size == (2 * s, 2 * s)
    # prompts sorted 9, 10, COCOval0 -> "two cats" is index 1: seed 5 + 1
    want = generate_images(model, load_processor(model), "two cats", ImageGenParams(cfg_weight=3, n=4, seed=6))[0]
    for k, im in enumerate(want):
        r, c = divmod(k, 2)
        assert grid.crop((c * s, r * s, (c + 1) * s, (r + 1) * s)).tobytes() == im.convert("RGB").tobytes()
    kept = (tmp_path / "d" / "9.png").stat().st_mtime_ns
    (tmp_path / "d" / "10.png").unlink()
    assert main(argv) == 0
    assert (tmp_path / "d" / "9.png").stat().st_mtime_ns == kept
    assert Image.open(tmp_path / "d" / "10.png").tobytes() == grid.tobytes()
    capsys.readouterr()


# ----------------------------------------------------------------------------- report
def test_report_side_by_side(tmp_path, capsys):
    for name, res in (("pope", {"benchmark": "pope", "scores": {"random": {"f1": 0.9}, "popular": {"f1": 0.8}}}),
                      ("mme", {"benchmark": "mme", "scores": {"perception": 1234.5, "cognition": 300.0}}),
                      ("gen", {"benchmark": "geneval", "scores": {"overall": 0.5}})):
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / "results.json").write_text(json.dumps({**res, "model": "/m/shapes",
                                                                          "config_hash": "abcdef123456"}))
    assert main(["eval", "report", str(tmp_path / "runs"), "--out", str(tmp_path / "r.md")]) == 0
    text = (tmp_path / "r.md").read_text()
    assert "| Janus-Pro-7B (paper) | 0.80 | 84.19 | 87.4 | 1567 | 79.2 |" in text
    ours = next(ln for ln in text.splitlines() if ln.startswith("| shapes"))
    assert "| 0.500 |" in ours and "| 85.0 |" in ours and "| 1234.5 |" in ours
    capsys.readouterr()
    assert main(["eval", "report", str(tmp_path / "nothing")]) == 2


# ----------------------------------------------------------------------------- MMMU
@pytest.mark.parametrize("response,want", [("(B)", "B"), ("B", "B"), ("The answer is C.", "C"),
                                           ("I think it is (A), not (D)", "D"),
                                           ("It must be the red one of these shapes", "A")])
def test_mmmu_choice_parsing(response, want):
    from januspro.eval.mmmu import parse_choice

    assert parse_choice(response, ["red one", "blue", "green", "cyan"], "q1") == want


def test_mmmu_random_fallback_is_seeded_and_open_answers():
    from januspro.eval.mmmu import open_correct, parse_choice

    picks = {parse_choice("no idea", ["a1", "b1", "c1", "d1"], "q7") for _ in range(5)}
    assert len(picks) == 1 and picks <= set("ABCD")
    assert open_correct("The value is 3,200.", "3200") and open_correct("Paris.", "paris")
    assert not open_correct("42", "43") and open_correct("x", ["y", "x"])


def test_mmmu_runner(tiny, tmp_path, capsys):
    (tmp_path / "img").mkdir()
    for k in (1, 2):
        Image.new("RGB", (20, 20), (40 * k, 0, 0)).save(tmp_path / "img" / f"{k}.png")
    rows = [{"id": "validation_Art_1", "question": "Which is darker, <image 1> or <image 2>?",
             "options": "['the first', 'the second']", "answer": "A", "question_type": "multiple-choice",
             "image_1": "img/1.png", "image_2": "img/2.png"},
            {"id": "validation_Math_2", "question": "What is 2 + 2?", "options": "[]", "answer": "4",
             "question_type": "open"}]
    (tmp_path / "mmmu.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    from januspro.eval.mmmu import build_conversation, read_questions

    conv = build_conversation(read_questions(tmp_path / "mmmu.jsonl")[0])
    kinds = [p["type"] for p in conv[0]["content"]]
    assert kinds == ["text", "image", "text", "image", "text"]
    assert main(["eval", "mmmu", "--model", str(tiny), "--data", str(tmp_path / "mmmu.jsonl"), "--out",
                 str(tmp_path / "m"), "--quiet"]) == 0
    res = json.loads((tmp_path / "m" / "results.json").read_text())
    assert res["benchmark"] == "mmmu" and res["scores"]["n_questions"] == 2
    assert "MMMU accuracy" in capsys.readouterr().out
    refused(["eval", "mmmu", "--model", str(tiny), "--data", str(tmp_path / "mmmu.jsonl"), "--out", str(tmp_path / "m"),
             "--quiet", "--max-new-tokens", "4"], capsys)
