"""Candidate branches: each (depth, prune ratio, vocabulary) is a small pipeline run under runs/<name>/search/.

A branch is seeded with the parent run's finished stages (fine-tuned teacher, distilled student), so it
only runs what differs: prune (+ recovery), trim_vocab, export (ONNX, plus the files of every runtime in
search.runtimes) and quantize (ONNX INT8 / fp16, when ONNX Runtime is one of the runtimes). A trimmed branch
is also seeded with its untrimmed sibling's prune stage when that ran, so a prune ratio is pruned (and
recovered) once;
trimming comes after pruning because recovery distils from the teacher, whose token ids are the untrimmed
ones. A depth other than the upstream student's is distilled once, in its own sub-run ``d<depth>-distill``,
and seeds every branch of that depth. Branches live
outside the search stage's temporary folder, so an interrupted search keeps every finished branch and
a rerun skips them by config hash like any other stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from compress.core.errors import EdgepressError
from compress.run.stages import StageInputs, StageRecord, Variant

if TYPE_CHECKING:
    from compress.config import RunConfig
    from compress.search.config import PrunePoint


@dataclass
class Branch:
    """One (depth, prune amount, vocabulary) branch and what it produced."""

    depth: int
    prune_ratio: float  # share of FFN neurons removed
    name: str
    variants: list[tuple[Variant, Path]]
    tokenizer: Path | None = None
    model_dir: Path | None = None  # the branch's PyTorch model (pruned, or the depth's distilled student)
    vocab_size: int | None = None  # trim_vocab's vocab.max_size; None: untrimmed
    head_ratio: float | None = None  # share of attention heads removed; None: prune_ratio
    export_dir: Path | None = None  # the branch's finished export stage (its fp32 files, what final/ reuses)


def branch_name(depth: int, ratio: "float | PrunePoint", vocab: int | None = None) -> str:
    """``d3-p30`` (30 % of heads and FFN neurons), ``d3-h20-f70`` (20 % of heads, 70 % of FFN neurons),
    ``d3-p30-v16k`` (vocabulary trimmed to 16,000 tokens) or ``d3-p30-v16500``: percentages and token counts are
    exact, so two grid points never share a branch folder."""
    from benchmarks.identity import vocab_tag
    from compress.search.config import PrunePoint

    name = f"d{depth}-{PrunePoint.of(ratio).name}"
    return name if vocab is None else f"{name}-{vocab_tag(vocab)}"


def model_depth(model_dir: Path) -> int:
    """Encoder layer count of a saved Hugging Face model folder."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(model_dir))
    depth = getattr(config, "num_hidden_layers", None)
    if not isinstance(depth, int):
        raise EdgepressError(f"cannot read the layer count of '{model_dir}' (config.json has no num_hidden_layers)")
    return depth


def _narrowed(cfg: "RunConfig", name: str, stages: list[str]) -> dict:
    """The sections every branch config changes: its name, folder and stages, and the shared cache root."""
    # sub-runs share the parent run's disk caches (teacher outputs, Arrow data), so each teacher forward is paid once
    from compress.run.stages import distill_cache_root

    return {"name": name, "output_dir": str(cfg.run_dir / "search"), "stages": stages,
            "distill": {"cache_dir": str(distill_cache_root(cfg, cfg.run_dir))}}


def depth_config(cfg: "RunConfig", depth: int) -> "RunConfig":
    """The parent config narrowed to distilling a ``depth``-layer student (shared by that depth's branches)."""
    from compress.api import derive

    return derive(cfg, **_narrowed(cfg, f"d{depth}-distill", ["distill"]),
                  student={"num_layers": depth, "layers": None, "model": None})


def branch_config(cfg: "RunConfig", depth: int, ratio: "float | PrunePoint", vocab: int | None = None,
                  pruned: bool = False) -> "RunConfig":
    """The parent config narrowed to one branch: its stages, prune amount, vocabulary size and quantize methods.

    ``pruned``: the seed already holds this amount's prune stage (an untrimmed sibling ran it).
    """
    from compress.api import derive
    from compress.search.config import PrunePoint

    s = cfg.search
    point = PrunePoint.of(ratio)
    stages = ((["prune"] if point.removes_anything and not pruned else []) + (["trim_vocab"] if vocab is not None else [])
              + ["export"])
    timed_in_ort = "onnxruntime" in s.runtimes
    if s.quantize and timed_in_ort:  # quantize writes ONNX files: only ONNX Runtime times them
        stages.append("quantize")
    data = _narrowed(cfg, branch_name(depth, point, vocab), stages)
    data["prune"] = {"target": "ratios", "amount": 0.0, "head_ratio": point.heads, "ffn_ratio": point.ffn}
    if vocab is not None:
        data["vocab"] = {"max_size": vocab, "coverage": None}
    # the fused fp32 file comes from quantize when it runs (it fuses before quantizing), else from export; the
    # other runtimes' files (fp32 and their quantized / fp16 siblings) are written by export
    data["export"] = {"formats": ["onnx", *s.runtime_formats()],
                      "optimize": s.optimize_graph and timed_in_ort and "quantize" not in stages, "bundle": False,
                      "include_teacher": False}
    # the search's floor (against the teacher) is the accuracy guard here: the guard's fallbacks keep blocks
    # in float, which would hide the plain INT8 candidate and inflate its file
    slow_fusions = cfg.quantize.slow_cpu_fusions
    data["quantize"] = {"methods": list(s.quantize), "optimize_graph": s.optimize_graph,
                        "slow_cpu_fusions": s.targets.device == "cuda" if slow_fusions is None else slow_fusions,
                        "guard": {**cfg.quantize.guard.model_dump(mode="json"), "fallbacks": False}}
    return derive(cfg, **data)


def upstream_hash(inputs: StageInputs) -> str:
    """Config hash of the last finished upstream stage ('' when there is none)."""
    from compress.run.stages import read_record

    found = read_record(inputs.upstream[-1].dir) if inputs.upstream else None
    return str(found[1].get("config_hash", "")) if found else ""


def plan_branches(cfg: "RunConfig", inputs: StageInputs) -> list[tuple[int, "PrunePoint", int | None, bool]]:
    """(depth, prune point, vocabulary size, needs its own distill) for every branch, the upstream student's depth
    first, and for each (depth, point) the untrimmed branch before the trimmed ones."""
    student = inputs.latest("model")
    have = model_depth(student) if student is not None else None
    depths = list(cfg.search.depths) or ([have] if have is not None else [])
    if not depths:
        raise EdgepressError("search needs a student: put 'distill' before 'search' in `stages:`, "
                             "or list the depths to distill in search.depths")
    depths.sort(key=lambda d: d != have)
    vocabs = sorted(cfg.search.vocab_sizes, key=lambda v: v is not None)
    return [(d, p, v, d != have) for d in depths for p in cfg.search.prune_points() for v in vocabs]


FUSED_FP32 = ("student-onnx-optimized", "student-fp32-opt")  # export's / quantize's fused fp32 file


def _candidate_variants(records: list[StageRecord], formats: list[str]) -> list[tuple[Variant, Path]]:
    """The branch's export and quantize variants in ``formats`` (the fused fp32 ONNX file instead of the plain one)."""
    found = [(v, rec.dir / v.path) for rec in records if rec.name in ("export", "quantize")
             for v in rec.variants if v.format in formats]
    if any(v.name in FUSED_FP32 for v, _ in found):
        found = [(v, p) for v, p in found if v.name != "student"]
    return found


def run_branches(cfg: "RunConfig", inputs: StageInputs,
                 progress: Callable[[str], None] | None = None) -> list[Branch]:
    """Run (or resume) every branch; returns their candidate variants (ONNX and the other runtimes' files)."""
    from compress.api import run_branch
    from compress.search.config import RUNTIME_FORMATS
    from compress.run.stages import read_record

    upstream = (list(inputs.upstream), upstream_hash(inputs))
    seeds: dict[int, tuple[list[StageRecord], str]] = {}
    pruned: dict[tuple[int, str], tuple[list[StageRecord], str]] = {}  # an untrimmed branch's prune, for its siblings
    branches = []
    for depth, point, vocab, needs_distill in plan_branches(cfg, inputs):
        if depth not in seeds:
            seeds[depth] = upstream
            if needs_distill:
                dcfg = depth_config(cfg, depth)
                if progress:
                    progress(f"{dcfg.name}: distilling a {depth}-layer student (shared by its branches)")
                found = read_record(run_branch(dcfg, seed=upstream, data=inputs.data)[-1].dir)
                if found is None:
                    raise EdgepressError(f"search: the {depth}-layer distillation in '{dcfg.run_dir}' left no stage.json")
                seeds[depth] = ([*upstream[0], found[0]], str(found[1].get("config_hash", "")))
        seed = pruned.get((depth, point.name)) if vocab is not None else None
        bcfg = branch_config(cfg, depth, point, vocab, pruned=seed is not None)
        seed = seed or seeds[depth]
        if progress:
            progress(f"branch {bcfg.name}: {' -> '.join(bcfg.stages)}")
        outcomes = run_branch(bcfg, seed=seed, data=inputs.data)
        found_records = [read_record(o.dir) for o in outcomes]
        records = [f[0] for f in found_records if f is not None]
        prune = next((f for f in found_records if f is not None and f[0].name == "prune"), None)
        if vocab is None and prune is not None:
            pruned[(depth, point.name)] = ([*seed[0], prune[0]], str(prune[1].get("config_hash", "")))
        tok = next((r.path("tokenizer") for r in records if "tokenizer" in r.outputs), None)
        model_dir = next((r.path("model") for r in reversed([*seed[0], *records]) if "model" in r.outputs), None)
        export_dir = next((r.dir for r in records if "onnx" in r.outputs and "tokenizer" in r.outputs), None)
        formats = [RUNTIME_FORMATS[r] for r in cfg.search.runtimes]
        branches.append(Branch(depth, point.ffn, bcfg.name, _candidate_variants(records, formats), tok, model_dir,
                               vocab, point.heads, export_dir))
    return branches
