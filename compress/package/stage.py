"""The last step of every run: ship the model the run chose as ``runs/<name>/final/``.

The chosen model is the search winner, else the quantize stage's INT8 file, else the exported fp32 ONNX.
``final/`` holds it three ways, each loadable as it is:

* ``model/`` — a Hugging Face folder (``AutoModel*.from_pretrained``), a full sentence-transformers model
  when the teacher is one (its pooling, normalisation and max length), with ``onnx/model.onnx`` and the INT8
  file as ``onnx/model_quantized.onnx`` (transformers.js' names for ``dtype: 'fp32'`` and ``'q8'``) and, for
  ``SentenceTransformer(..., backend="onnx")``, as ``onnx/model_qint8_<cpu>.onnx``; and a model card;
* ``onnx/`` — what optimum's ``ORTModelFor<Task>.from_pretrained`` loads: ``model.onnx`` (fp32, parity
  checked against the defining library), ``model_quantized.onnx``, ``config.json`` and the tokenizer, and
  the same two files under ``onnx/`` for transformers.js;
* ``bundle/`` — the mobile bundle with the compressed file(s): INT8 ONNX and its ``.ort`` conversion
  (plus ``.ptl``/``.pte`` when export.formats asks), tokenizer, labels, manifest.json, reference.py.

Every name of one model file is a hard link to the same bytes (``Storage``), so ``final/`` holds each
file once; where the file system refuses a link the file is copied and package.json says so.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress.package.choice import Choice, run_relative
from compress.core.errors import EdgepressError
from compress.model.formats import formats_with
from compress.quantize.report import QuantizeReport

if TYPE_CHECKING:
    from benchmarks.report_types import BenchRows
    from compress.config import RunConfig
    from compress.search.select import Candidate
    from compress.package.record import PackageRecord
    from compress.run.stages import StageInputs, StageRecord, StageResult

FINAL = "final"
MOBILE_FORMATS = formats_with("mobile")  # PyTorch-side mobile files the bundle carries (the registry's)


def run_dir_of(records: list["StageRecord"]) -> Path | None:
    """The run folder the stage records live in (None without records)."""
    return records[0].dir.parent if records else None


def _quantized_choice(rec: "StageRecord") -> tuple[Path, str, str] | None:
    """The quantize stage's recommended INT8 file; else its smallest INT8 file that met the accuracy floor.

    The recommendation also weighs latency on this CPU; a bundle is judged by size first, so an INT8 file
    that keeps the floor but is not faster here still ships (the model card says so).
    """
    report = QuantizeReport.from_dict(rec.metrics)
    if "onnx_int8" in rec.outputs:
        found = report.method_of_path(rec.outputs["onnx_int8"])
        return rec.path("onnx_int8"), "int8", found[1].variant if found else "int8"
    passed = report.int8_passing()
    if not passed:
        return None
    best = min(passed, key=lambda r: r.size_mb)
    return rec.dir / best.path, "int8", best.variant


def search_winner(search: "StageRecord") -> "Candidate":
    """The search stage's chosen candidate (its stage.json's ``winner``, a candidates.json row), typed."""
    from compress.search.select import Candidate

    if "winner" not in search.metrics:
        raise EdgepressError(f"{search.dir}/stage.json: the search wrote a winner/ folder but its metrics name no "
                             "'winner'; rerun with --force search")
    return Candidate.from_dict(search.metrics["winner"], where="winner/")


def choose(records: list["StageRecord"]) -> Choice:
    """Search winner, else the quantize stage's INT8 file, else the export stage's fp32 ONNX."""
    from compress.run.stages import StageInputs

    by_name = {r.name: r for r in records}
    latest = StageInputs(Path("."), list(records)).latest
    search = by_name.get("search")
    if search is not None and "winner_model" in search.outputs and "onnx" in search.outputs:
        w = search_winner(search)
        file = None
        if w.runtime != "onnxruntime":  # the winner's own file, in the branch export that winner/export links
            v = next((v for v in search.variants if v.name.startswith("search-winner (")), None)
            if v is None:
                raise EdgepressError(f"{search.dir}: the search chose a {w.runtime} file but names none in its "
                                     "variants; rerun with --force search")
            file = search.dir / v.path
        return Choice(search.path("winner_model"), search.path("onnx"), w.precision, "search winner", w.name,
                      w.runtime, file)
    model_dir = latest("model")
    if model_dir is None:
        raise EdgepressError("nothing to package: no stage wrote a student model (put distill, prune or search in "
                             "`stages:`)")
    quant = by_name.get("quantize")
    if quant is not None:
        found = _quantized_choice(quant)
        if found is not None:
            return Choice(model_dir, found[0], found[1], "quantize", found[2])
    onnx = latest("onnx")
    if onnx is None:
        raise EdgepressError("nothing to package: no stage wrote an ONNX file (put export in `stages:`)")
    return Choice(model_dir, onnx, "fp32", "export", "student")


def _cpu_profile() -> str:
    from benchmarks.baseline import optimum_profile

    return optimum_profile()


class Storage:
    """Puts model files into ``final/`` so that each file's bytes are stored once.

    The first name of a file is a copy (or, for a file already inside ``root``, a hard link); every later name
    of the same source is a hard link to that first one. Where the file system refuses a link (another device,
    no link support) the file is copied and the reason is kept for package.json.
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.first: dict[Path, Path] = {}  # resolved source -> its first name under root
        self.links: dict[str, str] = {}  # name -> the name it is a hard link of (relative to root)
        self.copies: dict[str, str] = {}  # name -> why it is a copy and not a link

    def _rel(self, p: Path) -> str:
        return p.resolve().relative_to(self.root).as_posix()

    def place(self, src: Path, dst: Path) -> Path:
        """Give ``src``'s bytes the name ``dst`` (a hard link where possible)."""
        from compress.core.fsio import copy_file

        src, dst = Path(src), Path(dst)
        dst.parent.mkdir(parents=True, exist_ok=True)
        key = src.resolve()
        prior = self.first.get(key)
        origin = prior or (key if self.root in key.parents else None)  # a scratch file of this build is linked
        if origin is None:
            copy_file(src, dst)
        else:
            try:
                os.link(origin, dst)
                if prior is not None:
                    self.links[self._rel(dst)] = self._rel(prior)
            except OSError as exc:
                copy_file(origin, dst)
                self.copies[self._rel(dst)] = f"hard link refused ({exc.strerror or exc}); copied"
        self.first.setdefault(key, dst)
        return dst

    def dedupe(self) -> None:
        """Hard-link every other file whose bytes equal an earlier one's (tokenizer and config files written by
        several writers), so no content is stored twice."""
        from export.bundle import sha256

        files = sorted(p for p in self.root.rglob("*") if p.is_file() and not p.is_symlink())
        by_size: dict[int, dict[int, list[Path]]] = {}  # size -> inode -> its names
        for f in files:
            st = f.stat()
            by_size.setdefault(st.st_size, {}).setdefault(st.st_ino, []).append(f)
        seen: dict[tuple[int, str], Path] = {}
        for size, inodes in by_size.items():
            for names in inodes.values() if len(inodes) > 1 and size > 0 else []:  # one hash per stored file
                first = seen.setdefault((size, sha256(names[0])), names[0])
                for f in names if first != names[0] else []:
                    tmp = f.with_name(f".{f.name}.link")
                    try:
                        os.link(first, tmp)
                        os.replace(tmp, f)
                        self.links[self._rel(f)] = self._rel(first)
                    except OSError as exc:
                        tmp.unlink(missing_ok=True)
                        self.copies[self._rel(f)] = f"hard link refused ({exc.strerror or exc}); kept a copy"

    def info(self) -> dict[str, Any]:
        """What package.json says about how final/ stores its files (names relative to final/): which names are
        hard links of which, which are copies because a link was refused, and the bytes stored vs named."""
        files = [p for p in self.root.rglob("*") if p.is_file() and not p.is_symlink()]
        stored = {(s.st_dev, s.st_ino): s.st_size for s in (p.stat() for p in files)}
        return {"hard_links": dict(sorted(self.links.items())), "copied_instead_of_linked": dict(self.copies),
                "bytes_named": sum(p.stat().st_size for p in files), "bytes_stored": sum(stored.values())}


def write_model_folder(choice: Choice, dst: Path, fp32_onnx: Path, interface: Any, storage: Storage,
                       source: str) -> dict[str, str]:
    """``model/``: the PyTorch folder as saved (HF + sentence-transformers files) plus its ONNX files under the
    names transformers.js (``onnx/model.onnx``, ``onnx/model_quantized.onnx``) and sentence-transformers'
    ONNX backend (``onnx/model_qint8_<cpu>.onnx``) look for; ``source`` replaces the teacher's path in
    edgepress_interface.json."""
    from compress.model.interface import INTERFACE_FILE

    from compress.core.fsio import copy_tree

    copy_tree(choice.model_dir, dst)  # a link out of the model folder is refused, not followed
    if (dst / INTERFACE_FILE).is_file():  # the teacher as the config names it, not this machine's folder
        saved = json.loads((dst / INTERFACE_FILE).read_text())
        (dst / INTERFACE_FILE).write_text(json.dumps({**saved, "source": source}, indent=2) + "\n")
    files = {"pytorch": f"{dst.name}/", "onnx_fp32": "model/onnx/model.onnx"}
    storage.place(fp32_onnx, dst / "onnx" / "model.onnx")
    if choice.onnx_precision == "int8":
        storage.place(choice.onnx, dst / "onnx" / "model_quantized.onnx")
        files["onnx_int8"] = "model/onnx/model_quantized.onnx"
    if interface.sentence_transformers:
        files["st_onnx"] = "model/onnx/model.onnx"
        if choice.onnx_precision == "int8":
            name = f"model_qint8_{_cpu_profile()}.onnx"
            storage.place(choice.onnx, dst / "onnx" / name)
            files["st_onnx_int8"] = f"model/onnx/{name}"
    return files


def write_optimum_folder(choice: Choice, dst: Path, fp32_onnx: Path, prep: Any, storage: Storage) -> dict[str, str]:
    """``onnx/``: model.onnx (+ model_quantized.onnx), config.json and the tokenizer side by side, and the same
    ONNX files under ``onnx/`` where transformers.js looks for them."""
    from export.stage import optimum_layout

    dst.mkdir(parents=True)
    optimum_layout(prep, dst)
    files = {"onnx": "onnx/model.onnx"}
    int8 = choice.onnx_precision == "int8"
    named = [("model.onnx", fp32_onnx)] + ([("model_quantized.onnx", choice.onnx)] if int8 else [])
    for name, src in named:
        storage.place(src, dst / name)
        storage.place(src, dst / "onnx" / name)
    if choice.onnx_precision == "int8":
        files["onnx_int8"] = "onnx/model_quantized.onnx"
    return files


def bench_rows(path: Path | None, choice: Choice) -> "BenchRows | None":
    """The teacher's and the chosen model's rows of the run's bench report.json (None when there is none)."""
    from benchmarks.report_types import BenchRows

    return BenchRows.load(path, choice.chosen_file)


def package_key(cfg: "RunConfig", choice: Choice, run_dir: Path) -> str:
    """What final/ was built from (the chosen files, the export section, the task), for package.json; whether to
    rebuild it is the stage hash's business."""
    import hashlib

    parts = [choice.to_dict(run_dir), cfg.export.model_dump(mode="json"), cfg.task]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def fp32_export(records: list["StageRecord"], choice: Choice) -> "StageRecord":
    """The finished export of the chosen model: the search winner's branch export, else the latest export (the
    stage record whose ``onnx`` output is an fp32 file next to its ``tokenizer``)."""
    from compress.run.stages import read_record

    search = next((r for r in reversed(records) if "winner_export" in r.outputs), None)
    if choice.origin == "search winner" and search is not None:
        found = read_record(search.path("winner_export"))
        if found is not None:
            return found[0]
    for rec in reversed(records):
        if "onnx" in rec.outputs and "tokenizer" in rec.outputs and "winner_model" not in rec.outputs:
            return rec
    raise EdgepressError("nothing to package: no export of the chosen model was found (put export in `stages:`)")


def exported_files(rec: "StageRecord") -> "Any":
    """An export stage's student files (each format's main file and the runtime formats' quantized / fp16
    siblings) and their checks as ``export.writer.Written``, to reuse them."""
    from export.core import Written

    files = {v.format: rec.dir / v.path for v in rec.variants if v.name in ("student", f"student-{v.format}")}
    precisions: dict[str, dict[str, Path]] = {}
    for v in rec.variants:
        if v.name == f"student-{v.format}-{v.precision}":
            precisions.setdefault(v.format, {})[v.precision] = rec.dir / v.path
    extra = {}
    ops = rec.dir / "required_operators.config"
    if "ort" in files and ops.is_file():
        extra["ort_required_operators"] = ops
    return Written(files=files, extra=extra, metrics=dict(rec.metrics.get("student") or {}), precisions=precisions)


def run_stage(cfg: "RunConfig", inputs: "StageInputs", out_dir: Path) -> "StageResult":
    """The ``package`` stage: ``out_dir/final/`` for the model the run chose, from the files its export (or the
    search winner's) already wrote; the pipeline publishes it as ``runs/<name>/final/``."""
    from compress.core.fsio import check_free_space, refuse_links_out
    from compress.run.stages import StageResult

    records = list(inputs.upstream)
    choice = choose(records)
    refuse_links_out(choice.model_dir, choice.model_dir)
    refuse_links_out(choice.onnx, inputs.run_dir)
    if choice.file is not None:
        refuse_links_out(choice.file, inputs.run_dir)
    export = fp32_export(records, choice)
    refuse_links_out(export.path("onnx"), inputs.run_dir)
    check_free_space(inputs.run_dir / FINAL, package_needs(choice))  # named as the user sees it: final/
    report = next((r.path("json") for r in reversed(records) if "json" in r.outputs and r.path("json").is_file()),
                  None)
    info = build_final(cfg, records, choice, export, out_dir / FINAL, inputs.run_dir, report)
    metrics = {"chosen": info.chosen.name, "precision": info.chosen.precision, "bundle_mb": info.bundle.size_mb}
    return StageResult(outputs={"final": FINAL}, metrics=metrics)


def package_needs(choice: Choice) -> int:
    """About how many bytes final/ takes: the model folder, and the fp32 and INT8 ONNX files twice each (the
    file and its .ort conversion; further names of a file are hard links)."""
    from compress.core.fsio import tree_size

    from export.files import model_files

    weights = sum(tree_size(p) for p in choice.model_dir.glob("*.safetensors"))
    int8 = tree_size(choice.onnx) if choice.onnx_precision == "int8" else 0
    runtime = sum(f.stat().st_size for f in model_files(choice.file)) if choice.file is not None else 0
    return tree_size(choice.model_dir) + 2 * weights + 2 * int8 + runtime


def build_final(cfg: "RunConfig", records: list["StageRecord"], choice: Choice, export: "StageRecord", dst: Path,
                run_dir: Path, report: Path | None = None) -> "PackageRecord":
    """Write ``dst`` (final/'s layout) from the chosen files; the fp32 ONNX and the formats the export wrote are
    reused, and only formats it did not write (the bundle's .ort of an fp32 choice) are converted from them."""
    from compress.model.interface import interface_of
    from compress.package.card import CARD_FOLDERS, model_card, teacher_of
    from compress.package.record import (BundleSummary, ChosenModel, PackageRecord, Parity, RuntimeFolder,
                                         TeacherRef)
    from export.bundle import BundleManifest, build_bundle
    from export.core import prepare
    from export.writer import complete_formats

    t0 = time.perf_counter()
    iface = interface_of(choice.model_dir, cfg.task)
    dst.mkdir(parents=True)
    storage, teacher = Storage(dst), teacher_of(cfg.teacher.model)
    ex = cfg.export
    prep = prepare(choice.model_dir, cfg.task, ex.max_length, ex.atol, ex.min_cosine, interface=iface,
                   rtol=ex.rtol)
    scratch = dst / ".export"
    mobile = [f for f in ex.formats if f in MOBILE_FORMATS]
    fp32_formats = list(mobile) if choice.onnx_precision == "int8" else ["onnx", "ort", *mobile]
    folders = runtime_folders(cfg, choice)
    written = complete_formats(prep, exported_files(export), scratch, [*fp32_formats, *folders])
    fp32_onnx = written.files["onnx"]
    files = write_model_folder(choice, dst / "model", fp32_onnx, iface, storage, teacher.reference)
    files.update(write_optimum_folder(choice, dst / "onnx", fp32_onnx, prep, storage))
    quant = _quantization_details(records, choice)
    manifest = BundleManifest.from_dict(build_bundle(
        prep, written, dst / "bundle", ex.opset, choice.onnx if choice.onnx_precision == "int8" else None,
        fp32_formats=fp32_formats, quantized_ort=choice.onnx_precision == "int8", quantization=quant,
        created_by="edgepress run (final package)", place=storage.place,
        chosen=chosen_entry(choice, manifest_name(choice))))
    runtimes = {fmt: write_runtime(prep, fmt, written, choice, dst / fmt, storage, run_dir) for fmt in folders}
    files.update({fmt: f"{fmt}/{r['file']}" for fmt, r in runtimes.items()})
    shutil.rmtree(scratch, ignore_errors=True)
    bench = bench_rows(report, choice)
    parity = {k[len("parity_"):]: Parity(v["max_abs_diff"], v["min_cosine"])
              for k, v in written.metrics.items() if k.startswith("parity_") and isinstance(v, dict)}
    bundle_mb = round(sum(p.stat().st_size for p in (dst / "bundle").rglob("*") if p.is_file()) / 1e6, 3)
    info = PackageRecord(
        key=package_key(cfg, choice, run_dir), chosen=ChosenModel(**choice.to_dict(run_dir)),
        interface={**iface.to_dict(), "source": teacher.reference},
        teacher=TeacherRef(teacher.reference, teacher.hub_id, teacher.license),
        recipe=recipe_facts(cfg, records, choice), files=files,
        bundle=BundleSummary([m.file for m in manifest.models], bundle_mb),
        runtimes={fmt: RuntimeFolder(f"{fmt}/", r["file"], r["precision"], r["runtime_name"], r["chosen_by"])
                  for fmt, r in runtimes.items()},
        parity=parity, seconds=round(time.perf_counter() - t0, 2))
    for where in CARD_FOLDERS:  # final/README.md and final/model/README.md, each with paths from its folder
        (dst / where / "README.md").write_text(model_card(cfg, choice, iface, bench, manifest, info, teacher, where))
    storage.dedupe()
    info.storage = storage.info()
    info.write(dst)
    return info


RUNTIME_FOLDERS = formats_with("own_folder")  # formats final/ ships in a folder of their own (the registry's)


def runtime_folders(cfg: "RunConfig", choice: Choice) -> list[str]:
    """The formats that get a ``final/<runtime>/`` folder: the search winner's runtime when it is not ONNX
    Runtime, then every runtime format export.formats lists."""
    won = [choice.runtime] if choice.runtime in RUNTIME_FOLDERS else []
    return [*won, *(f for f in cfg.export.formats if f in RUNTIME_FOLDERS and f not in won)]


def manifest_name(choice: Choice) -> str:
    """The chosen file as the bundle's manifest names it: its file in the bundle when ONNX Runtime runs it, else
    its path in the runtime's folder beside the bundle."""
    if choice.file is None:
        return "model.int8.onnx" if choice.onnx_precision == "int8" else "model.onnx"
    return f"../{choice.runtime}/{choice.file.name}"


def chosen_entry(choice: Choice, file: str) -> dict[str, Any]:
    """The bundle manifest's ``chosen``: which file the run chose and which runtime runs it."""
    from compress.model.formats import SEARCH_RUNTIMES

    entry = {"name": choice.name, "origin": choice.origin, "runtime": choice.runtime,
             "format": SEARCH_RUNTIMES.get(choice.runtime, choice.runtime), "file": file, "precision": choice.precision}
    if file.startswith("../"):  # another runtime's folder beside the bundle: its manifest says how to call the file
        entry["manifest"] = f"../{choice.runtime}/manifest.json"
        entry["note"] = (f"the chosen file lives in final/{choice.runtime}/ beside this bundle (with its tokenizer and "
                         "a manifest.json whose 'call' shows how to run it): ship that folder with the app")
    return entry


def write_runtime(prep: Any, fmt: str, written: Any, choice: Choice, dst: Path, storage: Storage,
                  run_dir: Path) -> dict[str, Any]:
    """``final/<fmt>/`` from the files the export (or the search winner's branch) wrote: the format's main file
    and its quantized / fp16 siblings, hard-linked; the winner's file is the one its manifest says to load."""
    from compress.core.fsio import refuse_links_out
    from export.heads import FILE_PRECISION
    from export.runtime_folder import RuntimeFile, write_runtime_folder

    files = [RuntimeFile(written.files[fmt], FILE_PRECISION.get(fmt, "fp32"), written.metrics.get(f"parity_{fmt}"))]
    files += [RuntimeFile(p, precision, written.metrics.get(f"quantized_{fmt}_{precision}"))
              for precision, p in written.precisions.get(fmt, {}).items()]
    chosen, why = files[0], f"export.formats lists {fmt}: its main file"
    if choice.runtime == fmt and choice.file is not None:
        chosen = next((f for f in files if f.path.resolve() == choice.file.resolve()), None)
        if chosen is None:  # a winner file the branch export does not list: shipped as it is
            chosen = RuntimeFile(choice.file, choice.precision)
            files.append(chosen)
        why = f"search winner ({choice.name}): the search's choice on its targets (its search.md says why)"
    for f in files:  # only the run's own bytes are shipped
        refuse_links_out(f.path, run_dir)
    return write_runtime_folder(prep, fmt, files, chosen, dst, why, place=storage.place)


def _quantization_details(records: list["StageRecord"], choice: Choice) -> dict[str, Any] | None:
    """How the INT8 file was made (method, settings, retention on the guard rows), from the quantize report."""
    if choice.onnx_precision != "int8":
        return None
    for rec in records:
        if rec.name != "quantize":
            continue
        for method, r in QuantizeReport.from_dict(rec.metrics).methods.items():
            if (rec.dir / r.path).resolve() == choice.onnx.resolve():
                return {"method": method, "settings": r.chosen_attempt.settings, "retention_vs_fp32": r.retention,
                        "source": f"{rec.dir.name}/{r.path}"}
    return {"method": choice.name, "source": run_relative(choice.onnx, run_dir_of(records))}


def recipe_facts(cfg: "RunConfig", records: list["StageRecord"], choice: Choice) -> dict[str, Any]:
    """What the run did to the teacher, read from the shipped model's shape against the teacher's (a model
    card tags only these): distilled, pruned (fewer heads or FFN neurons per layer), vocabulary trimmed."""
    from benchmarks.identity import model_shape
    from compress.model.loading import resolve_model_path

    names = {r.name for r in records}
    student = model_shape(choice.model_dir) or {}
    try:
        teacher = model_shape(Path(resolve_model_path(cfg.teacher.model))) or {}
    except EdgepressError:
        teacher = {}
    if student and teacher:
        per_layer = student["heads"] / student["layers"] < teacher["heads"] / teacher["layers"]
        pruned = per_layer or student["ffn"] < teacher["ffn"]
        trimmed = bool(student.get("vocab") and teacher.get("vocab") and student["vocab"] < teacher["vocab"])
    else:  # a hub teacher that is not on this machine: what the stages say
        pruned, trimmed = "prune" in names, "trim_vocab" in names
    return {"distilled": bool(names & {"distill", "search"}), "pruned": bool(pruned), "vocab_trimmed": trimmed,
            "student_shape": student or None, "teacher_shape": teacher or None}
