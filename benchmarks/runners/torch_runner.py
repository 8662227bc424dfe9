"""PyTorch runners: eager (save_pretrained folder) on CPU or CUDA fp16, TorchScript (.pt) and lite (.ptl)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from benchmarks.runners.base import STANDARD_INPUTS, Runner
from compress.core.errors import ModelLoadError


def set_torch_threads(intra: int | None, inter: int | None) -> dict[str, int]:
    """Set torch's intra/inter-op pools; inter-op can be set once per process, so report what holds."""
    import torch

    if intra:
        torch.set_num_threads(intra)
    if inter:
        try:
            torch.set_num_interop_threads(inter)
        except RuntimeError:  # already set, or parallel work already started in this process
            pass
    return {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()}


@contextmanager
def torch_threads_restored() -> Iterator[None]:
    """Give torch's intra-op pool back as it was: a runner sets the bench's thread count, the process keeps its
    own (the inter-op pool can be set once per process, so it stays as the first runner left it)."""
    import torch

    before = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _to_numpy_outputs(out: Any) -> dict[str, Any]:
    """Named numpy arrays from a ModelOutput, dict, tuple or tensor returned by a torch module."""
    import torch

    if hasattr(out, "to_tuple") and hasattr(out, "keys"):  # transformers ModelOutput
        out = {k: out[k] for k in out.keys()}
    if isinstance(out, dict):
        return {k: v.detach().float().cpu().numpy() for k, v in out.items() if isinstance(v, torch.Tensor)}
    if isinstance(out, torch.Tensor):
        out = (out,)
    return {f"output_{i}": v.detach().float().cpu().numpy() for i, v in enumerate(out) if isinstance(v, torch.Tensor)}


class TorchEagerRunner(Runner):
    """transformers AutoModel* from a save_pretrained folder, fp32 on CPU."""

    backend = "pytorch"
    formats = ("pytorch",)
    device = "cpu"
    dtype = "float32"

    def load(self) -> None:
        import inspect

        import torch

        from compress.model.loading import base_model, load_model

        from compress.model.interface import is_sentence_transformers_folder, load_sentence_transformer

        self.applied_threads = set_torch_threads(self.threads.intra_op, self.threads.inter_op)
        from compress.tasks import TASKS

        spec = TASKS.get(self.task, TASKS["embedding"])  # latency-only callers may name no task
        task = spec.name
        self.sentence_transformer = spec.pooled and is_sentence_transformers_folder(self.path)
        if self.sentence_transformer:  # the model as its users run it: its own pooling and normalisation
            self.model = load_sentence_transformer(self.path).eval()
            params = inspect.signature(self.model[0].auto_model.forward).parameters
            self.input_names = [n for n in STANDARD_INPUTS if n in params]
            self.vocab_size = getattr(self.model[0].auto_model.config, "vocab_size", None)
            if self.device != "cpu":
                self.model = self.model.to(device=self.device, dtype=getattr(torch, self.dtype))
            return
        self.model = load_model(str(self.path), task)
        if self.device != "cpu":
            self.model = self.model.to(device=self.device, dtype=getattr(torch, self.dtype))
        params = inspect.signature(base_model(self.model).forward).parameters
        self.input_names = [n for n in STANDARD_INPUTS if n in params]
        self.vocab_size = getattr(self.model.config, "vocab_size", None)

    def prepare(self, feeds: dict[str, Any]) -> Any:
        import torch

        return {k: torch.from_numpy(v).to(self.device) for k, v in feeds.items() if k in self.input_names}

    def _sync(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()

    def run(self, prepared: Any) -> Any:
        import torch

        with torch.inference_mode():
            out = self.model(dict(prepared)) if self.sentence_transformer else self.model(**prepared)
        self._sync()
        return out

    def outputs(self, prepared: Any) -> dict[str, Any]:
        out = self.run(prepared)
        if self.sentence_transformer:
            out = {"last_hidden_state": out["token_embeddings"], "sentence_embedding": out["sentence_embedding"]}
        return _to_numpy_outputs(out)

    def describe(self) -> dict[str, Any]:
        import torch

        return {**super().describe(), "torch": torch.__version__, "dtype": self.dtype,
                "sentence_transformers": self.sentence_transformer,
                "threads_applied": getattr(self, "applied_threads", None)}


class TorchCudaFp16Runner(TorchEagerRunner):
    """The same eager model in float16 on the first CUDA GPU."""

    device = "cuda"
    dtype = "float16"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        import torch

        return None if torch.cuda.is_available() else f"no CUDA GPU visible to torch {torch.__version__}"


class TorchScriptRunner(Runner):
    """torch.jit.load for .pt, the lite interpreter for .ptl; inputs passed positionally by name."""

    backend = "torchscript"
    formats = ("torchscript", "ptl")
    device = "cpu"

    def load(self) -> None:
        import torch

        self.applied_threads = set_torch_threads(self.threads.intra_op, self.threads.inter_op)
        self.lite = self.path.suffix == ".ptl"
        try:
            if self.lite:
                from torch.jit.mobile import _load_for_lite_interpreter

                self.module = _load_for_lite_interpreter(str(self.path))
            else:
                self.module = torch.jit.load(str(self.path), map_location="cpu")
                self.module.eval()
        except Exception as exc:  # torch raises RuntimeError / ValueError for foreign or corrupt files
            raise ModelLoadError(f"torch cannot load '{self.path}' as TorchScript: {str(exc).splitlines()[0][:300]}") from None
        self.input_names = self._arg_names()

    def _arg_names(self) -> list[str]:
        import torch

        if not self.lite:
            names = [a.name for a in self.module.forward.schema.arguments[1:]]
            picked = [n for n in names if n in STANDARD_INPUTS]
            if picked:
                return picked
        # the lite interpreter keeps no schema: probe the standard order with a tiny input
        ids = torch.ones((1, 4), dtype=torch.long)
        for n in (3, 2, 1):
            try:
                with torch.inference_mode():
                    self.module(*([ids] + [torch.ones_like(ids)] * (n - 1))[:n])
                return list(STANDARD_INPUTS[:n])
            except Exception:  # wrong arity raises RuntimeError inside the interpreter
                continue
        raise ModelLoadError(f"'{self.path}' accepts none of (input_ids[, attention_mask[, token_type_ids]])")

    def prepare(self, feeds: dict[str, Any]) -> Any:
        import torch

        return [torch.from_numpy(feeds[n]) for n in self.input_names]

    def run(self, prepared: Any) -> Any:
        import torch

        with torch.inference_mode():
            return self.module(*prepared)

    def outputs(self, prepared: Any) -> dict[str, Any]:
        out = _to_numpy_outputs(self.run(prepared))
        if "output_0" in out and out["output_0"].ndim == 3:
            out["last_hidden_state"] = out.pop("output_0")
        return out
