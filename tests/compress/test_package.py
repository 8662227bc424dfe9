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
from compress.data.rows import builtin_pydoc_sentences
from compress.run.pipeline import run_pipeline

TEXTS = ["The cat sat on the mat.", "Python has many modules, functions and classes for every kind of program.",
         "A short one.", "Exceptions are raised when an error is detected during execution of a statement."]
QUICK_BENCH = {"min_runs": 3, "min_seconds": 0, "warmup": 1, "max_eval_samples": 40}
TEACHER_CARD = "---\nbase_model: sentence-transformers/all-MiniLM-L6-v2\nlicense: apache-2.0\nlanguage: en\n---\n# tiny\n"


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def make_st_teacher(folder: Path, pooling: str = "cls", normalize: bool = True, max_seq_length: int = 64) -> Path:
    """A tiny sentence-transformers folder (CLS pooling + Normalize by default), saved by sentence-transformers."""
    from sentence_transformers import SentenceTransformer

    from compress.model.interface import st_modules
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
    (teacher / "README.md").write_text(TEACHER_CARD)  # a local teacher naming its hub id and license, as hub copies do
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

    from compress.model.interface import st_modules

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


def test_every_stage_json_follows_its_schema(st_run):
    """Each stage.json of the run (distill, export, quantize, bench, package) matches compress/run/stage.schema.json; the
    quantize one's metrics its report's schema; a record missing a field is refused naming it."""
    from compress.core.errors import EdgepressError
    from compress.quantize.report import QuantizeReport
    from compress.run.schema import validate_stage_dir, validate_stage_record

    final, _, outcomes = st_run
    dirs = sorted(p for p in final.parent.iterdir() if (p / "stage.json").is_file())
    records = {d.name.split("-", 1)[1]: validate_stage_dir(d) for d in dirs}
    assert list(records) == [o.name for o in outcomes] == ["distill", "export", "quantize", "bench", "package"]
    quant = records["quantize"]
    assert QuantizeReport.from_dict(quant["metrics"]).to_dict() == quant["metrics"]
    broken = json.loads(json.dumps(quant))
    del broken["machine"]["cores"]
    with pytest.raises(EdgepressError, match=r"at machine: 'cores' is a required property"):
        validate_stage_record(broken)
    broken = json.loads(json.dumps(quant))
    del broken["metrics"]["recommended"]
    with pytest.raises(EdgepressError, match=r"metrics: .* at \(top level\): 'recommended' is a required property"):
        validate_stage_record(broken)


def test_bench_rows_type_the_teacher_and_the_shipped_entry(st_run):
    """The card's numbers come from BenchRows: the local teacher and the entry of the shipped file, as report.json
    holds them; an entry missing a required key is refused naming it."""
    from benchmarks.report_types import BenchRows
    from compress.core.errors import EdgepressError

    final, _, _ = st_run
    report = json.loads((final.parent / "report.json").read_text())
    package = json.loads((final / "package.json").read_text())
    shipped = final.parent / package["chosen"]["onnx"]
    rows = BenchRows.load(final.parent / "report.json", shipped)
    raw = {e["name"]: e for e in report["models"] if e["target"] == "local"}
    assert rows.teacher is not None and raw[rows.teacher.name]["role"] == "teacher"
    assert rows.chosen is not None and rows.chosen.precision == "int8"
    e = raw[rows.chosen.name]
    assert (rows.chosen.p50_ms, rows.chosen.retention, rows.chosen.value, rows.chosen.metric) == (
        e["latency_ms"]["p50"], e["retention"], e["quality"]["value"], e["quality"]["metric"])
    assert rows.data.metric == report["data"]["metric"] and rows.batch_sizes == report["settings"]["batch_sizes"]
    card = (final / "README.md").read_text()
    assert f"| {rows.chosen.name} | onnx/int8 |" in card and f"({rows.data.rows} rows, metric `{rows.data.metric}`)" in card
    del report["models"][0]["role"]
    with pytest.raises(EdgepressError, match="lacks role"):
        BenchRows.from_report(report, shipped)


def test_package_command_rewrites_final_from_a_finished_run(st_run):
    from compress.cli.main import main

    final, _, _ = st_run
    (final / "README.md").unlink()
    main(["package", str(final.parent)])  # success returns; errors exit non-zero
    assert (final / "README.md").is_file() and (final / "bundle" / "model.int8.onnx").is_file()


def test_package_json_follows_its_schema_and_reads_back_typed(st_run):
    """final/package.json is checked against compress/package/package.schema.json when written; PackageRecord reads
    it back to the same JSON, and a record missing a field is refused naming it."""
    import copy

    from compress.core.errors import EdgepressError
    from compress.package.record import PackageRecord

    final, _, _ = st_run
    data = json.loads((final / "package.json").read_text())
    record = PackageRecord.read(final)
    assert record.to_dict() == data and record.chosen.origin == "quantize" and record.chosen.precision == "int8"
    assert record.bundle.models == ["model.int8.onnx", "model.int8.ort"] and record.parity["onnx"].min_cosine > 0.99
    broken = copy.deepcopy(data)
    del broken["bundle"]["size_mb"]
    with pytest.raises(EdgepressError, match="package.schema.json at bundle: 'size_mb' is a required property"):
        PackageRecord.from_dict(broken)


def test_package_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    from compress.cli.main import main

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
    res = subprocess.run([sys.executable, "-m", "compress.cli.main", "run", str(config)], capture_output=True, text=True,
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
    from compress.cli.main import main

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

    from compress.cli.main import main

    model = tiny_model_dir("bert", "classification")
    main(["export", str(model), str(tmp_path / "out"), "--task", "classification"])
    ort_model = ORTModelForSequenceClassification.from_pretrained(str(tmp_path / "out"))
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "out"))
    assert ort_model(**tok(TEXTS, padding=True, return_tensors="pt")).logits.shape == (len(TEXTS), 2)


# ------------------------------------------------------------------ final/: card, layout, storage, no machine paths

def _code_blocks(card: str, lang: str) -> list[str]:
    import re

    return re.findall(rf"```{lang}\n(.*?)```", card, re.S)


def test_model_card_follows_hub_conventions(st_run):
    """base_model is the teacher's hub id, its license carries over, model-index holds the bench report's numbers,
    the tags say what the run did, and the card says its quality is teacher fidelity on the demo corpus."""
    from huggingface_hub import ModelCard

    final, _, _ = st_run
    report = json.loads((final.parent / "report.json").read_text())
    chosen = json.loads((final / "package.json").read_text())["chosen"]
    shipped = next(e for e in report["models"] if e["target"] == "local" and e.get("path", "").endswith(chosen["onnx"]))
    for card_file in (final / "README.md", final / "model" / "README.md"):
        card = ModelCard.load(card_file)
        data = card.data
        assert data.base_model == "sentence-transformers/all-MiniLM-L6-v2" and data.license == "apache-2.0"
        assert data.library_name == "sentence-transformers" and data.pipeline_tag == "sentence-similarity"
        assert {"distillation", "quantization", "int8"} <= set(data.tags) and "pruning" not in data.tags
        assert data.metrics == ["fidelity_cosine"] and not data.datasets  # builtin:pydoc is no hub dataset
        results = {r.metric_type: r for r in data.eval_results}
        assert results["fidelity_cosine"].metric_value == round(shipped["quality"]["value"], 4)
        assert results["retention"].metric_value == round(shipped["retention"], 4)
        assert results["fidelity_cosine"].dataset_type == "builtin:pydoc"
        assert "only on edgepress's demo corpus" in card.text and "not as accuracy on a task" in card.text
        assert "model_qint8_..." not in card.text


def test_model_card_snippets_run_from_each_folder(st_run):
    """Every python and bash block of final/README.md and final/model/README.md runs as written from its folder."""
    import os

    final, _, _ = st_run
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "OMP_NUM_THREADS": "1"}
    for folder in (final, final / "model"):
        card = (folder / "README.md").read_text()
        python, bash = _code_blocks(card, "python"), _code_blocks(card, "bash")
        assert len(python) == 2 and len(bash) == 1  # sentence-transformers (PyTorch + ONNX fp32/INT8), optimum
        res = subprocess.run([sys.executable, "-c", "\n".join(python)], cwd=folder, env=env, capture_output=True,
                             text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        assert "(2, 32)" in res.stdout and "token vectors" in res.stdout
        res = subprocess.run(bash[0], shell=True, cwd=folder, env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr[-2000:]
        assert len(json.loads(res.stdout)["sentence_embedding"]) == 32
        js = _code_blocks(card, "js")[0]
        assert f'env.localModelPath = "{"." if folder == final else ".."}"' in js and 'pooling: "cls"' in js


def test_final_stores_each_file_once_under_every_loaders_name(st_run):
    """transformers.js, sentence-transformers and optimum names are hard links of one fp32 and one INT8 file;
    du counts final/ at most 1.2x the bytes of its distinct contents."""
    import hashlib
    import os

    final, _, _ = st_run
    st_int8 = next((final / "model" / "onnx").glob("model_qint8_*.onnx"))
    int8_names = [final / "model" / "onnx" / "model_quantized.onnx", st_int8, final / "onnx" / "model_quantized.onnx",
                  final / "onnx" / "onnx" / "model_quantized.onnx", final / "bundle" / "model.int8.onnx"]
    fp32_names = [final / "model" / "onnx" / "model.onnx", final / "onnx" / "model.onnx",
                  final / "onnx" / "onnx" / "model.onnx"]
    for names in (int8_names, fp32_names):
        assert len({p.stat().st_ino for p in names}) == 1 and names[0].stat().st_nlink >= len(names)
    files = [p for p in final.rglob("*") if p.is_file()]
    distinct = {hashlib.sha256(p.read_bytes()).hexdigest(): p.stat().st_size for p in files}
    stored = {p.stat().st_ino: p.stat().st_size for p in files}
    assert sum(stored.values()) == sum(distinct.values())  # no content under two inodes
    du = int(subprocess.run(["du", "-s", "--apparent-size", "-B1", str(final)], capture_output=True, text=True,
                            check=True).stdout.split()[0])
    assert du <= 1.2 * sum(distinct.values()), (du, sum(distinct.values()))
    named = sum(p.stat().st_size for p in files)
    info = json.loads((final / "package.json").read_text())["storage"]
    assert info["copied_instead_of_linked"] == {} and info["bytes_stored"] < 0.6 * info["bytes_named"] < named
    assert info["hard_links"]["onnx/onnx/model_quantized.onnx"] == "model/onnx/model_quantized.onnx"


def test_final_holds_no_path_of_the_build_machine(st_run):
    """No shipped file (binary files included) names the run folder, the teacher folder, $HOME or site-packages."""
    import os
    import site

    final, teacher, _ = st_run
    needles = {str(final.parent.resolve()), str(teacher.resolve()), str(Path.home()), "site-packages",
               *(p for p in site.getsitepackages() if p)}
    hits = [(str(p.relative_to(final)), n) for p in final.rglob("*") if p.is_file()
            for n in needles if n.encode() in p.read_bytes()]
    assert hits == []
    iface = json.loads((final / "model" / "edgepress_interface.json").read_text())
    assert iface["source"] == "sentence-transformers/all-MiniLM-L6-v2"
    package = json.loads((final / "package.json").read_text())
    assert not Path(package["chosen"]["model_dir"]).is_absolute() and (final.parent / package["chosen"]["onnx"]).is_file()


def test_teacher_of_names_hub_ids_never_paths(tmp_path, tiny_model_dir):
    from compress.package.card import teacher_of

    packaged = teacher_of("packaged:minilm-l6")
    assert (packaged.hub_id, packaged.license) == ("sentence-transformers/all-MiniLM-L6-v2", "apache-2.0")
    assert teacher_of("google-bert/bert-base-uncased").hub_id == "google-bert/bert-base-uncased"
    local = Path(tiny_model_dir("bert", "embedding"))
    plain = teacher_of(str(local))
    assert plain.hub_id is None and plain.reference == local.name  # no hub id: the folder's name, not its path
    named = tmp_path / "named"
    shutil.copytree(local, named)
    conf = json.loads((named / "config.json").read_text())
    (named / "config.json").write_text(json.dumps({**conf, "_name_or_path": "my-org/my-teacher"}))
    assert teacher_of(str(named)).hub_id == "my-org/my-teacher"
    (named / "README.md").write_text("---\nbase_model: other-org/base\nlicense: mit\n---\n")
    assert (teacher_of(str(named)).hub_id, teacher_of(str(named)).license) == ("other-org/base", "mit")


def test_storage_links_each_file_once_and_copies_where_links_are_refused(tmp_path, monkeypatch):
    """Later names of a file are hard links of its first; where the file system refuses a link (EXDEV: another
    device) the file is copied and package.json's storage section names it."""
    import errno
    import os

    from compress.package.stage import Storage

    src = tmp_path / "stage" / "model.int8.onnx"
    src.parent.mkdir()
    src.write_bytes(b"int8 bytes" * 100)
    root = tmp_path / "final"
    linked = Storage(root)
    first = linked.place(src, root / "model" / "onnx" / "model_quantized.onnx")
    second = linked.place(src, root / "onnx" / "onnx" / "model_quantized.onnx")
    (root / "a.json").write_text("{}\n" * 10)
    (root / "b.json").write_text("{}\n" * 10)  # same bytes from another writer: linked by dedupe
    linked.dedupe()
    assert first.stat().st_ino == second.stat().st_ino != src.stat().st_ino  # final/ owns its copy
    assert (root / "a.json").stat().st_ino == (root / "b.json").stat().st_ino
    info = linked.info()
    assert info["hard_links"] == {"onnx/onnx/model_quantized.onnx": "model/onnx/model_quantized.onnx",
                                  "b.json": "a.json"}
    assert info["bytes_stored"] == 1000 + 30 and info["copied_instead_of_linked"] == {}

    def refuse(*_args, **_kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", refuse)
    other = Storage(tmp_path / "final2")
    a = other.place(src, other.root / "model" / "onnx" / "model_quantized.onnx")
    b = other.place(src, other.root / "bundle" / "model.int8.onnx")
    assert a.read_bytes() == b.read_bytes() == src.read_bytes() and a.stat().st_ino != b.stat().st_ino
    assert other.info()["copied_instead_of_linked"] == {
        "bundle/model.int8.onnx": "hard link refused (Invalid cross-device link); copied"}
