"""ExecuTorch runner: a ``.pte`` program (XNNPACK-delegated) run in the ExecuTorch runtime's Python bindings."""

from __future__ import annotations

from typing import Any

from benchmarks.runners.base import STANDARD_INPUTS, Runner
from compress.core.errors import EdgepressError, ModelLoadError
from compress.model.formats import install_hint

HINT = install_hint("executorch")


class ExecuTorchCpuRunner(Runner):
    """``executorch.runtime.Runtime``: load_program -> load_method('forward') -> execute, as the export check runs it.

    Threads: the XNNPACK delegate runs on ExecuTorch's process-wide threadpool (pthreadpool, sized to the
    performant cores by default); ``Threads.intra_op`` resizes it with the bindings' ``_unsafe_reset_threadpool``,
    the Python side of ``threadpool::get_threadpool()->_unsafe_reset_threadpool``. ExecuTorch has no inter-op pool.
    """

    backend = "executorch"
    formats = ("executorch",)
    device = "cpu"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        import importlib.util

        if importlib.util.find_spec("executorch") is None:
            return f"ExecuTorch is not installed: {HINT}"
        try:
            from executorch.runtime import Runtime

            Runtime.get()
        except Exception as exc:  # noqa: BLE001 - a wheel built for another torch fails in many ways
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            return f"the ExecuTorch runtime cannot be imported ({type(exc).__name__}: {first}); {HINT}"
        return None

    def load(self) -> None:
        from executorch.runtime import Runtime

        from export.heads import get_head

        from compress.core.console import native_stderr

        with native_stderr("executorch"):  # XNNPACK's CPU probe prints to fd 2 when the threadpool starts
            runtime = Runtime.get()
            if self.threads.intra_op:
                from executorch.extension.pybindings import portable_lib

                if portable_lib._threadpool_get_thread_count() != self.threads.intra_op:
                    portable_lib._unsafe_reset_threadpool(int(self.threads.intra_op))
        try:
            program = runtime.load_program(str(self.path))
            if "forward" not in program.method_names:
                raise ModelLoadError(f"ExecuTorch program '{self.path}' has no 'forward' method "
                                     f"(methods: {', '.join(sorted(program.method_names)) or 'none'})")
            self.method = program.load_method("forward")
        except RuntimeError as exc:  # the bindings raise RuntimeError('Failed to load program, error: 0x..')
            raise ModelLoadError(f"ExecuTorch cannot load '{self.path}': {str(exc).strip()[:300]} (expected a .pte "
                                 "program written by executorch's to_executorch(), e.g. `edgepress export` with "
                                 "format executorch)") from None
        self.program = program  # the method's buffers live as long as its program
        meta = self.method.metadata
        n_in = meta.num_inputs()
        if n_in not in (2, 3):
            raise ModelLoadError(f"'{self.path}' takes {n_in} inputs; expected input_ids, attention_mask "
                                 "[, token_type_ids] (a BERT-family encoder exported with edgepress)")
        self.input_names = list(STANDARD_INPUTS[:n_in])
        # upper bounds of the dynamic batch / sequence dims (export/mobile.py: batch <= 64, sequence <= max_length)
        sizes = tuple(meta.input_tensor_meta(0).sizes())
        self.max_batch, self.max_seq = (int(sizes[0]), int(sizes[1])) if len(sizes) == 2 else (None, None)
        names = list(get_head(self.task).output_names)
        n_out = meta.num_outputs()
        self.output_names = names if len(names) == n_out else [f"output_{i}" for i in range(n_out)]

    def prepare(self, feeds: dict[str, Any]) -> list[Any]:
        """The positional int64 tensors ``forward`` takes, checked against the program's shape bounds."""
        import numpy as np
        import torch

        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise EdgepressError(f"'{self.path}' needs inputs {self.input_names}; the feeds lack {missing}")
        batch, seq = feeds[self.input_names[0]].shape[:2]
        if self.max_batch is not None and (batch > self.max_batch or seq > self.max_seq):
            raise EdgepressError(f"'{self.path}' was exported for batch <= {self.max_batch} and sequence <= "
                                 f"{self.max_seq}; got batch {batch} x sequence {seq}: lower the batch size / "
                                 "max_length, or export with a larger max_length")
        return [torch.from_numpy(np.ascontiguousarray(feeds[n], dtype=np.int64)) for n in self.input_names]

    def run(self, prepared: Any) -> Any:
        try:
            return self.method.execute(prepared)
        except RuntimeError as exc:
            raise EdgepressError(f"ExecuTorch failed to run '{self.path}' on inputs of shape "
                                 f"{tuple(prepared[0].shape)}: {str(exc).strip()[:200]}") from None

    def outputs(self, prepared: Any) -> dict[str, Any]:
        return {name: out.float().numpy() for name, out in zip(self.output_names, self.run(prepared))}

    def describe(self) -> dict[str, Any]:
        import importlib.metadata

        from executorch.extension.pybindings import portable_lib

        return {**super().describe(), "executorch": importlib.metadata.version("executorch"),
                "delegate": "XNNPACK", "threadpool_threads": int(portable_lib._threadpool_get_thread_count())}
