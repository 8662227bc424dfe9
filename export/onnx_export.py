"""ONNX export (torch.onnx, TorchScript-based exporter), ORT graph optimisation and the ORT mobile format."""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from export.core import Prepared
from export.errors import ExportError, OpsetError
from export.parity import onnx_runner

# Fused operators counted after optimisation (what ONNX Runtime's BERT fusions produce).
FUSED_OPS = ("Attention", "MultiHeadAttention", "EmbedLayerNormalization", "SkipLayerNormalization",
             "LayerNormalization", "BiasGelu", "Gelu", "FastGelu")


def check_opset(opset: int) -> None:
    """Refuse an opset the torch exporter cannot write or the installed ONNX Runtime cannot load."""
    import onnx
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper
    from torch.onnx import _constants

    low, high = _constants.ONNX_MIN_OPSET, _constants.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET
    if not low <= opset <= high:
        raise OpsetError(f"opset {opset} cannot be written: torch {torch.__version__}'s exporter with dynamo=False "
                         f"writes opsets {low}..{high}; set export.opset (or --opset) to e.g. 17")
    if opset < 14:
        raise OpsetError(f"opset {opset} is too old for BERT-family attention (scaled_dot_product_attention needs "
                         "opset >= 14); use 14..17")
    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph([node], "probe", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    probe = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    probe.ir_version = min(probe.ir_version, onnx.IR_VERSION)
    try:
        ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ORT raises several types for unsupported opsets
        raise OpsetError(f"onnxruntime {ort.__version__} cannot load opset {opset} models "
                         f"({str(exc).splitlines()[0][:160]}); pick a lower opset or upgrade onnxruntime") from None


def dynamic_axes(prep: Prepared) -> dict[str, dict[int, str]]:
    """``batch`` (and ``sequence`` where the tensor has it) dynamic for every input and output."""
    axes: dict[str, dict[int, str]] = {n: {0: "batch", 1: "sequence"} for n in prep.input_names}
    for out in prep.head.outputs:
        axes[out.name] = {i: d for i, d in enumerate(out.shape) if d in ("batch", "sequence")}
    return axes


def export_onnx(prep: Prepared, path: Path, opset: int = 17) -> dict[str, Any]:
    """Write ``path`` with torch.onnx.export(dynamo=False) and prove it equals PyTorch; return parity numbers."""
    import onnx
    import torch

    check_opset(opset)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(prep.wrapper, prep.example_tensors(), str(path), dynamo=False,
                              input_names=prep.input_names, output_names=prep.output_names,
                              dynamic_axes=dynamic_axes(prep), opset_version=opset, do_constant_folding=True)
    except Exception as exc:  # noqa: BLE001 - surface the converter's reason in one line
        raise ExportError(f"torch.onnx.export failed for '{prep.model_dir}' ({prep.head.task}, opset {opset}): "
                          f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from exc
    onnx.checker.check_model(str(path))
    return prep.check(f"ONNX file '{path.name}'", onnx_runner(str(path), prep.output_names))


def optimize_onnx(prep: Prepared, src: Path, dst: Path) -> dict[str, Any]:
    """Run ONNX Runtime's BERT fusions on ``src`` into ``dst``; return fused-op counts and re-checked parity."""
    from onnxruntime.transformers.optimizer import optimize_model

    cfg = prep.model.config
    heads = getattr(cfg, "num_attention_heads", None) or getattr(cfg, "n_heads", 0)
    hidden = getattr(cfg, "hidden_size", None) or getattr(cfg, "dim", 0)
    try:
        opt = optimize_model(str(src), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"ONNX Runtime graph optimisation failed on '{src}': {type(exc).__name__}: {exc}") from exc
    counts = {op: len(opt.get_nodes_by_op_type(op)) for op in FUSED_OPS}
    opt.save_model_to_file(str(dst))
    parity = prep.check(f"optimised ONNX file '{dst.name}'", onnx_runner(str(dst), prep.output_names))
    layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layers", 0)
    return {"fused_ops": counts, "attention_fused_layers": counts["Attention"] + counts["MultiHeadAttention"],
            "num_layers": layers, "parity": parity}


def convert_to_ort(prep: Prepared, onnx_path: Path, out_dir: Path, target_platform: str = "arm",
                   name: str = "model.ort", enforce: bool = True) -> dict[str, Any]:
    """Write ``name`` (+ a ``required_operators`` config for a reduced build) and check it in ONNX Runtime.

    ``enforce`` False measures parity without failing (quantized sources: the quantize stage owns accuracy).
    """
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copy2(onnx_path, work / "model.onnx")
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):  # the converter prints its progress; keep it in the log
                convert_onnx_models_to_ort(work / "model.onnx", output_dir=work / "out",
                                           optimization_styles=[OptimizationStyle.Fixed], target_platform=target_platform)
            logging.getLogger("edgepress.export").debug("ORT conversion: %s", printed.getvalue().strip())
        except Exception as exc:  # noqa: BLE001
            raise ExportError(f"conversion of '{onnx_path}' to the ORT format failed: {type(exc).__name__}: {exc}") from exc
        produced = work / "out" / "model.ort"
        configs = sorted((work / "out").glob("*.config"))
        if not produced.is_file() or not configs:
            raise ExportError(f"ORT conversion of '{onnx_path}' wrote no model.ort / operator config")
        stem = name[: -len(".ort")] if name.endswith(".ort") else name
        ort_path = out_dir / name
        cfg_path = out_dir / ("required_operators.config" if stem == "model" else f"{stem}.required_operators.config")
        shutil.move(str(produced), ort_path)
        text = configs[0].read_text().replace(str(produced), ort_path.name)  # no temp paths in shipped files
        cfg_path.write_text(text)
    parity = prep.check(f"ORT-format file '{ort_path.name}'", onnx_runner(str(ort_path), prep.output_names),
                        enforce=enforce)
    ops = [ln for ln in cfg_path.read_text().splitlines() if ln and not ln.startswith("#")]
    return {"path": ort_path, "config": cfg_path, "parity": parity, "operator_domains": len(ops)}
