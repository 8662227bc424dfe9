"""LiteRT (``.tflite``) files: fp32, fp16 and dynamic-range INT8, converted by litert-torch in its own virtualenv.

The wrapper is saved with ``torch.export`` here (named inputs, named outputs), converted in the converter's env
(``export.converter_env``; litert-torch cannot share the core's pins) by ``export/litert_convert.py``, and every
file is loaded back with the core's ``ai_edge_litert`` Interpreter and checked: fp32 against PyTorch within the
export tolerance, fp16 / INT8 with the task's fidelity (floor 0.98).

Shapes are static: litert-torch 0.10 fails to lower a dynamic batch or sequence axis of a BERT graph (measured:
``TracerBoolConversionError`` in its slice lowering) and the interpreter cannot resize the static graph (its
Reshape nodes keep the traced size). So the file holds one signature ``len_<L>`` per sequence length bucket
(powers of two from 32, then the model's max length), each at batch 1; ``benchmarks.runners.litert_runner``
runs a feed in the smallest bucket that holds it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress.model.formats import install_hint
from export.errors import ExportError, FormatUnavailableError

if TYPE_CHECKING:
    from export.core import Prepared
    from export.core import Written

SCRIPT = Path(__file__).with_name("litert_convert.py")
PRECISION_FILES = {"fp16": "model_fp16.tflite", "int8": "model_int8.tflite"}
CONVERT_TIMEOUT_S = 3600  # one model, every length bucket and precision; a hung converter must not hang the export
INT8_SCHEME = "dynamic-range INT8 (ai-edge-quantizer dynamic_wi8_afp32: int8 per-channel weights, activations " \
              "quantized at run time)"
FP16_SCHEME = "fp16 weights (ai-edge-quantizer float casting), fp32 compute"


def litert_ready() -> None:
    """Before any work: the LiteRT interpreter (it checks the files) must be installed, and the converter's env is
    made now if it is missing, so a machine that cannot install it (no network) fails before the ONNX export."""
    import importlib.util

    from export.converter_env import LITERT, ensure_env

    if importlib.util.find_spec("ai_edge_litert") is None:
        raise FormatUnavailableError("cannot write LiteRT files: the LiteRT interpreter (ai-edge-litert) is not "
                                     f"installed; {install_hint('litert')}")
    ensure_env(LITERT)


def bucket_lengths(max_length: int, smallest: int = 32) -> list[int]:
    """Static sequence lengths of the file's signatures: powers of two from ``smallest`` below ``max_length``, then
    ``max_length`` itself (a feed pays at most twice its length in padding)."""
    lengths, n = [], smallest
    while n < max_length:
        lengths.append(n)
        n *= 2
    return [*lengths, max_length]


def named_module(prep: "Prepared") -> Any:
    """``prep.wrapper`` taking its inputs by keyword and returning a dict of named outputs, so the converter names
    the signature's inputs and outputs as the ONNX file does (input_ids, ..., last_hidden_state, logits)."""
    import torch

    names, outputs = list(prep.input_names), list(prep.output_names)

    class Named(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = prep.wrapper

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
            given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
            return dict(zip(outputs, self.inner(*[given[n] for n in names])))

    return Named().eval()


def save_program(prep: "Prepared", path: Path) -> None:
    """``torch.export`` the named wrapper (batch and sequence dynamic, so any bucket can be traced from it) to .pt2."""
    import torch

    batch = torch.export.Dim("batch", min=1, max=64)
    seq = torch.export.Dim("sequence", min=2, max=prep.max_length)
    example = {n: torch.from_numpy(prep.example[n]) for n in prep.input_names}
    try:
        with torch.no_grad():
            program = torch.export.export(named_module(prep), (), example,
                                          dynamic_shapes={n: {0: batch, 1: seq} for n in prep.input_names})
    except Exception as exc:  # noqa: BLE001 - torch.export fails in many ways on unusual models
        raise ExportError(f"torch.export of '{prep.model_dir}' for LiteRT failed: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:300]}") from exc
    torch.export.save(program, str(path))


def convert(prep: "Prepared", out_dir: Path, env_root: Path | None = None) -> dict[str, Any]:
    """Write model.tflite, model_fp16.tflite and model_int8.tflite into ``out_dir`` through the converter env."""
    from export.converter_env import LITERT, ensure_env, run_script

    env = ensure_env(LITERT, env_root)
    lengths = bucket_lengths(prep.max_length)
    with tempfile.TemporaryDirectory(prefix="edgepress-litert-") as tmp:
        program = Path(tmp) / "model.pt2"
        save_program(prep, program)
        job = Path(tmp) / "job.json"
        job.write_text(json.dumps({"program": str(program), "input_names": list(prep.input_names),
                                   "lengths": lengths, "out_dir": str(out_dir)}))
        stdout = run_script(env, SCRIPT, [job], f"LiteRT conversion of '{prep.model_dir}'", timeout=CONVERT_TIMEOUT_S)
    line = next((ln for ln in stdout.splitlines() if ln.startswith("EDGEPRESS_RESULT ")), None)
    if line is None:
        raise ExportError(f"the LiteRT converter printed no result for '{prep.model_dir}'")
    result = json.loads(line.split(" ", 1)[1])
    result["lengths"] = lengths
    return result


def tflite_runner(path: Path, prep: "Prepared") -> Any:
    """A parity runner: the file in the core's LiteRT Interpreter, outputs in ``prep.output_names`` order."""
    from benchmarks.remote_runner import LiteRTSession

    model = LiteRTSession(str(path), None)
    missing = [n for n in prep.output_names if n not in model.output_names]
    if missing:
        raise ExportError(f"LiteRT file '{path}' lacks the outputs {missing} (it has {model.output_names})")

    def run(batch: dict) -> list:
        outs = model(batch)
        return [outs[n] for n in prep.output_names]

    return run


def write_litert(prep: "Prepared", onnx_path: Path, path: Path, done: "Written") -> None:
    """Write ``litert/model.tflite`` (fp32) and its fp16 / INT8 siblings; check each in the LiteRT Interpreter."""
    path.parent.mkdir(parents=True, exist_ok=True)
    result = convert(prep, path.parent)
    produced = Path(result["files"]["fp32"])
    if produced != path:
        produced.replace(path)
    parity = prep.check(f"LiteRT file '{path.name}'", tflite_runner(path, prep))
    parity["shapes"] = {"static": True, "batch": 1, "sequence_lengths": result["lengths"],
                        "signatures": [f"len_{n}" for n in result["lengths"]]}
    parity["converter"] = {"litert_torch": result.get("litert_torch"), "seconds": result.get("seconds")}
    done.metrics["parity_litert"] = parity
    schemes = {"fp16": FP16_SCHEME, "int8": INT8_SCHEME}
    for precision, name in PRECISION_FILES.items():
        file = path.parent / name
        file.chmod(0o644)  # ai-edge-quantizer writes its files executable
        check = prep.check_quantized(f"LiteRT {precision} file '{name}'", tflite_runner(file, prep))
        check["scheme"] = schemes[precision]
        done.metrics[f"quantized_litert_{precision}"] = check
        done.precisions.setdefault("litert", {})[precision] = file
