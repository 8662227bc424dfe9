"""final/: what a run ships loads, unchanged, with the libraries users load it with, and answers like the teacher."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from compress.config import load_config
from compress.data import builtin_pydoc_sentences
from compress.pipeline import run_pipeline

TEXTS = ["The cat sat on the mat.", "Python has many modules, functions and classes for every kind of program.",
         "A short one.", "Exceptions are raised when an error is detected during execution of a statement."]
QUICK_BENCH = {"min_runs": 3, "min_seconds": 0, "warmup": 1, "max_eval_samples": 40}


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def make_st_teacher(folder: Path, pooling: str = "cls", normalize: bool = True, max_seq_length: int = 64) -> Path:
    """A tiny sentence-transformers folder (CLS pooling + Normalize by default), saved by sentence-transformers."""
    from sentence_transformers import SentenceTransformer

    from compress.interface import st_modules
    from tests.tiny import make_tiny_model

    Normalize, Pooling, Transformer = st_modules().Normalize, st_modules().Pooling, st_modules().Transformer
    make_tiny_model(folder, "bert", "embedding")
    mods = [Transformer(str(folder), max_seq_length=max_seq_length), Pooling(32, pooling_mode=pooling)]
    if normalize:
        mods.append(Normalize())
    SentenceTransformer(modules=mods, device="cpu").save(str(folder))
    return folder


@pytest.fixture(scope="module")
def st_run(tmp_path_factory):
    """distill -> export -> quantize -> bench on a CLS-pooling, normalised sentence-transformers teacher."""
    root = tmp_path_factory.mktemp("st-run")
    teacher = make_st_teacher(root / "teacher")
    cfg = load_config(None, base={
        "name": "st", "output_dir": str(root / "runs"), "stages": ["distill", "export", "quantize", "bench"],
        "teacher": {"model": str(teacher)}, "data": {"train": "builtin:pydoc", "max_train_samples": 200,
                                                     "max_eval_samples": 40},
        "student": {"num_layers": 1}, "distill": {"max_steps": 3, "batch_size": 8},
        "quantize": {"guard": {"eval_samples": 32}}, "bench": QUICK_BENCH})
    outcomes = run_pipeline(cfg)
    return root / "runs" / "st" / "final", teacher, outcomes


def test_sentence_transformers_student_keeps_pooling_normalize_and_max_length(st_run):
    from sentence_transformers import SentenceTransformer

    from compress.interface import st_modules

    Normalize, Pooling = st_modules().Normalize, st_modules().Pooling
    final, teacher, outcomes = st_run
    assert outcomes[-1].name == "package" and outcomes[-1].metrics["precision"] == "int8"
    st = SentenceTransformer(str(final / "model"), device="cpu")
    pool = next(m for m in st if isinstance(m, Pooling))
    assert pool.get_config_dict()["pooling_mode"] == "cls"
    assert any(isinstance(m, Normalize) for m in st)
    assert st.max_seq_length == 64  # the teacher's, not transformers' 512
    emb = st.encode(TEXTS)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_final_onnx_matches_sentence_transformers_encode(st_run):
    """fp32 ONNX (optimum folder and ST's backend='onnx') against SentenceTransformer.encode of the student."""
    import onnxruntime as ort
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    final, _, _ = st_run
    ref = SentenceTransformer(str(final / "model"), device="cpu").encode(TEXTS)
    tok = AutoTokenizer.from_pretrained(str(final / "onnx"))
    sess = ort.InferenceSession(str(final / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    for text, want in zip(TEXTS, ref):  # batch 1, every length
        enc = tok([text], return_tensors="np", truncation=True, max_length=64)
        got = sess.run(["sentence_embedding"], {n: enc[n].astype(np.int64) for n in names})[0]
        assert cosine(got, want[None])[0] >= 0.999
    onnx_st = SentenceTransformer(str(final / "model"), backend="onnx", device="cpu",
                                  model_kwargs={"file_name": "onnx/model.onnx"})
    assert cosine(onnx_st.encode(TEXTS), ref).min() >= 0.999
    int8_name = next(p.name for p in (final / "model" / "onnx").glob("model_qint8_*.onnx"))
    int8_st = SentenceTransformer(str(final / "model"), backend="onnx", device="cpu",
                                  model_kwargs={"file_name": f"onnx/{int8_name}"})
    assert cosine(int8_st.encode(TEXTS), ref).min() >= 0.98  # INT8: close, not exact


def test_optimum_loads_the_onnx_folder_and_pipeline_runs(st_run):
    from optimum.onnxruntime import ORTModelForFeatureExtraction
    from transformers import AutoModel, AutoTokenizer, pipeline

    final, _, _ = st_run
    tok = AutoTokenizer.from_pretrained(str(final / "onnx"))
    for file_name in ("model.onnx", "model_quantized.onnx"):
        model = ORTModelForFeatureExtraction.from_pretrained(str(final / "onnx"), file_name=file_name)
        feats = np.asarray(pipeline("feature-extraction", model=model, tokenizer=tok)(TEXTS[1]))
        assert feats.shape[-1] == 32 and feats.shape[1] > 5
    hf = AutoModel.from_pretrained(str(final / "model"))  # the Hugging Face folder loads as it is
    assert hf.config.num_hidden_layers == 1


def test_bundle_holds_the_int8_model_and_its_ort_and_says_how_it_pools(st_run):
    import onnxruntime as ort
    from sentence_transformers import SentenceTransformer

    final, _, _ = st_run
    bundle = final / "bundle"
    manifest = json.loads((bundle / "manifest.json").read_text())
    files = {(m["file"], m["format"], m["precision"]) for m in manifest["models"]}
    assert files == {("model.int8.onnx", "onnx", "int8"), ("model.int8.ort", "ort", "int8")}
    assert not (bundle / "model.onnx").exists()  # no fp32 copy in the app bundle
    assert manifest["pooling"]["mode"] == "cls" and manifest["pooling"]["normalized"] is True
    assert manifest["max_sequence_length"] == 64
    assert manifest["quantization"]["method"] == "dynamic" and manifest["quantization"]["quantized_ops"]
    ref = SentenceTransformer(str(final / "model"), device="cpu").encode(TEXTS[:1])
    for model_file in ("model.int8.onnx", "model.int8.ort"):
        ort.InferenceSession(str(bundle / model_file), providers=["CPUExecutionProvider"])
        out = subprocess.run([sys.executable, str(bundle / "reference.py"), TEXTS[0], "--model", model_file],
                             capture_output=True, text=True, timeout=120, check=True)
        got = np.asarray(json.loads(out.stdout)["sentence_embedding"])[None]
        assert cosine(got, ref)[0] >= 0.98
    card = (final / "README.md").read_text()
    assert "base_model:" in card and "library_name: sentence-transformers" in card and "cls pooling" in card


def test_package_command_rewrites_final_from_a_finished_run(st_run):
    from compress.cli import main

    final, _, _ = st_run
    (final / "README.md").unlink()
    main(["package", str(final.parent)])  # success returns; errors exit non-zero
    assert (final / "README.md").is_file() and (final / "bundle" / "model.int8.onnx").is_file()


def test_package_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    from compress.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["package", str(tmp_path)])
    assert exc.value.code == 1
    assert "not a run folder" in capsys.readouterr().err


def _labelled_tsv(path: Path, sentences: list[str], names: tuple[str, ...]) -> Path:
    rows = ["sentence\tlabel"] + [f"{s}\t{names[i % len(names)]}" for i, s in enumerate(sentences)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_string_labels_with_three_classes_through_search_to_final(tmp_path, tiny_model_dir):
    """finetune (3 named classes) -> distill -> search -> bench -> final/ carries the names everywhere."""
    from optimum.onnxruntime import ORTModelForSequenceClassification
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    names = ("World", "Sports", "Sci/Tech")
    sents = builtin_pydoc_sentences()
    train = _labelled_tsv(tmp_path / "train.tsv", sents[:120], names)
    dev = _labelled_tsv(tmp_path / "dev.tsv", sents[120:160], names)
    test = _labelled_tsv(tmp_path / "test.tsv", sents[160:220], names)
    cfg = load_config(None, base={
        "name": "topics", "output_dir": str(tmp_path / "runs"), "task": "classification",
        "stages": ["finetune", "distill", "search", "bench"], "teacher": {"model": str(tiny_model_dir("bert", "embedding"))},
        "data": {"train": str(train), "eval": str(dev), "test": str(test), "label_column": "label"},
        "finetune": {"max_steps": 4, "batch_size": 16}, "student": {"num_layers": 1},
        "distill": {"max_steps": 3, "batch_size": 16, "loss": {"kl": 1.0, "hard": 0.5}},
        "search": {"prune_ratios": [0.0, 0.5], "quantize": ["dynamic"], "max_eval_samples": 60,
                   "targets": {"retention_floor": 0.01}},
        "quantize": {"guard": {"eval_samples": 32}}, "bench": QUICK_BENCH})
    outcomes = run_pipeline(cfg)
    assert [o.name for o in outcomes][-2:] == ["bench", "package"]
    final = tmp_path / "runs" / "topics" / "final"
    want = {"0": "Sci/Tech", "1": "Sports", "2": "World"}  # sorted unique names, as transformers' run_glue maps them
    for cfg_file in (final / "model" / "config.json", final / "onnx" / "config.json"):
        assert json.loads(cfg_file.read_text())["id2label"] == want
    assert json.loads((final / "bundle" / "labels.json").read_text()) == want
    report = json.loads((tmp_path / "runs" / "topics" / "report.json").read_text())
    assert report["id2label"] == want
    assert "Sci/Tech" in (tmp_path / "runs" / "topics" / "report.md").read_text()

    tok = AutoTokenizer.from_pretrained(str(final / "onnx"))
    pt = AutoModelForSequenceClassification.from_pretrained(str(final / "model")).eval()
    ort_model = ORTModelForSequenceClassification.from_pretrained(str(final / "onnx"), file_name="model.onnx")
    rows = sents[160:220]
    pt_pred = [p["label"] for p in pipeline("text-classification", model=pt, tokenizer=tok)(rows)]
    ort_pred = [p["label"] for p in pipeline("text-classification", model=ort_model, tokenizer=tok)(rows)]
    assert set(pt_pred) <= set(names)
    assert np.mean([a == b for a, b in zip(pt_pred, ort_pred)]) >= 0.99
    out = subprocess.run([sys.executable, str(final / "bundle" / "reference.py"), rows[0]], capture_output=True,
                         text=True, timeout=120, check=True)
    assert json.loads(out.stdout)["label"] in names


@pytest.mark.integration
def test_cls_normalised_minilm_variant_through_edgepress_run(tmp_path, minilm_path):
    """The packaged MiniLM with only its pooling config changed to CLS: the run's final ONNX answers like
    SentenceTransformer.encode of the distilled student (same pooling, normalisation and max length)."""
    import shutil

    import onnxruntime as ort
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    teacher = tmp_path / "minilm-cls"
    shutil.copytree(minilm_path, teacher)
    pooling = teacher / "1_Pooling" / "config.json"
    conf = json.loads(pooling.read_text())
    conf.update({k: False for k in conf if k.startswith("pooling_mode")}, pooling_mode_cls_token=True)
    pooling.write_text(json.dumps(conf))
    config = tmp_path / "cls.yaml"
    config.write_text(f"""name: cls
output_dir: {tmp_path / 'runs'}
stages: [distill, export, quantize]
teacher: {{model: {teacher}}}
data: {{train: 'builtin:pydoc', max_train_samples: 256, max_eval_samples: 64}}
student: {{num_layers: 2}}
distill: {{max_steps: 4, batch_size: 16}}
quantize: {{guard: {{eval_samples: 32}}}}
""")
    res = subprocess.run([sys.executable, "-m", "compress.cli", "run", str(config)], capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    final = tmp_path / "runs" / "cls" / "final"
    student = SentenceTransformer(str(final / "model"), device="cpu")
    assert student.max_seq_length == 256 and type(student[-1]).__name__ == "Normalize"
    texts = builtin_pydoc_sentences()[:16] + TEXTS
    ref = student.encode(texts)
    tok = AutoTokenizer.from_pretrained(str(final / "onnx"))
    sess = ort.InferenceSession(str(final / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    enc = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="np")
    got = sess.run(["sentence_embedding"], {i.name: enc[i.name].astype(np.int64) for i in sess.get_inputs()})[0]
    print(f"final ONNX vs SentenceTransformer.encode: min cosine {cosine(got, ref).min():.7f} over {len(texts)} texts")
    assert cosine(got, ref).min() >= 0.999
    manifest = json.loads((final / "bundle" / "manifest.json").read_text())
    assert manifest["pooling"]["mode"] == "cls" and manifest["pooling"]["normalized"] is True
    assert manifest["max_sequence_length"] == 256


def test_readme_load_example_runs_on_a_packaged_run(st_run):
    """README's 'three ways to load it' block, run as written on a packaged run's final/."""
    import re

    final, _, _ = st_run
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"<!-- load-example -->\s*```python\n(.*?)```\s*<!-- /load-example -->", readme, re.S).group(1)
    assert 'final = "runs/default/final"' in block
    namespace: dict = {}
    exec(compile(block.replace('"runs/default/final"', repr(str(final))), "README.md", "exec"), namespace)
    assert namespace["embeddings"].shape == (2, 32)
    assert np.asarray(namespace["token_vectors"]).shape[-1] == 32


def test_bench_run_takes_the_optimum_and_sentence_transformers_folders(st_run, tmp_path, capsys):
    from compress.cli import main

    final, _, _ = st_run
    assert (final / "onnx" / "model_quantized.onnx").is_file()
    with pytest.raises(SystemExit):  # optimum's folder holds fp32 and INT8: which one is measured is not guessed
        main(["bench", "run", f"optimum={final / 'onnx'}", "--out", str(tmp_path / "refused")])
    err = capsys.readouterr().err.strip()
    assert "model.onnx and model_quantized.onnx" in err and len(err.splitlines()) == 1
    optimum_only = tmp_path / "optimum-fp32"
    shutil.copytree(final / "onnx", optimum_only, ignore=shutil.ignore_patterns("model_quantized.onnx"))
    out = tmp_path / "bench"
    main(["bench", "run", f"optimum={optimum_only}", f"int8={final / 'onnx' / 'model_quantized.onnx'}",
          f"pytorch={final / 'model'}", "--warmup", "1", "--min-runs", "2", "--min-seconds", "0", "--out", str(out)])
    report = json.loads((out / "report.json").read_text())
    rows = {e["name"]: e for e in report["models"]}
    assert rows["optimum"]["format"] == "onnx" and rows["optimum"]["file"].endswith("model.onnx")
    assert rows["int8"]["status"] == "ok" and rows["int8"]["precision"] == "int8"
    assert rows["pytorch"]["format"] == "pytorch" and rows["pytorch"]["status"] == "ok"
    assert rows["pytorch"]["runtime"]["sentence_transformers"] is True


def test_rerun_of_a_finished_run_reuses_final(st_run):
    from compress.config import load_config

    final, _, _ = st_run
    cfg = load_config(final.parent / "config.resolved.yaml")
    before = (final / "package.json").stat().st_mtime_ns
    outcomes = run_pipeline(cfg)
    assert [o.status for o in outcomes] == ["skipped"] * 5
    assert (final / "package.json").stat().st_mtime_ns == before


def test_export_folder_loads_with_optimum(tiny_model_dir, tmp_path):
    """`edgepress export` writes optimum's layout: config.json and the tokenizer beside model.onnx."""
    from optimum.onnxruntime import ORTModelForSequenceClassification
    from transformers import AutoTokenizer

    from compress.cli import main

    model = tiny_model_dir("bert", "classification")
    main(["export", str(model), str(tmp_path / "out"), "--task", "classification"])
    ort_model = ORTModelForSequenceClassification.from_pretrained(str(tmp_path / "out"))
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "out"))
    assert ort_model(**tok(TEXTS, padding=True, return_tensors="pt")).logits.shape == (len(TEXTS), 2)
