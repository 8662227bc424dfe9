"""The bundle's reference.py for NER (entities with character offsets) and QA (answer spans)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np


def _bundle(tiny_model_dir, tmp_path, head: str) -> Path:
    from export.bundle import export_bundle

    export_bundle(tiny_model_dir("bert", head), tmp_path / "bundle", head, formats=["onnx"])
    return tmp_path / "bundle"


def _reference(bundle: Path):
    spec = importlib.util.spec_from_file_location("reference", bundle / "reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_entities_are_merged_bio_spans_with_character_offsets(tiny_model_dir, tmp_path):
    bundle = _bundle(tiny_model_dir, tmp_path, "token-classification")
    ref = _reference(bundle)
    manifest = ref.load_manifest()
    assert manifest["labels"]["id2label"]["1"] == "B-PER"
    text = "Python modules are in the library of Paris today"
    enc = ref.tokenize(manifest, text)
    words = {}  # word index -> its first sub-token position
    for k, w in enumerate(enc.word_ids):
        if w is not None and w not in words:
            words[w] = k
    logits = np.zeros((len(enc.ids), 5))
    logits[:, 0] = 5.0  # O everywhere ...
    for w, label in ((0, 1), (1, 2), (7, 3)):  # ... but "Python modules" = PER, "Paris" = LOC
        logits[words[w]] = 0.0
        logits[words[w], label] = 5.0
    got = ref.entities(manifest, text, logits)
    assert [(e["entity"], e["text"], e["start"], e["end"]) for e in got] == [
        ("PER", "Python modules", 0, 14), ("LOC", "Paris", 37, 42)]
    out = subprocess.run([sys.executable, str(bundle / "reference.py"), text], capture_output=True, text=True,
                         timeout=120, check=True)
    for e in json.loads(out.stdout)["entities"]:  # the real (random) model: spans point into the text
        assert text[e["start"]:e["end"]] == e["text"] and e["entity"] in ("PER", "LOC")


def test_answer_is_the_best_context_span_or_the_null_answer(tiny_model_dir, tmp_path):
    bundle = _bundle(tiny_model_dir, tmp_path, "question-answering")
    ref = _reference(bundle)
    manifest = ref.load_manifest()
    question, context = "what is it", "The module of the standard library is here."
    enc = ref.tokenize(manifest, question, context)
    k = next(i for i, (s, o) in enumerate(zip(enc.sequence_ids, enc.offsets))
             if s == 1 and context[o[0]:o[1]] == "module")
    start, end = np.zeros((1, len(enc.ids))), np.zeros((1, len(enc.ids)))
    start[0, k], end[0, k + 3] = 8.0, 8.0
    got = ref.answer(manifest, question, context, {"start_logits": start, "end_logits": end})
    assert got["answer"] == "module of the standard" and context[got["start"]:got["end"]] == got["answer"]
    start[0, 0], end[0, 0] = 20.0, 20.0
    assert ref.answer(manifest, question, context, {"start_logits": start, "end_logits": end})["answer"] == ""
    assert manifest["no_answer_threshold"] == 0.0  # a head without a tuned threshold: run_qa's default
    # null 40 vs span 16: a margin of 24, so a threshold of 25 answers with the span and 23 does not
    for threshold, expected in ((25.0, "module of the standard"), (23.0, "")):
        tuned = dict(manifest, no_answer_threshold=threshold)
        assert ref.answer(tuned, question, context, {"start_logits": start, "end_logits": end})["answer"] == expected
    out = subprocess.run([sys.executable, str(bundle / "reference.py"), question, "--context", context],
                         capture_output=True, text=True, timeout=120, check=True)
    pred = json.loads(out.stdout)
    assert pred["answer"] == "" or context[pred["start"]:pred["end"]] == pred["answer"]
