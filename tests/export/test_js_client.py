"""The bundle's JavaScript client (Node and headless Chromium) and transformers.js give what Python gives.

Node, Chromium and the npm packages of tests/js come from .ci/run (Debian's packages, `npm ci`); where they are
absent the tests skip with the reason. The default-run tests read runs/default/final, which README's first command
(CI's first step) writes.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import threading
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
JS = REPO / "tests" / "js"
DEFAULT_FINAL = REPO / "runs" / "default" / "final"
TIMEOUT = 300

NER_TEXTS = ["Python modules are in the library of Paris today, naïve café!",
             "The standard library of Ünïcödé 東京 module is here 😀 and there.",
             "x"]
QA_ROWS = [("what is it", "The module of the standard library is here."),
           ("where is the library?", " ".join(["the module library of python is here"] * 30))]
TEXTS = {"embedding": ["The exported model must give the same vector as PyTorch.", "naïve café 東京 😀"],
         "classification": ["A sentence.", "The module of the standard library is here."],
         "token-classification": NER_TEXTS}


@pytest.fixture(scope="module")
def node() -> str:
    exe = shutil.which("node")
    if exe is None:
        pytest.skip("node not found: .ci/run installs Debian's nodejs (apt-get install nodejs npm)")
    if not (JS / "node_modules" / "@huggingface" / "tokenizers").is_dir():
        pytest.skip("tests/js/node_modules is missing: run `npm ci` in tests/js (.ci/run does)")
    return exe


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium not found: .ci/run installs Debian's chromium (apt-get install chromium)")
    return exe


def _bundle(model_dir: Path, tmp_path: Path, head: str) -> Path:
    from export.bundle import export_bundle

    bundle = tmp_path / f"bundle-{head}"
    export_bundle(model_dir, bundle, head, formats=["onnx"])
    (bundle / "node_modules").symlink_to(JS / "node_modules")  # what `npm ci` in the bundle folder would give
    return bundle


def _run(cmd: list[str], stdin: str | None = None) -> dict[str, Any]:
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _python(bundle: Path, text: str, context: str | None = None) -> dict[str, Any]:
    extra = [] if context is None else ["--context", context]
    return _run([sys.executable, str(bundle / "reference.py"), text, *extra])


def _node(node: str, bundle: Path, text: str, context: str | None = None) -> dict[str, Any]:
    extra = [] if context is None else ["--context", context]
    return _run([node, str(bundle / "edgepress-client.mjs"), text, *extra])


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".wasm": "application/wasm", ".json": "application/json"}

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def _served(folder: Path) -> Iterator[str]:
    """``folder`` over HTTP on 127.0.0.1 (a free port) for as long as the block runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()


def _browser(node: str, chromium: str, bundle: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the demo page shows for each row, typed in and run in headless Chromium."""
    with _served(bundle) as url:
        out = _run([node, str(JS / "browser.mjs"), url, chromium], json.dumps(rows))
    assert out["status"].startswith(json.loads((bundle / "manifest.json").read_text())["task"])
    return out["results"]


def _cosine(a: Any, b: Any) -> np.ndarray:
    a, b = np.atleast_2d(np.asarray(a, dtype=np.float64)), np.atleast_2d(np.asarray(b, dtype=np.float64))
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def _assert_same(task: str, js: dict[str, Any], py: dict[str, Any]) -> None:
    """The JS prediction is reference.py's: same labels, entities and spans; numbers equal to float32 noise."""
    if task == "embedding":
        assert (js["pooling"], js["normalized"]) == (py["pooling"], py["normalized"])
        assert float(_cosine(js["sentence_embedding"], py["sentence_embedding"]).min()) >= 0.99
        assert np.abs(np.subtract(js["sentence_embedding"], py["sentence_embedding"])).max() < 1e-4
    elif task == "classification":
        assert js["label"] == py["label"] and js["scores"].keys() == py["scores"].keys()
        assert max(abs(js["scores"][k] - py["scores"][k]) for k in py["scores"]) < 1e-5
    elif task == "token-classification":
        assert [{k: v for k, v in e.items() if k != "score"} for e in js["entities"]] == \
            [{k: v for k, v in e.items() if k != "score"} for e in py["entities"]]
        assert all(abs(a["score"] - b["score"]) < 1e-5 for a, b in zip(js["entities"], py["entities"]))
    else:
        assert (js["answer"], js["start"], js["end"]) == (py["answer"], py["start"], py["end"])
        assert abs(js["score"] - py["score"]) < 1e-4


def _rows(task: str) -> list[tuple[str, str | None]]:
    return QA_ROWS if task == "question-answering" else [(t, None) for t in TEXTS[task]]


TASKS = ["embedding", "classification", "token-classification", "question-answering"]


@pytest.mark.parametrize("task", TASKS)
def test_node_client_prints_what_reference_py_prints(task, node, tiny_model_dir, tmp_path):
    bundle = _bundle(tiny_model_dir("bert", task), tmp_path, task)
    for text, context in _rows(task):
        _assert_same(task, _node(node, bundle, text, context), _python(bundle, text, context))
    if task == "token-classification":  # the random tiny model tags something, so spans are compared, not just []
        assert any(_python(bundle, t)["entities"] for t in NER_TEXTS)


@pytest.mark.parametrize("task", TASKS)
def test_demo_page_in_headless_chromium_shows_what_reference_py_prints(task, node, chromium, tiny_model_dir, tmp_path):
    bundle = _bundle(tiny_model_dir("bert", task), tmp_path, task)
    rows = _rows(task)
    shown = _browser(node, chromium, bundle, [{"text": t, "context": c} for t, c in rows])
    assert len(shown) == len(rows)
    for (text, context), js in zip(rows, shown):
        assert "error" not in js, js
        _assert_same(task, js, _python(bundle, text, context))


ENCODING_ROWS = [
    ["Python modules are in the library of Paris today, naïve café!", None],
    ["Ünïcödé ÀÉÎ straße 東京 emoji 😀 here", None], ["  leading   spaces\tand\nnewlines  ", None],
    ["what is it?", "The module of the standard library is here."], ["a  b", " x"], ["x😀y", None],
    ["x", " ".join(["the module library of python is here"] * 30)],
    [" ".join(["the module library of python is here"] * 30), "short one"],
    [" ".join(["the module library of python is here"] * 30)] * 2,
    [" ".join(["the module library of python is here"] * 30), None],
    ["don't stop-me now (a.b) [x] {y} 3.14", "Zebra xylophone qqq"], ["", None], ["a\u0301 e\u0300 combining", None],
    ["ﬁ ligature ½ ²", None]]


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_client_tokens_offsets_and_words_are_python_tokenizers(arch, node, tiny_model_dir, tmp_path):
    """ids, type ids, character offsets, word and sequence ids of WordPiece and byte-level BPE tokenizers, truncated
    pairs included: the spans of entities and answers rest on them."""
    from tokenizers import Tokenizer

    from tests.tiny import make_tiny_roberta

    model = tiny_model_dir("bert", "token-classification") if arch == "bert" else make_tiny_roberta(tmp_path / "rob")
    bundle = _bundle(model, tmp_path, "token-classification")
    manifest = json.loads((bundle / "manifest.json").read_text())
    tok = Tokenizer.from_file(str(bundle / manifest["tokenizer"]["tokenizer_json"]))
    tok.no_padding()
    tok.enable_truncation(max_length=manifest["max_sequence_length"])
    got = _run([node, str(JS / "encodings.mjs"), str(bundle)], json.dumps(ENCODING_ROWS))
    truncated = 0
    for (text, pair), js in zip(ENCODING_ROWS, got):
        enc = tok.encode(text, pair) if pair is not None else tok.encode(text)
        truncated += len(enc.overflowing) > 0
        want = {"ids": enc.ids, "type_ids": enc.type_ids, "offsets": [list(o) for o in enc.offsets],
                "word_ids": enc.word_ids, "sequence_ids": enc.sequence_ids}
        assert js == want, (text, pair)
    assert truncated == 4  # the long rows were cut to max_sequence_length, as reference.py cuts them


def test_manifest_names_the_js_client_and_pins_what_transformers_js_expects(tiny_model_dir, tmp_path):
    from export.bundle import JS_DIR

    bundle = _bundle(tiny_model_dir("bert", "embedding"), tmp_path, "embedding")
    manifest = json.loads((bundle / "manifest.json").read_text())
    js = manifest["javascript"]
    assert {js["client"], js["demo"], js["package"], "package-lock.json"} <= set(manifest["files"])
    pins = json.loads((JS_DIR / "package.json").read_text())["dependencies"]
    assert js["npm_packages"] == pins and all(v[0].isdigit() for v in pins.values())  # exact versions, no ranges
    tests_pins = json.loads((JS / "package.json").read_text())["dependencies"]
    assert {k: tests_pins[k] for k in pins} == pins  # the tests run the versions the bundle ships
    lock = json.loads((JS_DIR / "package-lock.json").read_text())
    assert lock["packages"][""]["dependencies"] == pins
    # transformers.js pins onnxruntime-node/-web exactly; a second onnxruntime-node in one process fails to load
    tjs = json.loads((JS / "package-lock.json").read_text())["packages"]["node_modules/@huggingface/transformers"]
    for name in ("onnxruntime-node", "onnxruntime-web", "@huggingface/tokenizers"):
        assert tjs["dependencies"][name].lstrip("^~") == pins[name]


def test_node_client_usage_errors_are_one_line(node, tiny_model_dir, tmp_path):
    bundle = _bundle(tiny_model_dir("bert", "question-answering"), tmp_path, "question-answering")
    client = str(bundle / "edgepress-client.mjs")
    for args, needle in ((["what"], "needs --context"), (["a", "b"], "exactly one TEXT"),
                         (["what", "--context", "c", "--model", "nope.onnx"], "not an ONNX/ORT file"),
                         (["what", "--bogus"], "Unknown option")):
        proc = subprocess.run([node, client, *args], capture_output=True, text=True, timeout=TIMEOUT)
        assert proc.returncode == 2 and needle in proc.stderr, (args, proc.stderr)
        assert "    at " not in proc.stderr  # no stack trace
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["tokenizer"]["tokenizer_json"] = "../../etc/passwd"
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    proc = subprocess.run([node, client, "what", "--context", "c"], capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 1 and "outside the bundle folder" in proc.stderr and len(proc.stderr.splitlines()) == 1


@pytest.fixture(scope="module")
def default_final() -> Path:
    if not (DEFAULT_FINAL / "model" / "modules.json").is_file():
        pytest.skip(f"{DEFAULT_FINAL} not found: README's first command (`edgepress run configs/default.yaml`, CI's "
                    "first step) writes it")
    return DEFAULT_FINAL


DEFAULT_TEXTS = ["A man is playing a guitar.", "The exported model runs in the browser.",
                 "Compress BERT-family models for phones.", "naïve café, 東京 😀"]


@pytest.fixture(scope="module")
def default_reference(default_final) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(default_final / "model"), device="cpu").encode(DEFAULT_TEXTS)


@pytest.mark.parametrize("dtype, onnx_file", [("fp32", "model.onnx"), ("q8", "model_quantized.onnx")])
def test_transformers_js_on_the_default_run_matches_sentence_transformers(dtype, onnx_file, node, default_final,
                                                                          default_reference):
    folder = default_final / "model"
    assert (folder / "onnx" / onnx_file).is_file(), f"transformers.js dtype {dtype} loads onnx/{onnx_file}"
    out = _run([node, str(JS / "transformers_embed.mjs"), str(folder), dtype], json.dumps(DEFAULT_TEXTS))
    cos = _cosine(out["embeddings"], default_reference)
    print(f"transformers.js {dtype} vs SentenceTransformer.encode: min cosine {cos.min():.5f}")
    assert cos.min() >= 0.99


def test_bundle_js_client_on_the_default_run_in_node_and_chromium(node, chromium, default_final, default_reference,
                                                                 tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(default_final / "bundle", bundle)
    (bundle / "node_modules").symlink_to(JS / "node_modules")
    in_node = np.asarray([_node(node, bundle, t)["sentence_embedding"] for t in DEFAULT_TEXTS])
    shown = _browser(node, chromium, bundle, [{"text": t} for t in DEFAULT_TEXTS])
    assert all("error" not in s for s in shown), shown
    in_chromium = np.asarray([s["sentence_embedding"] for s in shown])
    for where, got in (("node", in_node), ("chromium", in_chromium)):
        cos = _cosine(got, default_reference)
        print(f"bundle client in {where} vs SentenceTransformer.encode: min cosine {cos.min():.5f}")
        assert cos.min() >= 0.99
    python = np.asarray([_python(bundle, t)["sentence_embedding"] for t in DEFAULT_TEXTS])
    # the same file in three runtimes: onnxruntime-web's INT8 kernels round a little differently (measured 0.99997)
    assert _cosine(in_node, python).min() >= 0.9999 and _cosine(in_chromium, python).min() >= 0.999
