"""Token classification (NER) through the pipeline on a tiny model: CoNLL files -> finetune -> distill ->
export -> quantize -> bench -> final/, entity F1 (seqeval) at every stage, tag names kept in every model."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from compress.distill.config import DistillConfig
from compress.distill.terms import TERMS, TermContext

WORDS = {"PER": ["Anna", "Peter", "Maria", "John"], "LOC": ["Paris", "Berlin", "Rome", "Oslo"],
         "ORG": ["Reuters", "Siemens", "Fiat"], "O": ["visited", "the", "office", "of", "in", "met", "and", "today"]}


def write_conll(path: Path, n: int, seed: int) -> Path:
    """Synthetic CoNLL-2003-style sentences: 'token TAG' lines, IOB2 tags, blank lines between sentences."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        for _ in range(rng.randint(3, 8)):
            kind = rng.choice(["O", "O", "O", "PER", "LOC", "ORG"])
            if kind == "O":
                lines.append(f"{rng.choice(WORDS['O'])} O")
            else:
                lines.append(f"{rng.choice(WORDS[kind])} B-{kind}")
                if rng.random() < 0.3:
                    lines.append(f"{rng.choice(WORDS[kind])} I-{kind}")
        lines.append("")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_token_terms_match_hand_computations():
    """kl: per-token KL at real tokens (T^2); hard: CE over labelled tokens only (-100 ignored)."""
    torch.manual_seed(0)
    s, t = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    labels = torch.tensor([[-100, 2, 0, -100], [1, -100, -100, -100]])
    ctx = TermContext("token-classification", DistillConfig(temperature=2.0), {"labels": labels}, mask,
                      type("Out", (), {"logits": s})(), type("Out", (), {"logits": t})(), s, t, None, None, None, [])
    sel = mask.bool()
    p_t = torch.softmax(t[sel] / 2, -1)
    kl = (p_t * (p_t.log() - torch.log_softmax(s[sel] / 2, -1))).sum(-1).mean() * 4
    assert TERMS["kl"].compute(ctx).item() == pytest.approx(kl.item(), rel=1e-5)
    keep = labels != -100
    ce = -torch.log_softmax(s[keep], -1)[torch.arange(int(keep.sum())), labels[keep]].mean()
    assert TERMS["hard"].compute(ctx).item() == pytest.approx(ce.item(), rel=1e-5)


def test_ner_through_every_stage(tmp_path, tiny_model_dir):
    from transformers import AutoModelForTokenClassification

    from compress.config import load_config
    from compress.run.pipeline import run_pipeline

    backbone = tiny_model_dir("bert", "mlm")
    train, dev = write_conll(tmp_path / "train.txt", 120, 0), write_conll(tmp_path / "dev.txt", 30, 1)
    cfg = load_config(None, base={
        "name": "ner", "output_dir": str(tmp_path / "runs"), "task": "token-classification",
        "stages": ["finetune", "distill", "export", "quantize", "bench"],
        "teacher": {"model": str(backbone), "max_length": 32}, "data": {"train": str(train), "eval": str(dev)},
        "finetune": {"epochs": 3, "batch_size": 8, "learning_rate": 5e-3}, "student": {"num_layers": 1},
        "distill": {"max_steps": 20, "batch_size": 8, "learning_rate": 5e-3, "eval_steps": 10,
                    "loss": {"kl": 1.0, "hard": 1.0, "cos": 1.0}},
        "quantize": {"guard": {"eval_samples": 30}},
        "bench": {"min_runs": 3, "warmup": 1, "min_seconds": 0.0, "max_eval_samples": 30}})
    outcomes = {o.name: o for o in run_pipeline(cfg)}
    tags = ["O", "B-LOC", "B-ORG", "B-PER", "I-LOC", "I-ORG", "I-PER"]
    assert list(outcomes["finetune"].metrics["id2label"].values()) == tags
    assert outcomes["finetune"].metrics["teacher_eval"] > 0.3  # the synthetic entities are learnable
    distill = outcomes["distill"].metrics
    assert distill["eval_metric"] == "f1" and distill["eval_metric_during_training"] == "f1"
    assert [h["step"] for h in distill["eval_history"]] == [10, 20]
    guard = outcomes["quantize"].metrics["methods"]["dynamic"]
    assert "f1" in guard["attempts"][0]
    report = json.loads((tmp_path / "runs" / "ner" / "report.json").read_text())
    by_name = {(e["name"], e["format"]): e for e in report["models"]}
    assert by_name[("teacher", "pytorch")]["quality"]["metric"] == "f1"
    assert by_name[("student-int8-dynamic", "onnx")]["quality"]["value"] >= 0.0
    final = tmp_path / "runs" / "ner" / "final" / "model"
    model = AutoModelForTokenClassification.from_pretrained(final)
    assert [model.config.id2label[i] for i in range(len(tags))] == tags


def test_unknown_dev_tag_is_one_line_error(tmp_path, tiny_model_dir):
    from compress.config import load_config
    from compress.data.rows import load_splits
    from compress.core.errors import DataError

    train = write_conll(tmp_path / "train.txt", 20, 0)
    dev = tmp_path / "dev.txt"
    dev.write_text("Anna B-PER\nsang B-SONG\n\n")
    cfg = load_config(None, base={"teacher": {"model": "x"}, "task": "token-classification",
                                  "data": {"train": str(train), "eval": str(dev)}})
    with pytest.raises(DataError, match=r"tags \['B-SONG'\] do not occur in the training data"):
        load_splits(cfg.data, cfg.task, 0)


@pytest.mark.parametrize("task", ["token-classification", "question-answering"])
def test_trim_vocab_keeps_tags_answers_and_outputs_on_kept_text(task, tmp_path, tiny_model_dir):
    """finetune -> distill -> trim_vocab -> export: the trimmed model keeps its labels (or QA head and no-answer
    threshold), loads with from_pretrained, and on training text (every token kept) gives bit-identical logits."""
    from transformers import AutoModelForQuestionAnswering, AutoModelForTokenClassification, AutoTokenizer

    from compress.config import load_config
    from compress.model.interface import saved_interface
    from compress.run.pipeline import run_pipeline
    from tests.squad_tiny import EXAMPLES

    if task == "token-classification":
        train, dev = write_conll(tmp_path / "train.txt", 60, 0), write_conll(tmp_path / "dev.txt", 20, 1)
        question, text = None, "Anna visited the office in Berlin"
    else:
        train, dev = write_squad(tmp_path / "train.json", EXAMPLES * 2), write_squad(tmp_path / "dev.json", EXAMPLES)
        question, text = EXAMPLES[0].question, EXAMPLES[0].context
    cfg = load_config(None, base={
        "name": "tv", "output_dir": str(tmp_path / "runs"), "task": task,
        "stages": ["finetune", "distill", "trim_vocab", "export"],
        "teacher": {"model": str(tiny_model_dir("bert", "mlm")), "max_length": 64},
        "data": {"train": str(train), "eval": str(dev), "doc_stride": 16},
        "finetune": {"max_steps": 4, "batch_size": 8}, "student": {"num_layers": 1},
        "distill": {"max_steps": 2, "batch_size": 8}, "vocab": {"max_size": 250}})
    outcomes = {o.name: o for o in run_pipeline(cfg)}
    vocab = outcomes["trim_vocab"].metrics
    assert vocab["vocab_after"] <= 250 < vocab["vocab_before"]  # the domain uses fewer tokens than the cap
    assert vocab["coverage_test"]["share_kept"] == 1.0  # the eval text's words all occur in training
    run = tmp_path / "runs" / "tv"
    cls = AutoModelForTokenClassification if task == "token-classification" else AutoModelForQuestionAnswering
    before, after = cls.from_pretrained(run / "02-distill" / "model"), cls.from_pretrained(run / "final" / "model")
    tok_before, tok_after = AutoTokenizer.from_pretrained(run / "02-distill" / "model"), \
        AutoTokenizer.from_pretrained(run / "final" / "model")
    assert len(tok_after) == after.config.vocab_size == vocab["vocab_after"]
    assert after.config.id2label == before.config.id2label
    shipped, distilled = saved_interface(run / "final" / "model"), saved_interface(run / "02-distill" / "model")
    assert {**shipped.to_dict(), "source": None} == {**distilled.to_dict(), "source": None}
    assert shipped.source == Path(cfg.teacher.model).name  # final/ names the teacher, not the build machine's path
    args = (question, text) if question else (text,)
    ids_before, ids_after = tok_before(*args, return_tensors="pt"), tok_after(*args, return_tensors="pt")
    assert tok_before.convert_ids_to_tokens(ids_before["input_ids"][0]) == \
        tok_after.convert_ids_to_tokens(ids_after["input_ids"][0])
    with torch.inference_mode():
        out_before, out_after = before(**ids_before), after(**ids_after)
    for name in ("logits",) if task == "token-classification" else ("start_logits", "end_logits"):
        assert torch.equal(out_before[name], out_after[name])


def test_ner_prune_with_recovery_then_search(tmp_path, tiny_model_dir):
    """finetune -> distill -> prune (taylor on the tag loss, recovery on aligned tags) -> search (2 ratios x INT8):
    heads and FFN neurons are cut for real, every quality is entity F1, the winner keeps the tag names."""
    from transformers import AutoModelForTokenClassification

    from compress.config import load_config
    from compress.run.pipeline import run_pipeline

    train, dev = write_conll(tmp_path / "train.txt", 120, 0), write_conll(tmp_path / "dev.txt", 30, 1)
    cfg = load_config(None, base={
        "name": "nerp", "output_dir": str(tmp_path / "runs"), "task": "token-classification",
        "stages": ["finetune", "distill", "prune", "search"],
        "teacher": {"model": str(tiny_model_dir("bert", "mlm")), "max_length": 32},
        "data": {"train": str(train), "eval": str(dev), "test": str(dev)},
        "finetune": {"epochs": 3, "batch_size": 8, "learning_rate": 5e-3}, "student": {"num_layers": 2},
        "distill": {"max_steps": 10, "batch_size": 8, "learning_rate": 5e-3},
        "prune": {"head_ratio": 0.5, "ffn_ratio": 0.5, "round_to": 4, "importance": "taylor", "max_length": 32,
                  "calibration_batches": 2, "calibration_batch_size": 8,
                  "recovery": {"enabled": True, "max_steps": 4, "batch_size": 8}},
        "search": {"prune_ratios": [0.0, 0.5], "vocab_sizes": [None, 150], "quantize": ["dynamic"],
                   "max_eval_samples": 30, "targets": {"retention_floor": 0.01}},
        "quantize": {"guard": {"eval_samples": 30, "fallbacks": False}, "embedding": {"bits": 4, "block_size": 16}},
        "bench": {"min_runs": 3, "warmup": 1, "min_seconds": 0.0, "threads": 1}})
    outcomes = {o.name: o for o in run_pipeline(cfg)}
    pruned = outcomes["prune"].metrics
    assert pruned["heads_before"] == [4, 4] and pruned["heads_after"] == [2, 2]
    assert {pruned["quality"][k]["metric"] for k in ("unpruned", "pruned", "recovered")} == {"f1"}
    assert pruned["recovery"]["kept"] in ("recovered", "pruned (recovery lowered the eval metric)")
    model = AutoModelForTokenClassification.from_pretrained(cfg.run_dir / "03-prune" / "model")
    assert model.config.id2label[3] == "B-PER"
    search = json.loads((cfg.run_dir / "04-search" / "candidates.json").read_text())
    assert {c["name"].split("/")[0] for c in search["candidates"]} == {"d2-p00", "d2-p50", "d2-p00-v150",
                                                                        "d2-p50-v150"}
    assert search["teacher"]["metric"] == "f1" and search["winner"] is not None
    assert all(c["status"] == "ok" and c["value"] is not None for c in search["candidates"])
    trimmed = cfg.run_dir / "search" / "d2-p50-v150"
    config = json.loads((trimmed / "01-trim_vocab" / "model" / "config.json").read_text())
    assert config["vocab_size"] <= 150 and config["id2label"]["3"] == "B-PER"
    import onnx
    int8 = onnx.load(str(trimmed / "03-quantize" / "model.int8-dynamic.onnx"))
    assert "GatherBlockQuantized" in {n.op_type for n in int8.graph.node}  # the 4-bit table of 150 rows


def test_qa_prune_scores_span_loss_and_squad_f1(tmp_path, tiny_model_dir):
    """prune on a QA model: gradient importance from the start/end loss, recovery on windows, SQuAD F1 before/after."""
    from compress.config import load_config
    from compress.run.pipeline import run_pipeline
    from tests.squad_tiny import EXAMPLES

    train = write_squad(tmp_path / "train.json", EXAMPLES * 4)
    cfg = load_config(None, base={
        "name": "qap", "output_dir": str(tmp_path / "runs"), "task": "question-answering",
        "stages": ["finetune", "distill", "prune"],
        "teacher": {"model": str(tiny_model_dir("bert", "mlm")), "max_length": 128},
        "data": {"train": str(train), "eval": str(write_squad(tmp_path / "dev.json", EXAMPLES)), "doc_stride": 32},
        "finetune": {"max_steps": 4, "batch_size": 8}, "student": {"num_layers": 2},
        "distill": {"max_steps": 2, "batch_size": 8, "keep_best": False},
        "prune": {"head_ratio": 0.5, "ffn_ratio": 0.25, "round_to": 4, "importance": "gradient",
                  "num_drop_layers": 1, "calibration_batches": 2, "calibration_batch_size": 4,
                  "recovery": {"enabled": True, "max_steps": 2, "batch_size": 4}}})
    outcomes = {o.name: o for o in run_pipeline(cfg)}
    pruned = outcomes["prune"].metrics
    assert len(pruned["dropped_layers"]) == 1 and pruned["heads_after"] == [2]
    assert {pruned["quality"][k]["metric"] for k in ("unpruned", "pruned", "recovered")} == {"f1"}
    assert 0.0 <= pruned["quality"]["pruned"]["value"] <= 100.0
    # the pruned model's no-answer threshold is its own, tuned on dev, not the distilled student's
    from compress.data.rows import load_splits
    from compress.model.interface import saved_interface
    from compress.model.loading import load_model, load_tokenizer
    from compress.tasks.qa import tuned_null_threshold

    folder = tmp_path / "runs" / "qap" / "03-prune" / "model"
    # unset prune.max_length: calibration, recovery and scores use the windows the model serves at
    assert pruned["max_length"] == saved_interface(tmp_path / "runs" / "qap" / "02-distill" / "model").max_seq_length
    dev = load_splits(cfg.data, cfg.task, cfg.seed).eval
    own = tuned_null_threshold(load_model(str(folder), cfg.task), load_tokenizer(str(folder)), dev, 128)["threshold"]
    assert saved_interface(folder).null_threshold == pytest.approx(own) == pytest.approx(pruned["null_threshold"])


def write_squad(path: Path, examples) -> Path:
    """The SQuAD 2.0 JSON layout (one article per context) for ``examples``."""
    by_context: dict[str, list] = {}
    for e in examples:
        by_context.setdefault(e.context, []).append(
            {"id": e.id, "question": e.question, "answers": e.answers, "is_impossible": not e.answers})
    data = [{"title": f"a{i}", "paragraphs": [{"context": c, "qas": qas}]} for i, (c, qas) in enumerate(by_context.items())]
    path.write_text(json.dumps({"version": "v2.0", "data": data}))
    return path


def test_question_answering_through_every_stage(tmp_path, tiny_model_dir):
    """SQuAD JSON -> finetune -> distill (span KL + span loss) -> export -> quantize -> bench -> final/: SQuAD F1
    (official v2.0 logic) at every stage, each model read at its own no-answer threshold (tuned on dev), and the
    bundle's reference.py answers from the bundled model with the student's threshold."""
    import subprocess
    import sys

    from compress.config import load_config
    from compress.run.pipeline import run_pipeline
    from tests.squad_tiny import EXAMPLES

    train = write_squad(tmp_path / "train.json", EXAMPLES * 4)
    test = write_squad(tmp_path / "test.json", EXAMPLES)
    cfg = load_config(None, base={
        "name": "qa", "output_dir": str(tmp_path / "runs"), "task": "question-answering",
        "stages": ["finetune", "distill", "export", "quantize", "bench"],
        "teacher": {"model": str(tiny_model_dir("bert", "mlm")), "max_length": 128},
        "data": {"train": str(train), "eval": str(test), "test": str(test), "doc_stride": 32},
        "finetune": {"max_steps": 6, "batch_size": 8}, "student": {"num_layers": 1},
        "distill": {"max_steps": 6, "batch_size": 8, "eval_steps": 3, "loss": {"kl": 1.0, "hard": 1.0, "cos": 1.0}},
        "quantize": {"guard": {"eval_samples": 8}},
        "bench": {"min_runs": 3, "warmup": 1, "min_seconds": 0.0, "max_eval_samples": 8}})
    outcomes = {o.name: o for o in run_pipeline(cfg)}
    tuned = outcomes["finetune"].metrics
    assert tuned["eval_metric"] == "f1" and "HasAns_f1" in tuned and "NoAns_f1" in tuned
    assert outcomes["distill"].metrics["eval_metric_during_training"] == "f1"
    teacher_t = tuned["null_threshold"]
    student_t = outcomes["distill"].metrics["interface"]["null_threshold"]
    assert isinstance(teacher_t, float) and isinstance(student_t, float)
    assert tuned["teacher_eval"] >= tuned["teacher_eval_untuned"]  # tuned on these dev questions: never worse
    assert [h["step"] for h in outcomes["distill"].metrics["eval_history"]] == [3, 6]
    assert "f1" in outcomes["quantize"].metrics["methods"]["dynamic"]["attempts"][0]
    report = json.loads((tmp_path / "runs" / "qa" / "report.json").read_text())
    assert {e["quality"]["metric"] for e in report["models"] if e["status"] == "ok"} == {"f1"}
    thresholds = {e["name"]: e["null_threshold"] for e in report["models"] if e["status"] == "ok"}
    assert thresholds.pop("teacher") == pytest.approx(teacher_t)
    assert thresholds and all(t == pytest.approx(student_t) for t in thresholds.values())
    bundle = tmp_path / "runs" / "qa" / "final" / "bundle"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert "no answer" in manifest["postprocessing"] and manifest["no_answer_threshold"] == pytest.approx(student_t)
    out = subprocess.run([sys.executable, str(bundle / "reference.py"), EXAMPLES[0].question, "--context",
                          EXAMPLES[0].context], capture_output=True, text=True, timeout=120, check=True)
    answer = json.loads(out.stdout)
    assert set(answer) >= {"answer", "score"}


def test_bench_run_cli_scores_ner_and_qa(tmp_path, tiny_model_dir):
    """``edgepress bench run --task token-classification|question-answering`` with CoNLL / SQuAD files: F1 rows."""
    from typer.testing import CliRunner

    from benchmarks.cli import app
    from tests.squad_tiny import EXAMPLES

    runner = CliRunner()
    quick = ["--threads", "1", "--warmup", "1", "--min-runs", "3", "--min-seconds", "0"]
    ner = tiny_model_dir("bert", "token-classification")
    res = runner.invoke(app, ["run", str(ner), "--task", "token-classification", "--data",
                              str(write_conll(tmp_path / "t.txt", 10, 0)), *quick, "--out", str(tmp_path / "n")])
    assert res.exit_code == 0, res.output
    entry = json.loads((tmp_path / "n" / "report.json").read_text())["models"][0]
    assert entry["quality"]["metric"] == "f1" and "precision" in entry["quality"]["extra"]
    qa = tiny_model_dir("bert", "question-answering")
    res = runner.invoke(app, ["run", str(qa), "--task", "question-answering", "--max-length", "128", "--doc-stride", "32", "--data",
                              str(write_squad(tmp_path / "q.json", EXAMPLES)), *quick, "--out", str(tmp_path / "q")])
    assert res.exit_code == 0, res.output
    entry = json.loads((tmp_path / "q" / "report.json").read_text())["models"][0]
    assert entry["quality"]["metric"] == "f1" and "HasAns_f1" in entry["quality"]["extra"]


def test_a_byte_level_bpe_tokenizer_takes_pre_split_words(tmp_path):
    """RoBERTa's tokenizer, loaded as saved, asserts on is_split_into_words; label alignment and the bench's word
    feeds reload it with add_prefix_space (run_ner's fix), and each word's first sub-token carries its tag."""
    from benchmarks.feeds import tokenize_words
    from compress.model.loading import load_tokenizer
    from compress.tasks.ner import IGNORE, TaggedSentences, align_labels
    from tests.tiny import make_tiny_roberta

    tok = load_tokenizer(str(make_tiny_roberta(tmp_path / "rob")))
    words = [["Anna", "visited", "Berlin"]]
    with pytest.raises(AssertionError, match="add_prefix_space"):
        tok(words, is_split_into_words=True)
    out = align_labels(tok, TaggedSentences(words, [["B-PER", "O", "B-LOC"]]), {"O": 0, "B-PER": 1, "B-LOC": 2}, 32)
    pieces = [p for p, label in zip(out["input_ids"][0], out["labels"][0]) if label != IGNORE]
    assert [label for label in out["labels"][0] if label != IGNORE] == [1, 0, 2]
    assert tok.convert_ids_to_tokens(pieces)[0].startswith("Ġ")  # the first word is encoded as a later one
    feeds, positions = tokenize_words(tok, words, 32)
    assert feeds["input_ids"].shape[0] == 1 and positions[0][0] == 1


def test_roberta_ner_teacher_and_student_folders_take_words(tmp_path):
    """finetune -> distill on a RoBERTa backbone: both saved tokenizers take pre-split words as they are loaded."""
    from transformers import AutoTokenizer

    from compress.config import load_config
    from compress.run.pipeline import run_pipeline
    from tests.tiny import make_tiny_roberta

    train, dev = write_conll(tmp_path / "train.txt", 40, 0), write_conll(tmp_path / "dev.txt", 10, 1)
    cfg = load_config(None, base={
        "name": "rner", "output_dir": str(tmp_path / "runs"), "task": "token-classification",
        "stages": ["finetune", "distill"],
        "teacher": {"model": str(make_tiny_roberta(tmp_path / "rob", "mlm")), "max_length": 32},
        "data": {"train": str(train), "eval": str(dev)},
        "finetune": {"epochs": 1, "batch_size": 8}, "student": {"num_layers": 1},
        "distill": {"max_steps": 4, "batch_size": 8}})
    run_pipeline(cfg)
    for folder in (cfg.run_dir / "01-finetune" / "model", cfg.run_dir / "02-distill" / "model"):
        tok = AutoTokenizer.from_pretrained(folder)
        assert tok.add_prefix_space is True
        assert tok([["Anna", "visited", "Berlin"]], is_split_into_words=True).word_ids(0)[1] == 0


def test_quantize_cli_reads_tags_from_the_exported_folder(tmp_path, tiny_model_dir):
    """``edgepress quantize export/model.onnx`` on a token classifier scores its guard with the tags in the folder's
    own config.json, not with the configured teacher's (a 2-class model that names none of them)."""
    from compress.cli.main import main
    from tests.quantize.helpers import TEXTS
    from tests.tiny import torch_tags

    ner = tiny_model_dir("bert", "token-classification")
    words = [t.rstrip(".").split(" ") for t in TEXTS] * 3
    tags = torch_tags(ner, words)  # gold = the fp32 model's own tags, so its entity F1 is 1
    assert any(t != "O" for row in tags for t in row)
    dev = tmp_path / "dev.txt"
    dev.write_text("".join("".join(f"{w} {t}\n" for w, t in zip(ws, ts)) + "\n" for ws, ts in zip(words, tags)))
    main(["export", str(ner), str(tmp_path / "exp"), "--task", "token-classification",
          "--set", "export.formats=[onnx]"])
    other_teacher = tiny_model_dir("bert", "classification")
    main(["quantize", str(tmp_path / "exp" / "model.onnx"), str(tmp_path / "q"), "--task", "token-classification",
          "--data", str(dev), "--set", f"data.eval={dev}", "--set", f"teacher.model={other_teacher}",
          "--set", "quantize.methods=[dynamic]", "--set", "quantize.latency.runs=3"])
    report = json.loads((tmp_path / "q" / "quantize_report.json").read_text())
    assert report["eval"]["kind"] == "token-classification" and report["eval"]["f1"] == pytest.approx(1.0)
    assert report["methods"]["dynamic"]["attempts"][0]["basis"] == "f1"


def test_bench_run_takes_tags_from_beside_an_onnx_file(tmp_path, tiny_model_dir, capsys):
    """``edgepress bench run export/model.onnx --task token-classification`` scores entity F1 with the tags in the
    config.json beside the file; a bare ONNX file with no config beside it gets the one-line usage error."""
    import shutil

    from compress.cli.main import main

    ner = tiny_model_dir("bert", "token-classification")
    main(["export", str(ner), str(tmp_path / "exp"), "--task", "token-classification",
          "--set", "export.formats=[onnx]"])
    quick = ["--threads", "1", "--warmup", "1", "--min-runs", "3", "--min-seconds", "0"]
    data = str(write_conll(tmp_path / "t.txt", 10, 0))
    main(["bench", "run", str(tmp_path / "exp" / "model.onnx"), "--task", "token-classification",
          "--tokenizer", str(tmp_path / "exp"), "--data", data, *quick, "--out", str(tmp_path / "n")])
    entry = json.loads((tmp_path / "n" / "report.json").read_text())["models"][0]
    assert entry["status"] == "ok" and entry["quality"]["metric"] == "f1"
    (tmp_path / "bare").mkdir()
    shutil.copy(tmp_path / "exp" / "model.onnx", tmp_path / "bare" / "model.onnx")
    with pytest.raises(SystemExit) as exc:
        main(["bench", "run", str(tmp_path / "bare" / "model.onnx"), "--task", "token-classification",
              "--tokenizer", str(tmp_path / "exp"), "--data", data, *quick, "--out", str(tmp_path / "b")])
    assert exc.value.code == 1 and "config.json beside it" in capsys.readouterr().err
