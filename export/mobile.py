"""PyTorch-side mobile formats: traced TorchScript (.pt), lite-interpreter (.ptl) and ExecuTorch (.pte).

TorchScript and the lite interpreter (PyTorch Mobile) are in maintenance mode upstream; ExecuTorch
replaces them. All three are checked against eager PyTorch after loading the written file back.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from compress.model.formats import install_hint
from export.core import Prepared
from export.errors import ExportError, FormatUnavailableError
from export.parity import torch_runner

EXECUTORCH_HINT = f"pip install 'executorch>=1.5,<1.6'  (or: {install_hint('executorch')})"


def _trace(prep: Prepared) -> Any:
    import torch

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        try:
            return torch.jit.trace(prep.wrapper, prep.example_tensors(), check_trace=False, strict=False)
        except Exception as exc:  # noqa: BLE001
            raise ExportError(f"torch.jit.trace failed for '{prep.model_dir}': {type(exc).__name__}: {exc}") from exc


def export_torchscript(prep: Prepared, path: Path) -> dict[str, Any]:
    """Write a traced TorchScript module (``.pt``), load it back with torch.jit.load and check parity."""
    import torch

    traced = _trace(prep)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(traced, str(path))
    loaded = torch.jit.load(str(path), map_location="cpu").eval()
    return prep.check(f"TorchScript file '{path.name}'", torch_runner(loaded, prep.input_names))


def export_ptl(prep: Prepared, path: Path) -> dict[str, Any]:
    """Write a mobile-optimised lite-interpreter file (``.ptl``), load it with the lite interpreter, check parity.

    torch.utils.mobile_optimizer needs a torch built with XNNPACK (ARM/mobile builds are; the x86
    CPU wheels of torch 2.13 are not). Without it the module is frozen (weights folded, graph
    inlined) and saved unoptimised, and the result says so (``mobile_optimized: false``).
    """
    import torch
    from torch.jit.mobile import _load_for_lite_interpreter
    from torch.utils.mobile_optimizer import optimize_for_mobile

    traced = _trace(prep)
    xnnpack = bool(getattr(torch._C, "_is_xnnpack_enabled", lambda: False)())
    mobile = optimize_for_mobile(traced) if xnnpack else torch.jit.freeze(traced.eval())
    path.parent.mkdir(parents=True, exist_ok=True)
    mobile._save_for_lite_interpreter(str(path))
    lite = _load_for_lite_interpreter(str(path))

    def run(batch: dict) -> list:
        with torch.no_grad():
            outs = lite(*[torch.from_numpy(batch[n]) for n in prep.input_names])
        outs = outs if isinstance(outs, (tuple, list)) else (outs,)
        return [o.float().numpy() for o in outs]

    result = prep.check(f"lite-interpreter file '{path.name}'", run)
    result["mobile_optimized"] = xnnpack
    if not xnnpack:
        result["note"] = (f"torch {torch.__version__} here is built without XNNPACK, so optimize_for_mobile "
                          "(prepacked XNNPACK linear ops) was skipped; the file is frozen TorchScript")
    return result


def executorch_available() -> tuple[bool, str]:
    """Whether ExecuTorch with XNNPACK can be used with the installed torch, and why not if it cannot."""
    import importlib.util

    import torch

    if importlib.util.find_spec("executorch") is None:
        return False, f"ExecuTorch is not installed: {EXECUTORCH_HINT}"
    try:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner  # noqa: F401
        from executorch.exir import to_edge_transform_and_lower  # noqa: F401
        from executorch.runtime import Runtime  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - a binary built for another torch fails in many ways
        return False, (f"ExecuTorch is installed but cannot be imported with torch {torch.__version__} "
                       f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); install the executorch release "
                       f"built for this torch: {EXECUTORCH_HINT}")
    return True, ""


def export_pte(prep: Prepared, path: Path) -> dict[str, Any]:
    """Write an ExecuTorch program lowered to XNNPACK (``.pte``), run it in the ExecuTorch runtime, check parity."""
    ok, why = executorch_available()
    if not ok:
        raise FormatUnavailableError(f"cannot write .pte: {why}")
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    batch = torch.export.Dim("batch", min=1, max=64)
    seq = torch.export.Dim("sequence", min=2, max=prep.max_length)
    shapes = tuple({0: batch, 1: seq} for _ in prep.input_names)
    try:
        with torch.no_grad():
            program = torch.export.export(prep.wrapper, prep.example_tensors(), dynamic_shapes=shapes)
            lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch()
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"ExecuTorch export of '{prep.model_dir}' failed: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:300]}") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(lowered.buffer)
    from compress.core.console import native_stderr

    with native_stderr("executorch"):  # XNNPACK's CPU probe prints to fd 2 when the runtime starts
        method = Runtime.get().load_program(str(path)).load_method("forward")

    def run(b: dict) -> list:
        outs = method.execute([torch.from_numpy(b[n]) for n in prep.input_names])
        return [o.float().numpy() for o in outs]

    return prep.check(f"ExecuTorch file '{path.name}'", run)
