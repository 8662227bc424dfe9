"""The stage registry: each stage's name, function, config sections, declared outputs and hooks.

Below the config schema (which validates stage names against it) and the stage contract (compress.run.stages), so
neither imports the other through it. Functions and hooks are "module:function" strings, imported only when used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from compress.core.errors import EdgepressError, closest_name
from compress.core.refs import resolve
from compress.model.formats import Names, export_output_keys


@dataclass(frozen=True)
class StageSpec:
    """Where a stage's function lives and which config sections its result depends on."""

    name: str
    target: str  # "module:function", imported only when the stage runs
    sections: tuple[str, ...]
    summary: str
    unused: tuple[str, ...] = ()  # dotted keys inside ``sections`` the stage never reads (hashed at default)
    needs: tuple[str, ...] = ()  # output keys an earlier stage must provide (checked before any work)
    provides: tuple[str, ...] = ()  # output keys this stage writes (checked when it returns)
    optional: Sequence[str] = ()  # output keys it writes only under some settings (also checked; export's: live)
    multi_rank: bool = False  # runs on every rank under torchrun (training stages); others run on rank 0 only
    publish: tuple[str, ...] = ()  # outputs the run folder keeps under their own names (runs/<name>/report.json)
    follows: tuple[str, ...] = ()  # appended to a run whose stages include one of these (not to search branches)
    preload: str = ""  # "module:function(cfg) -> module names" imported before the run's log capture starts
    work_dirs: str = ""  # "module:function(cfg, run_dir) -> folders" it may write outside out_dir (caches)
    needs_unless: str = ""  # "module:function(cfg) -> keys" of ``needs`` the stage makes itself under that config
    # "module:function(cfg) -> bool": whether it loads teacher.model under that config (unset: it does whenever
    # "teacher" is among its sections); the pre-run check of the teacher folder runs only for stages that load it
    loads_teacher: str = ""

    def load(self) -> Callable[..., Any]:
        return resolve(self.target)

    def call(self, hook: str, *args: Any) -> Any:
        """Call one of the spec's "module:function" hooks (preload, work_dirs, needs_unless, loads_teacher); None when
        unset."""
        target = getattr(self, hook)
        return resolve(target)(*args) if target else None


LOSS_CURVES = ("loss_csv", "loss_png")  # training stages write them when the Trainer logged a step

# Sections are the config keys whose values feed the stage's hash (plus its upstream hashes).
STAGES: dict[str, StageSpec] = {
    spec.name: spec
    for spec in [
        StageSpec("finetune", "compress.finetune.stage:run_stage", ("task", "seed", "teacher", "data", "finetune"),
                  "fine-tune the teacher's task head on labelled data", unused=("data.unlabeled",),
                  provides=("teacher",), optional=LOSS_CURVES, multi_rank=True, work_dirs="compress.run.stages:checkpoint_dirs"),
        StageSpec("distill", "compress.distill.stage:run_stage", ("task", "seed", "teacher", "data", "student", "distill"),
                  "build a smaller student from the teacher and distill it", provides=("model",), optional=LOSS_CURVES,
                  multi_rank=True,
                  work_dirs="compress.run.stages:distill_work_dirs"),
        StageSpec("prune", "compress.prune.stage:run_stage", ("task", "seed", "data", "prune"),
                  "remove attention heads / FFN neurons for real, then recover", needs=("model",),
                  provides=("model",), multi_rank=True, work_dirs="compress.run.stages:run_cache_dirs"),
        StageSpec("trim_vocab", "compress.vocab.stage:run_stage", ("task", "seed", "data", "vocab"),
                  "keep the tokens the domain uses: embedding rows and tokenizer rewritten together",
                  needs=("model",), provides=("model",)),
        # export's optional keys: one per format it writes after model.onnx, one per quantized / fp16 sibling
        # (<format>_<precision>), read from the format registry (compress/model/formats.py) at each use
        StageSpec("export", "export.stage:run_stage", ("task", "seed", "teacher", "data", "export"),
                  "write ONNX (and other runtime formats), checked against PyTorch", needs=("model",),
                  provides=("onnx", "tokenizer"), loads_teacher="compress.run.stages:export_loads_teacher",
                  optional=Names(export_output_keys, lead=("bundle", "onnx_optimized", "teacher_onnx"))),
        StageSpec("quantize", "compress.quantize.stage:run_stage", ("task", "seed", "teacher", "data", "distill", "quantize"),
                  "INT8 quantization of the exported ONNX model", needs=("onnx",), provides=("report",),
                  optional=("onnx_int8", "onnx_fp16", "onnx_int4"),
                  preload="compress.run.stages:nncf_preload", loads_teacher="compress.run.stages:qat_loads_teacher"),
        StageSpec("search", "compress.search.stage:run_stage",
                  ("task", "seed", "teacher", "data", "finetune", "student", "distill", "prune", "vocab", "export",
                   "quantize", "bench", "search"),  # its branches are whole runs: every section
                  "build candidates (depth x prune x precision x runtime), measure on the target, pick the fastest "
                  "above the floor",
                  # the bench fields the search sets itself (batch, device, rows) or never reads: changing them
                  # (a baseline, a sweep size) re-runs the bench stage, not every candidate's measurement
                  unused=("bench.batch_size", "bench.sweep_batch_sizes", "bench.max_eval_samples", "bench.device",
                          "bench.targets", "bench.baselines", "bench.session_memory"),
                  needs=("model",), provides=("candidates", "search_report", "measurements"),
                  # the winner's files exist when a candidate met the targets or came closest
                  optional=("search_plot", "measurements_eval", "onnx", "tokenizer", "winner_model", "winner_export"),
                  preload="compress.run.stages:nncf_preload", needs_unless="compress.run.stages:search_distils",
                  work_dirs="compress.run.stages:search_work_dirs"),
        StageSpec("bench", "benchmarks.stage:run_stage", ("task", "seed", "teacher", "data", "bench"),
                  "measure quality retention and latency; write report.md/json/png", provides=("json", "md", "csv"),
                  optional=("png",), publish=("json", "md", "png")),
        StageSpec("package", "compress.package.stage:run_stage", ("task", "teacher", "data", "export"),
                  "ship the chosen model as runs/<name>/final/: Hugging Face, optimum and app-bundle folders",
                  needs=("onnx",), provides=("final",), publish=("final",), follows=("export", "search")),
    ]
}


def with_followers(stages: list[str]) -> list[str]:
    """``stages`` plus every registered stage that ``follows`` one of them, in registry order (package after a run
    that exports or searches); a follower already listed stays where it is."""
    return [*stages, *(s.name for s in STAGES.values()
                       if s.follows and s.name not in stages and set(s.follows) & set(stages))]


def get_stage(name: str) -> StageSpec:
    if name not in STAGES:
        close = closest_name(name, STAGES)
        hint = f" (did you mean '{close}'?)" if close else ""
        raise EdgepressError(f"unknown stage '{name}'{hint}; known stages: {', '.join(STAGES)}")
    return STAGES[name]
