"""The packaged all-MiniLM-L6-v2 teacher in every platform runtime, against SentenceTransformer.encode.

Every file ``export.formats`` writes for the teacher (fp32, and each runtime's INT8 / fp16 sibling) runs in its own
runtime through the benchmark's runner, one sentence at a time on real sentences of many lengths (up to the
teacher's 256 tokens), and its sentence vectors are compared with ``SentenceTransformer.encode``: every sentence's
cosine reaches 0.999 for fp32 files and 0.98 for INT8 / fp16 files. Core ML cannot predict on Linux; its files
must say so.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.integration

RUNTIME_FORMATS = ["onnx", "executorch", "litert", "openvino", "coreml"]
FP32_FLOOR, QUANTIZED_FLOOR = 0.999, 0.98


def sentences() -> list[str]:
    """48 real sentences from 5 to 200 words (the longest are truncated at 256 tokens), from CPython's docs."""
    from compress.data.rows import builtin_pydoc_sentences

    short = builtin_pydoc_sentences(min_words=5, max_words=60)
    return short[::max(1, len(short) // 40)][:40] + [" ".join(short[i:i + 12]) for i in range(0, 96, 12)]


def per_sentence_cosines(runner, tokenizer, texts: list[str], reference: np.ndarray, max_length: int) -> np.ndarray:
    """Cosine of the runner's sentence vector to the reference's, each sentence run alone (batch 1)."""
    from benchmarks.feeds import tokenize_feeds

    out = np.concatenate([runner.predict(tokenize_feeds(tokenizer, [t], max_length=max_length,
                                                        names=runner.input_names)) for t in texts])
    num = np.sum(out * reference, axis=1)
    return num / (np.linalg.norm(out, axis=1) * np.linalg.norm(reference, axis=1))


def test_teacher_files_in_every_runtime_match_sentence_transformers(minilm_path, tmp_path):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    from benchmarks.runners import runner_class
    from benchmarks.runners.base import Threads
    from export.api import export_model

    res = export_model(minilm_path, tmp_path / "out", "embedding", RUNTIME_FORMATS)
    metrics = res["metrics"]
    st = SentenceTransformer(minilm_path, device="cpu")
    max_length = st.max_seq_length
    texts = sentences()
    reference = st.encode(texts, batch_size=16, convert_to_numpy=True, show_progress_bar=False)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    files = {(fmt, "fp32"): path for fmt, path in res["files"].items() if fmt in RUNTIME_FORMATS}
    for key, path in res["files"].items():
        fmt, _, precision = key.partition("_")
        if fmt in RUNTIME_FORMATS and precision in ("int8", "fp16"):
            files[(fmt, precision)] = path
    measured = {}
    for (fmt, precision), path in sorted(files.items()):
        if fmt == "coreml":
            continue
        runner = runner_class(fmt, "cpu")(path, "embedding", Threads(intra_op=2))
        runner.load()
        cos = per_sentence_cosines(runner, tokenizer, texts, reference, max_length)
        measured[f"{fmt} {precision}"] = (float(cos.min()), float(cos.mean()))
    print("\nteacher vs SentenceTransformer.encode, per-sentence cosine (min, mean) over", len(texts), "sentences:")
    for name, (low, mean) in measured.items():
        print(f"  {name:18s} min {low:.6f} mean {mean:.6f}")
    assert {"onnx fp32", "executorch fp32", "litert fp32", "openvino fp32", "openvino int8", "litert int8",
            "litert fp16"} <= set(measured)
    for name, (low, _) in measured.items():
        floor = FP32_FLOOR if name.endswith("fp32") else QUANTIZED_FLOOR
        assert low >= floor, f"{name}: min cosine {low:.5f} < {floor}"
    assert metrics["parity_coreml"]["predicted"] is False and "macOS" in metrics["parity_coreml"]["why"]
    assert "coreml_int8" in res["files"]
