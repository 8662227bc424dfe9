"""How loud the command line is: normal, verbose (log lines on the console) or quiet (errors and tables only).

The CLI sets it once per invocation; library code asks ``is_quiet()`` / ``is_verbose()`` instead of
reading flags, so a notebook user gets the normal level without calling anything.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

LEVELS = ("quiet", "normal", "verbose")


@dataclass
class _Verbosity:
    level: str = "normal"


_STATE = _Verbosity()


def set_verbosity(level: str) -> None:
    """Set the console level for this process (called by the CLI's global options)."""
    if level not in LEVELS:
        raise ValueError(f"verbosity '{level}' is not one of {LEVELS}")
    _STATE.level = level
    logging.getLogger("edgepress").setLevel(logging.INFO if level == "verbose" else logging.WARNING)


def verbosity() -> str:
    return _STATE.level


def is_quiet() -> bool:
    return _STATE.level == "quiet"


def is_verbose() -> bool:
    return _STATE.level == "verbose"


# ---------------------------------------------------------------- one-line notes, the run log, stage progress

_CURRENT_STAGE: list[str] = []  # the stage the pipeline is running (a stack: the search stage nests pipelines)
# third-party loggers whose records go to runs/<name>/log.txt during a run instead of the console
THIRD_PARTY_LOGGERS = ("transformers", "torch", "torch_pruning", "nncf", "onnxruntime", "onnx", "optimum",
                       "datasets", "accelerate", "sentence_transformers", "huggingface_hub", "urllib3", "py.warnings",
                       "executorch")


# logging modules of libraries that add a stderr handler to their root logger on the first get_logger() call
LIBRARY_LOGGING = ("transformers.utils.logging", "optimum.utils.logging")


def note(message: str) -> None:
    """One line for the user on stderr (not in --quiet), also written to the run log when one is open."""
    import sys

    logging.getLogger("edgepress").info(message)
    if not is_quiet():
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True, file=sys.stderr).print(f"[yellow]note:[/] {escape(message)}", highlight=False, soft_wrap=True)


def current_stage() -> str | None:
    return _CURRENT_STAGE[-1] if _CURRENT_STAGE else None


class stage_context:  # noqa: N801 - used as a context manager
    """Marks which stage is running, so progress bars are named after it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> "stage_context":
        _CURRENT_STAGE.append(self.name)
        return self

    def __exit__(self, *exc) -> None:
        _CURRENT_STAGE.pop()


class native_stderr:  # noqa: N801 - used as a context manager
    """Lines a native library writes straight to file descriptor 2 (ExecuTorch's XNNPACK CPU probe prints
    ``[cpuinfo_utils.cpp:100] Reading file ...``) become WARNING records of ``logger``: the run's log.txt, not the
    console. Wrap only short native calls: anything else written to stderr meanwhile is moved to the log too."""

    def __init__(self, logger: str) -> None:
        self.logger = logger

    def __enter__(self) -> "native_stderr":
        import sys
        import tempfile

        sys.stderr.flush()
        self._tmp = tempfile.TemporaryFile()
        self._saved = os.dup(2)
        os.dup2(self._tmp.fileno(), 2)
        return self

    def __exit__(self, *exc) -> None:
        import sys

        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._tmp.seek(0)
        lines = self._tmp.read().decode("utf-8", errors="replace").splitlines()
        self._tmp.close()
        for line in (ln for ln in lines if ln.strip()):
            logging.getLogger(self.logger).warning(line)


class capture_logs:  # noqa: N801 - used as a context manager
    """For the duration of a run: third-party log records and Python warnings go to ``log_path`` only.

    The console keeps edgepress's own bars, notes and tables; ``-v`` also echoes every log line there.
    ONNX Runtime's C++ logger (which bypasses Python logging) is set to errors only. Nesting is allowed:
    an inner capture (the search stage's branch runs) adds its file, the outer one keeps its own.
    """

    def __init__(self, log_path, preload: tuple[str, ...] = ()) -> None:
        from pathlib import Path

        self.path = Path(log_path)
        # libraries that attach their own console handler when first imported (nncf) or first asked for a logger
        # (LIBRARY_LOGGING); doing that here, before the handlers are swapped, keeps it off the console for the run
        self.preload = (*LIBRARY_LOGGING, *preload)
        self._saved: list = []
        self._handler: logging.Handler | None = None

    def __enter__(self) -> "capture_logs":
        import importlib

        for module in self.preload:
            try:
                mod = importlib.import_module(module)
            except ImportError:
                continue
            if module in LIBRARY_LOGGING:
                mod.get_logger()  # adds the library's stderr handler (transformers, optimum) on the first call
        from compress.core.fsio import NoFollowFileHandler

        self.path.parent.mkdir(parents=True, exist_ok=True)
        handler = NoFollowFileHandler(self.path, encoding="utf-8")  # a planted link is refused, not followed
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.setLevel(logging.DEBUG)
        self._handler = handler
        handlers = [handler]
        if is_verbose():
            echo = logging.StreamHandler()
            echo.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
            handlers.append(echo)
        self._warnings_were_captured = getattr(logging, "_warnings_showwarning", None) is not None
        logging.captureWarnings(True)
        for name in ("edgepress", "", *THIRD_PARTY_LOGGERS):
            lg = logging.getLogger(name)
            self._saved.append((lg, list(lg.handlers), lg.propagate, lg.level))
            lg.handlers = list(handlers)
            lg.propagate = False
            if name == "edgepress":
                lg.setLevel(logging.INFO)
            elif name and (lg.level == logging.NOTSET or lg.level > logging.WARNING):
                lg.setLevel(logging.WARNING)
        self._ort_severity()
        return self

    @staticmethod
    def _ort_severity() -> None:
        try:
            import onnxruntime as ort
        except ImportError:  # pragma: no cover - a core dependency
            return
        ort.set_default_logger_severity(3)  # errors only: its INFO/WARNING lines bypass Python logging

    def __exit__(self, *exc) -> None:
        for lg, handlers, propagate, level in reversed(self._saved):
            lg.handlers, lg.propagate = handlers, propagate
            lg.setLevel(level)
        if not self._warnings_were_captured:
            logging.captureWarnings(False)
        if self._handler is not None:
            self._handler.close()


def _compact(logs: dict) -> str:
    """Trainer's log dict as one short line: loss 0.123  lr 1e-4  epoch 1.00."""
    keys = [k for k in logs if not k.startswith(("total_flos", "train_samples_per_second", "train_steps_per_second",
                                                  "eval_samples_per_second", "eval_steps_per_second"))]
    parts = []
    for k in keys:
        v = logs[k]
        short = k.replace("learning_rate", "lr").replace("train_", "").replace("eval_", "eval ")
        parts.append(f"{short} {v:.4g}" if isinstance(v, float) else f"{short} {v}")
    return "  ".join(parts)


def stage_progress_callback():
    """A Trainer callback: one tqdm bar named after the running stage; log dicts to the run log, metrics compact."""
    import json
    import sys

    from tqdm.auto import tqdm
    from transformers import TrainerCallback

    log = logging.getLogger("edgepress.trainer")

    class StageProgress(TrainerCallback):
        def __init__(self) -> None:
            self.bar = None

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=current_stage() or "training",
                                unit="step", dynamic_ncols=True, file=sys.stderr, disable=is_quiet(), leave=True)

        def on_step_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            log.info("step %s %s", state.global_step, json.dumps(logs, default=str))
            if self.bar is not None and "loss" in logs:
                self.bar.set_postfix_str(_compact({k: logs[k] for k in ("loss", "learning_rate") if k in logs}),
                                         refresh=True)
            elif self.bar is not None and ("train_runtime" in logs or any(k.startswith("eval_") for k in logs)):
                self.bar.write(f"  {current_stage() or 'training'}: {_compact(logs)}", file=sys.stderr)

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return StageProgress()


def use_stage_progress(trainer) -> None:
    """Swap Trainer's ProgressCallback (raw log dicts on the console) for the stage's named bar."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(stage_progress_callback())


def percent(fraction: float | None) -> str:
    """A fraction as the console and report.md show it: ``98.1 %`` (JSON keeps the fraction); ``–`` for none."""
    return "–" if not isinstance(fraction, (int, float)) else f"{100 * fraction:.1f} %"
