"""Bad inputs of issue 34 (labels, config values, bench files, list-item typos) through ``compress.cli.main.main``.

Each case asserts: the exit code (2 for config and usage errors, 1 otherwise), one short message (at most 3 lines
from the ``error:`` line on) naming the file or field, no traceback, no file outside the run folder changed (a
canary beside the models included), no ``stage.json`` anywhere, and for a refused config no run folder at all.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from tests.cli_errors import expect_one_line_error
from tests.tiny import make_tiny_model

R = "run"
CANARY = "canary.txt"


@dataclass
class World:
    """Tiny models (and damaged copies) built once for the module, plus a canary file no case may touch."""

    root: Path
    tiny: Path

    def copy(self, name: str, src: Path | None = None) -> Path:
        dst = self.root / "copies" / name
        if not dst.exists():
            shutil.copytree(src or self.tiny, dst)
        return dst


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("inputs")
    w = World(root, make_tiny_model(root / "tiny", "bert", "mlm"))
    (root / CANARY).write_text("unchanged\n")
    (w.copy("badtok") / "tokenizer.json").write_text('{"version": "1.0", "model": ')  # cut short
    huge = w.copy("hugetok") / "tokenizer.json"
    os.truncate(huge, 600 * 2**20)  # sparse: 600 MiB on paper, nothing on disk
    named = make_tiny_model(root / "named", "bert", "classification")
    cfg = json.loads((named / "config.json").read_text())
    cfg["id2label"], cfg["label2id"] = {"0": "neg", "1": "pos"}, {"neg": 0, "pos": 1}
    (named / "config.json").write_text(json.dumps(cfg))
    make_tiny_model(root / "cls", "bert", "classification")
    return w


def _data(w: World, name: str, content: str | bytes) -> str:
    path = w.root / "data" / name
    path.parent.mkdir(exist_ok=True)
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return str(path)


def _rows(label: Callable[[int], object], n: int = 24) -> str:
    return "sentence\tlabel\n" + "".join(f"sentence number {i} here\t{label(i)}\n" for i in range(n))


def _config(w: World, case: Path, extra: str = "", model: str | None = None, train: str = "builtin:pydoc",
            data_extra: str = "", stages: str = "[distill]") -> str:
    path = case / "c.yaml"
    path.write_text(f"name: t\noutput_dir: {case / 'runs'}\nstages: {stages}\n"
                    f"teacher: {{model: '{model or w.tiny}'}}\n"
                    f"data: {{train: '{train}', max_train_samples: 32{data_extra}}}\n"
                    f"distill: {{max_steps: 1, batch_size: 8}}\nstudent: {{num_layers: 1}}\n{extra}")
    return str(path)


def _cls_config(w: World, case: Path, train: str, model: str = "cls", extra: str = "", data_extra: str = "",
                 stages: str = "[distill]") -> str:
    """A classification run on ``train`` (``label`` column) with the tiny classifier ``model`` as teacher."""
    return _config(w, case, "task: classification\n" + extra, model=str(w.root / model), train=train,
                   data_extra=", label_column: label" + data_extra, stages=stages)


def _write(path: Path, content: str | bytes) -> str:
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return str(path)


BENCH_FAST = ["--seq", "8", "--warmup", "0", "--min-runs", "1", "--min-seconds", "0"]

# (id, argv builder (world, case folder) -> argv, exit code, needles that must appear in the message)
CASES = [
    # ------------------------------------------------------------ item 3: labels against the head (exit 1)
    ("test-class-id-beyond-head",
     lambda w, c: [R, _cls_config(w, c, _data(w, "tr.tsv", _rows(lambda i: i % 2)),
                                  data_extra=f", test: '{_data(w, 'te.tsv', _rows(lambda i: i % 3, 9))}'")],
     1, ("te.tsv", "row 3", "label column 'label'", "class id 2", "2 classes (ids 0-1")),
    ("eval-class-id-beyond-head",
     lambda w, c: [R, _cls_config(w, c, _data(w, "tr.tsv", _rows(lambda i: i % 2)),
                                  data_extra=f", eval: '{_data(w, 'ev7.tsv', _rows(lambda i: 7, 3))}'")],
     1, ("ev7.tsv", "class id 7", "teacher")),
    ("labels-mix-ids-and-names",
     lambda w, c: [R, _cls_config(w, c, _data(w, "mix.tsv", _rows(lambda i: "positive" if i == 5 else i % 2)))],
     1, ("mix.tsv", "label column 'label'", "mixes integer class ids", "'positive', row 6")),
    ("finetune-eval-id-unseen",
     lambda w, c: [R, _cls_config(w, c, _data(w, "tr.tsv", _rows(lambda i: i % 2)), model="cls", stages="[finetune]",
                                  data_extra=f", eval: '{_data(w, 'ev3.tsv', _rows(lambda i: 3, 4))}'")],
     1, ("ev3.tsv", "class id 3", "fine-tuned", "tr.tsv")),
    ("finetune-num-labels-too-small",
     lambda w, c: [R, _cls_config(w, c, _data(w, "tr3.tsv", _rows(lambda i: i % 3)), stages="[finetune]",
                                  extra="", data_extra=""), "--set", "teacher.num_labels=2"],
     1, ("tr3.tsv", "class id 2", "teacher.num_labels=2")),
    ("name-unknown-to-teacher-head",
     lambda w, c: [R, _cls_config(w, c, _data(w, "np.tsv", _rows(lambda i: ["neg", "pos"][i % 2])), model="named",
                                  data_extra=f", test: '{_data(w, 'neu.tsv', _rows(lambda i: 'neutral', 3))}'")],
     1, ("neu.tsv", "'neutral'", "known: neg, pos")),
    ("standalone-distill-class-id-beyond-head",
     lambda w, c: ["distill", str(w.root / "cls"), str(c / "out"), "--task", "classification",
                   "--data", _data(w, "tr5.tsv", _rows(lambda i: 5 if i == 4 else i % 2)),
                   "--set", "data.label_column=label", "--set", "distill.max_steps=1", "--layers", "1"],
     1, ("tr5.tsv", "row 5", "class id 5", "2 classes", "cls")),
    ("standalone-prune-class-id-beyond-head",
     lambda w, c: ["prune", str(w.root / "cls"), str(c / "out"), "--task", "classification",
                   "--data", _data(w, "tr4.tsv", _rows(lambda i: 4 if i == 2 else i % 2)),
                   "--set", "data.label_column=label"],
     1, ("tr4.tsv", "row 3", "class id 4", "2 classes")),
    # ------------------------------------------------------------ item 9: refused at validate time (exit 2)
    ("yaml-section-twice", lambda w, c: [R, _config(w, c, "distill: {max_steps: 2}\n")], 2,
     ("c.yaml", "key 'distill' is given twice", "lines 6 and 8")),
    ("yaml-key-twice-in-flow", lambda w, c: ["validate", _config(w, c, data_extra=", max_train_samples: 8")], 2,
     ("c.yaml", "key 'max_train_samples' is given twice")),
    ("config-is-folder", lambda w, c: [R, str(c)], 2, ("is a folder", "YAML file")),
    ("config-not-utf8", lambda w, c: [R, _write(c / "l.yaml", "name: caf\xe9\n".encode("latin-1"))], 2,
     ("l.yaml", "not UTF-8", "line 1")),
    ("seed-negative", lambda w, c: [R, _config(w, c), "--set", "seed=-1"], 2, ("'seed'", "-1")),
    ("seed-beyond-numpy", lambda w, c: [R, _config(w, c), "--set", "seed=4294967296"], 2, ("'seed'", "4294967296")),
    ("run-name-too-long", lambda w, c: [R, _config(w, c), "--set", "name=" + "n" * 300], 2,
     ("name 'nnnn", "300 bytes", "at most 255")),
    ("output-dir-part-too-long", lambda w, c: ["validate", _config(w, c), "--set", f"output_dir={c / ('o' * 256)}"], 2,
     ("output_dir", "256 bytes")),
    ("stages-empty", lambda w, c: [R, _config(w, c, stages="[]")], 2, ("'stages'", "at least one")),
    ("quantize-methods-empty", lambda w, c: [R, _config(w, c, "quantize: {methods: []}\n",
                                                     stages="[distill, export, quantize]")], 2,
     ("quantize.methods is empty",)),
    ("search-floor-zero", lambda w, c: [R, _config(w, c), "--set", "search.targets.retention_floor=0"], 2,
     ("search.targets.retention_floor", "greater than 0")),
    ("guard-floor-above-one", lambda w, c: ["validate", _config(w, c), "--set", "quantize.guard.retention_floor=1.5"], 2,
     ("quantize.guard.retention_floor", "less than or equal to 1")),
    ("student-layer-twice", lambda w, c: [R, _config(w, c), "--set", "student.layers=[0, 1, 0]"], 2,
     ("'student'", "teacher layer 0 is listed twice")),
    ("distill-loss-all-zero", lambda w, c: [R, _config(w, c, "task: classification\n", model=str(w.root / "cls")),
                                            "--set", "distill.loss={kl: 0, hard: 0.0}"], 2,
     ("distill.loss", "every distill.loss weight is 0")),
    ("recovery-loss-all-zero", lambda w, c: ["validate", _config(w, c), "--set", "prune.recovery.loss={cos: 0}"], 2,
     ("prune.recovery.loss", "weight is 0")),
    ("qa-stride-not-below-length",
     lambda w, c: [R, _config(w, c, "task: question-answering\n"), "--set", "data.doc_stride=128"], 2,
     ("data.doc_stride=128", "below teacher.max_length=128")),
    ("regression-with-unlabeled", lambda w, c: [R, _config(w, c, "task: regression\n"), "--set",
                                                "data.unlabeled=[{source: 'builtin:pydoc'}]"], 2,
     ("data.unlabeled", "regression needs a score for every row")),
    ("recovery-unlabeled-for-ner", lambda w, c: [R, _config(w, c, "task: token-classification\n", stages="[distill, prune]"),
                                                 "--set", "prune.recovery={enabled: true, unlabeled: true}"], 2,
     ("prune.recovery.unlabeled", "not token-classification")),
    ("save-steps-off-eval-steps", lambda w, c: [R, _config(w, c), "--set", "distill.save_steps=10", "--set",
                                                "distill.eval_steps=4"], 2,
     ("distill.save_steps=10 is not a multiple of distill.eval_steps=4",)),
    ("stage-order-makes-no-folder", lambda w, c: [R, _config(w, c, stages="[quantize]")], 2,
     ("'quantize' needs 'onnx'",)),
    # ------------------------------------------------------------ item 12: typo inside a list item (exit 2)
    ("typo-in-list-item", lambda w, c: [R, _config(w, c), "--set", "data.unlabeled=[{source: 'builtin:pydoc', limt: 3}]"],
     2, ("data.unlabeled.0.limt", "did you mean 'data.unlabeled.0.limit'", "valid here: source, text_column, limit")),
    # ------------------------------------------------------------ item 10: bench's tokenizer files (exit 1)
    ("bench-broken-tokenizer", lambda w, c: ["bench", "run", str(w.root / "copies" / "badtok"), *BENCH_FAST,
                                             "--out", str(c / "runs")], 1,
     ("badtok/tokenizer.json", "does not load")),
    ("bench-huge-tokenizer", lambda w, c: ["bench", "run", str(w.root / "copies" / "hugetok"), *BENCH_FAST,
                                           "--out", str(c / "runs")], 1,
     ("hugetok/tokenizer.json", "600 MiB", "512 MiB")),
    ("run-broken-tokenizer", lambda w, c: [R, _config(w, c, model=str(w.root / "copies" / "badtok"))], 1,
     ("badtok/tokenizer.json", "does not load")),
]


def _files(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``roots`` with its size and modification time."""
    out = {}
    for root in roots:
        for p in root.rglob("*"):
            if p.is_file() and not p.is_symlink():
                st = p.stat()
                out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


def test_matrix_has_at_least_20_cases():
    assert len(CASES) >= 20 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case_id,argv,code,needles", CASES, ids=[c[0] for c in CASES])
def test_bad_input(world, tmp_path, capsys, case_id, argv, code, needles):
    case = tmp_path / "case"
    case.mkdir()
    args = argv(world, case)
    before = _files(world.root, tmp_path)
    expect_one_line_error(capsys, args, code, needles, case_id)
    run_folder = case / "runs"
    after = _files(world.root, tmp_path)
    # a standalone command's OUT keeps its lock and log beside it (.out.lock, .out.log.txt): part of its folder
    own = (str(run_folder) + os.sep, str(case / "out"), str(case / ".out."))
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p) and not p.startswith(own))
    assert not changed, changed
    assert (world.root / CANARY).read_text() == "unchanged\n"
    finished = list(tmp_path.rglob("stage.json")) + list(world.root.rglob("stage.json"))
    assert not finished, finished
    if code == 2:  # a refused config makes no run folder at all
        assert not run_folder.exists(), sorted(run_folder.rglob("*"))
