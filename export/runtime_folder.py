"""``final/<runtime>/``: one platform runtime's files of the shipped model, laid out as that runtime's users expect.

Each folder holds the model file(s) (an OpenVINO IR's .xml + .bin, a LiteRT .tflite, an ExecuTorch .pte, a Core ML
.mlpackage, and their quantized / fp16 siblings), the tokenizer and config.json beside them (optimum-intel's
``OVModelFor<Task>.from_pretrained`` layout for OpenVINO) and a ``manifest.json``: the runtime, the file to load
and its precision, the inputs and outputs (export/heads.py), the checks each file passed and a few lines of the
runtime's own Python API that call it.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from compress.model.formats import format_spec, formats_with
from export.core import Prepared
from export.files import file_size, model_files

# the formats with a runtime folder; each one's name, platforms and package are its FormatSpec's
RUNTIME_FOLDERS = formats_with("own_folder")
ENCODING = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
NOT_RUN = {"coreml": "prediction was not run: Core ML predicts only on Apple devices; the spec, its inputs and "
                     "outputs and a converter round trip were checked on Linux"}


@dataclass
class RuntimeFile:
    """One model file of a runtime format: its path, precision and the check it passed (parity or fidelity)."""

    path: Path
    precision: str
    check: dict[str, Any] | None = None


def _feeds(input_names: list[str], dtype: str) -> str:
    """``feeds = {...}``: the encoding's rows by input name, as ``dtype`` (``{n}`` stands for the input's name)."""
    items = ", ".join(f'"{n}": np.array([enc.{ENCODING[n]}], dtype={dtype.format(n=n)})' for n in input_names)
    return f"feeds = {{{items}}}"


def call_snippet(fmt: str, file: str, input_names: list[str], output_names: list[str], max_length: int) -> str:
    """Python that loads ``file`` with the runtime's own API and runs one text (tokenizer.json beside it)."""
    head = ["import numpy as np", "from tokenizers import Tokenizer", "",
            'tok = Tokenizer.from_file("tokenizer.json")', f"tok.enable_truncation({max_length})",
            'enc = tok.encode("Replace me by any text you like.")']
    first = output_names[-1] if "sentence_embedding" in output_names else output_names[0]
    if fmt == "openvino":
        body = ["import openvino as ov", "", f'model = ov.Core().compile_model("{file}", "CPU")',
                _feeds(input_names, "np.int64"), "outputs = model(feeds)",
                f'print(outputs[model.output("{first}")])']
    elif fmt == "litert":  # static shapes: one signature len_<L> per padded length, batch 1
        body = ["from ai_edge_litert.interpreter import Interpreter", "",
                f'interpreter = Interpreter(model_path="{file}", num_threads=4)',
                'lengths = sorted(int(name[len("len_"):]) for name in interpreter.get_signature_list())',
                "length = next((n for n in lengths if n >= len(enc.ids)), lengths[-1])",
                "enc.truncate(length)", "enc.pad(length)",
                'runner = interpreter.get_signature_runner(f"len_{length}")',
                'types = {name: d["dtype"] for name, d in runner.get_input_details().items()}',
                _feeds(input_names, 'types["{n}"]'),
                "outputs = runner(**feeds)  # output name -> array", f'print(outputs["{first}"])']
    elif fmt == "executorch":
        body = ["import torch", "from executorch.runtime import Runtime", "",
                f'method = Runtime.get().load_program("{file}").load_method("forward")',
                _feeds(input_names, "np.int64"),
                f"outputs = method.execute([torch.from_numpy(feeds[n]) for n in {input_names!r}])",
                f"print(outputs[{output_names.index(first)}])  # outputs in the order {output_names}"]
    elif fmt == "coreml":
        body = ["import coremltools as ct", "",
                f'model = ct.models.MLModel("{file}")  # predict() runs on macOS / iOS only',
                _feeds(input_names, "np.int32"), "outputs = model.predict(feeds)", f'print(outputs["{first}"])']
    else:
        raise ValueError(f"no runtime folder for format '{fmt}'; known: {', '.join(RUNTIME_FOLDERS)}")
    imports = [line for line in body if line.startswith(("import ", "from "))]
    return "\n".join([*imports, *head, *(line for line in body if line not in imports and line)]) + "\n"


def input_types(fmt: str, path: Path, input_names: list[str]) -> tuple[dict[str, str], list[Any], list[int]]:
    """(input dtypes, input shape, static sequence lengths) of a runtime file: Core ML takes int32; a LiteRT file
    has one batch-1 signature ``len_<L>`` per padded length, with the integer type its converter chose."""
    if fmt == "coreml":
        return {n: "int32" for n in input_names}, ["batch", "sequence"], []
    if fmt != "litert":
        return {n: "int64" for n in input_names}, ["batch", "sequence"], []
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    names = list(interpreter.get_signature_list())
    details = interpreter.get_signature_runner(names[0]).get_input_details()
    lengths = sorted(int(n[len("len_"):]) for n in names if n.startswith("len_"))
    return {n: details[n]["dtype"].__name__ for n in input_names if n in details}, [1, "sequence"], lengths


def write_runtime_folder(prep: Prepared, fmt: str, files: list[RuntimeFile], chosen: RuntimeFile, dst: Path,
                         chosen_by: str, place: Callable[[Path, Path], Any] = shutil.copy2) -> dict[str, Any]:
    """Fill the new folder ``dst`` with ``files`` (each placed, never converted again), config.json and the
    tokenizer, and write manifest.json naming ``chosen`` as the file to load; returns the manifest."""
    from export.bundle import INPUT_MEANING, _output_specs, _pooling_section
    from export.stage import optimum_layout

    from compress.tasks import TASKS

    dst.mkdir(parents=True)
    optimum_layout(prep, dst)
    entries = []
    for f in files:
        for src in model_files(f.path):
            place(src, dst / src.relative_to(f.path.parent))
        entry = {"file": f.path.name, "precision": f.precision, "size_bytes": file_size(dst / f.path.name)}
        if f.check:
            entry["check"] = {k: f.check[k] for k in ("max_abs_diff", "min_cosine", "fidelity", "metric", "floor",
                                                       "meets_floor", "enforced", "note") if k in f.check}
        entries.append(entry)
    spec = format_spec(fmt)
    name, platforms, package = spec.title, spec.platforms, spec.package
    dtypes, shape, lengths = input_types(fmt, dst / chosen.path.name, prep.input_names)
    labels = ({str(k): str(v) for k, v in sorted(prep.model.config.id2label.items())}
              if TASKS[prep.head.task].class_names else None)
    manifest: dict[str, Any] = {
        "schema_version": 1,
        "runtime": fmt,
        "runtime_name": name,
        "platforms": platforms,
        "install": f"pip install {package}",
        "file": chosen.path.name,
        "precision": chosen.precision,
        "chosen_by": chosen_by,
        "files": entries,
        "task": prep.head.task,
        "inputs": [{"name": n, "dtype": dtypes.get(n, "int64"), "shape": shape, "meaning": INPUT_MEANING[n]}
                   for n in prep.input_names],
        "outputs": [{**o, "shape": [1 if d == "batch" and lengths else d for d in o["shape"]]}
                    for o in _output_specs(prep)],
        "max_sequence_length": prep.max_length,
        **({"static_lengths": lengths, "static_note": "one batch-1 signature len_<L> per length: pad the tokens to "
                                                      "the smallest length that holds them (mask 0)"}
           if lengths else {}),
        "tokenizer": {"file": "tokenizer.json", "files": sorted(p.name for p in dst.iterdir()
                                                                 if p.name.startswith(("tokenizer", "vocab",
                                                                                       "special_tokens")))},
        "pooling": _pooling_section(prep),
        "labels": labels,
        "call": {"python": call_snippet(fmt, chosen.path.name, list(prep.input_names), list(prep.output_names),
                                        prep.max_length)},
        "verified": NOT_RUN.get(fmt, f"every file was run in {name} on the machine that made it and compared with "
                                     "PyTorch (see files[].check)"),
    }
    below = [e["file"] for e in entries if (e.get("check") or {}).get("meets_floor") is False]
    if below:  # kept (the eval rows and the search judge a quantized file), but never silently
        manifest["below_floor"] = below
        logging.getLogger("edgepress").warning("%s: %s kept the task's fidelity to PyTorch below the floor on the "
                                               "parity texts (manifest.json files[].check)", dst, ", ".join(below))
    from compress.core.fsio import write_text

    write_text(dst / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest
