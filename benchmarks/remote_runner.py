#!/usr/bin/env python3
"""Standalone latency runner (ONNX Runtime, LiteRT, OpenVINO): copied to a device and run there, prints one JSON object.

Needs only Python 3.8+, ``numpy`` and the model's runtime on the device (no edgepress import): ``onnxruntime``
for ``.onnx``/``.ort`` files, ``ai-edge-litert`` (its ``Interpreter``, XNNPACK on CPU) for ``.tflite`` files,
``openvino`` (CPU plugin) for an IR's ``.xml`` (its ``.bin`` beside it).
The host-side harness imports the same timing and device-probe code from this file
(``benchmarks.stats``), so a phone and a laptop are measured by identical loops.

    python3 remote_runner.py --model model.onnx --batch 1 --seq 128 --warmup 10 \
        --min-runs 50 --min-seconds 2 --threads 4 [--lengths 12,30,7 --vocab 30522] [--feeds feeds.npz]
    python3 remote_runner.py --device-info

``--feeds`` runs the model once on the given inputs (an .npz of input name -> array) and adds its outputs
to the JSON (``outputs_npz_b64``: an .npz, base64), so the host can check them against its own run.
A device that runs under an emulator says so: ``EDGEPRESS_EMULATED`` in the environment (set by
``tests/arm/emulated.py``) makes ``device_info()`` report ``emulated: true`` and the emulator.

A ``.tflite`` file has static shapes (one signature per sequence length, as ``edgepress export`` writes it): a
feed runs in the smallest length that holds it, padded with masked positions outside the timed loop, exactly as
the local LiteRT runner does (``LiteRTSession``). An OpenVINO IR runs as the local OpenVINO runner runs it
(``OpenVinoSession``): LATENCY hint, one stream, the threads as INFERENCE_NUM_THREADS, the CPU's default inference
precision, each feed padded to a length bucket (``length_bucket``) and the model compiled once per [batch, bucket];
its ``--feeds`` outputs come from an f32 compile, so they compare with the host's f32 run like for like.

Exit codes: 0 ok, 2 the model file cannot be loaded, 3 bad arguments, 4 the runtime or numpy missing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

Clock = Callable[[], float]

# /proc/cpuinfo flags worth knowing for transformer inference (x86 SIMD/VNNI/AMX, ARM dot product)
ISA_FLAG_PREFIXES = ("avx2", "avx512", "avx_vnni", "amx", "fma", "f16c")
ARM_FLAGS = ("asimd", "asimddp", "asimdhp", "i8mm", "sve", "sve2", "bf16", "fphp")
# /proc/cpuinfo "CPU part" of Arm Ltd. (implementer 0x41) cores -> name
ARM_PARTS = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
             "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76",
             "0xd0c": "Neoverse-N1", "0xd0d": "Cortex-A77", "0xd40": "Neoverse-V1", "0xd41": "Cortex-A78",
             "0xd44": "Cortex-X1", "0xd46": "Cortex-A510", "0xd47": "Cortex-A710", "0xd48": "Cortex-X2",
             "0xd49": "Neoverse-N2", "0xd4f": "Neoverse-V2", "0xd80": "Cortex-A520", "0xd81": "Cortex-A720"}
EMULATED_ENV = "EDGEPRESS_EMULATED"
STANDARD_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
TOKEN_SCORES = ("start_logits", "end_logits")  # 2-D outputs with one score per token
# runtime -> (module imported on the device, the pip line that installs it); a model's suffix picks its runtime.
# The facts of each format live in compress/model/formats.py (FORMAT_SPECS); this file is stdlib-only and copied to
# devices, so it cannot import it: keep this short table in step with the registry when a runtime is added.
RUNTIMES = {"onnxruntime": ("onnxruntime", "pip install onnxruntime numpy"),
            "litert": ("ai_edge_litert", "pip install ai-edge-litert numpy"),
            "openvino": ("openvino", "pip install openvino numpy")}
LITERT_SUFFIXES = (".tflite",)
OPENVINO_SUFFIXES = (".xml",)
SMALLEST_BUCKET = 16  # OpenVINO: the shortest static length a feed is padded to


# --------------------------------------------------------------------------------------------- timing


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default) of already sorted values, q in [0, 100]."""
    if not sorted_values:
        raise ValueError("percentile of an empty sample")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(times_s: Sequence[float], batch_size: int = 1) -> Dict[str, float]:
    """Latency statistics in milliseconds (p50 = median, p90, p99, mean, std) and samples/s."""
    if not times_s:
        raise ValueError("no timed runs to summarize")
    ms = sorted(t * 1000.0 for t in times_s)
    n = len(ms)
    mean = sum(ms) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in ms) / (n - 1)) if n > 1 else 0.0
    p50 = percentile(ms, 50)
    return {
        "p50": p50, "p90": percentile(ms, 90), "p99": percentile(ms, 99), "mean": mean, "std": std,
        "min": ms[0], "max": ms[-1], "runs": n, "seconds": sum(times_s),
        "throughput": (batch_size / (p50 / 1000.0)) if p50 > 0 else float("inf"),
    }


def measure(step: Callable[[int], Any], warmup: int = 10, min_runs: int = 50, min_seconds: float = 2.0,
            clock: Clock = time.perf_counter, max_runs: int = 100000) -> List[float]:
    """Run ``step(i)`` ``warmup`` times untimed, then time it until both ``min_runs`` and ``min_seconds`` are met.

    ``clock`` returns seconds; pass a fake one to test the loop. Returns per-run durations (s).
    """
    for i in range(warmup):
        step(i)
    times: List[float] = []
    total = 0.0
    i = 0
    while (len(times) < min_runs or total < min_seconds) and len(times) < max_runs:
        t0 = clock()
        step(warmup + i)
        dt = clock() - t0
        times.append(dt)
        total += dt
        i += 1
    return times


# --------------------------------------------------------------------------------------------- memory


def _proc_status_kb(field: str) -> Optional[float]:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0: write 5 to clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def rss_mb() -> Optional[float]:
    """Current resident set size in MiB (Linux/Android), else None."""
    kb = _proc_status_kb("VmRSS")
    return None if kb is None else kb / 1024.0


def peak_rss_mb() -> Optional[float]:
    """Peak resident set size in MiB since start or the last reset_peak_rss()."""
    kb = _proc_status_kb("VmHWM")
    if kb is not None:
        return kb / 1024.0
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0
    except (ImportError, OSError):
        return None


# --------------------------------------------------------------------------------------------- device


def cpu_info(cpuinfo_text: Optional[str] = None, arch: Optional[str] = None) -> Dict[str, Any]:
    """CPU model, core count and the instruction-set flags that matter for inference.

    The one /proc/cpuinfo parser: the host's quantizer reads this record too (``compress.quantize.cpu``).
    ``arch`` overrides this machine's architecture (parsing another machine's cpuinfo text).
    """
    if cpuinfo_text is None:
        try:
            with open("/proc/cpuinfo") as fh:
                cpuinfo_text = fh.read()
        except OSError:
            cpuinfo_text = ""
    model = ""
    implementer = ""
    flags: set = set()
    for line in cpuinfo_text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "processor") and not model and not value.strip().isdigit():
            model = value.strip()
        elif key == "cpu implementer" and not implementer:
            implementer = value.strip().lower()
        elif key == "cpu part" and not model:
            part = value.strip().lower()
            model = ARM_PARTS.get(part, "") if implementer == "0x41" else ""
            model = model or "ARM part " + value.strip()
        elif key in ("flags", "features"):
            flags.update(value.split())
    picked = sorted(f for f in flags if f.startswith(ISA_FLAG_PREFIXES) or f in ARM_FLAGS or "vnni" in f)
    machine = arch or platform.machine()
    here = arch is None  # the text describes this machine: platform's answers may fill gaps
    if "asimddp" in flags or (here and sys.platform == "darwin" and machine == "arm64"):
        picked.append("dotprod")  # every Apple silicon core has the ARMv8.4 dot product
    return {"cpu": model or (platform.processor() if here else "") or machine, "arch": machine,
            "cores": os.cpu_count() or 0, "isa": sorted(set(picked))}


def device_info() -> Dict[str, Any]:
    """What this machine is: CPU, OS, Python and the runtime versions present."""
    info: Dict[str, Any] = cpu_info()
    info.update({"platform": platform.platform(), "python": platform.python_version(), "hostname": platform.node()})
    versions = {}
    for mod in ("onnxruntime", "ai_edge_litert", "openvino", "numpy"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = "not installed"
    info["versions"] = versions
    emulator = os.environ.get(EMULATED_ENV)
    info["emulated"] = bool(emulator)
    if emulator:
        info["emulator"] = emulator
    return info


def run_feeds(sess: Any, path: str) -> Dict[str, Any]:
    """Run ``sess`` once on the inputs in the .npz at ``path``; the outputs as a base64 .npz plus their names."""
    import base64
    import io

    import numpy as np

    with np.load(path) as data:
        feeds = {name: data[name] for name in data.files}
    names = [o.name for o in sess.get_outputs()]
    outs = sess.run(None, feeds)
    buf = io.BytesIO()
    np.savez(buf, **{n: np.asarray(o) for n, o in zip(names, outs)})
    return {"output_names": names, "outputs_npz_b64": base64.b64encode(buf.getvalue()).decode("ascii")}


# --------------------------------------------------------------------------------------------- runtimes


def runtime_for(model: str) -> str:
    """The runtime a model file runs in, by its suffix: ``litert`` for .tflite, ``openvino`` for an IR's .xml, else
    ``onnxruntime`` (.onnx/.ort)."""
    name = model.lower()
    if name.endswith(LITERT_SUFFIXES):
        return "litert"
    return "openvino" if name.endswith(OPENVINO_SUFFIXES) else "onnxruntime"


def model_files(model: str) -> List[str]:
    """Every file a model is made of: an OpenVINO IR is its .xml and the .bin of the same stem."""
    if runtime_for(model) == "openvino":
        return [model, os.path.splitext(model)[0] + ".bin"]
    return [model]


class _Named:
    """An input or output name, shaped like onnxruntime's NodeArg (``.name``)."""

    def __init__(self, name: str) -> None:
        self.name = name


class LiteRTSession:
    """A ``.tflite`` file's signatures as static length buckets, behind onnxruntime's session calls (get_inputs,
    get_outputs, run(None, feeds)), so one timing loop, feed builder and output check serve both runtimes.

    Mirrors ``benchmarks.runners.litert_runner`` (the local runner): litert-torch writes static shapes, one
    signature ``len_<L>`` per sequence length at a fixed batch; a feed runs in chunks of that batch in the smallest
    bucket that holds its length (the largest when none does: cut to it), padded with masked positions and cast to
    the file's integer type in ``prepare`` (untimed); token outputs are cut back to the feed's length.
    """

    def __init__(self, model: str, threads: Optional[int]) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=model, num_threads=int(threads) if threads else None)
        self.buckets: Dict[int, Any] = {}  # sequence length -> signature runner
        self.batch = 1
        self.input_names: List[str] = []
        self.output_names: List[str] = []
        self.dtypes: Dict[str, Any] = {}
        self.truncated = False
        for key in self.interpreter.get_signature_list():
            runner = self.interpreter.get_signature_runner(key)
            inputs = runner.get_input_details()
            shapes = {tuple(int(d) for d in v["shape"]) for v in inputs.values()}
            if len(shapes) != 1 or len(next(iter(shapes))) != 2:
                raise ValueError(f"signature '{key}' takes inputs of shapes {sorted(shapes)}; expected one "
                                 "[batch, sequence] shape for every input (a BERT-style file)")
            self.batch, length = next(iter(shapes))
            self.buckets[length] = runner
            order = {n: i for i, n in enumerate(STANDARD_INPUTS)}
            self.input_names = sorted(inputs, key=lambda n: (order.get(n, len(order)), n))
            self.dtypes = {n: v["dtype"] for n, v in inputs.items()}
            self.output_names = list(runner.get_output_details())
        if not self.buckets:
            raise ValueError("the file has no signature to call (litert-torch writes signatures)")
        self.lengths = sorted(self.buckets)
        # per-token outputs: dim 1 is the signature's length in every signature. With one signature a 2-D output
        # whose width happens to equal its length (sentence_embedding [1, 32] at len_32) is per-token only when
        # named so (question answering's start/end logits)
        self.sequence_outputs = set(self.output_names)
        for length, runner in self.buckets.items():
            self.sequence_outputs &= {n for n, d in runner.get_output_details().items()
                                      if len(d["shape"]) >= 2 and int(d["shape"][1]) == length
                                      and (len(d["shape"]) >= 3 or len(self.buckets) > 1 or n in TOKEN_SCORES)}

    def get_inputs(self) -> List[_Named]:
        return [_Named(n) for n in self.input_names]

    def get_outputs(self) -> List[_Named]:
        return [_Named(n) for n in self.output_names]

    def prepare(self, feeds: Dict[str, Any]) -> Any:
        """(rows, feed length, bucket length, per-call inputs): the untimed padding, chunking and cast."""
        import numpy as np

        first = feeds[self.input_names[0]]
        n, length = int(first.shape[0]), int(first.shape[1])
        size = next((b for b in self.lengths if b >= length), self.lengths[-1])
        keep = min(length, size)
        self.truncated = self.truncated or length > size
        calls = []
        for start in range(0, n, self.batch):
            call = {}
            for name in self.input_names:
                block = np.zeros((self.batch, size), dtype=self.dtypes[name])
                part = feeds[name][start:start + self.batch, :keep]
                block[:part.shape[0], :keep] = part
                call[name] = block
            calls.append(call)
        return n, length, size, calls

    def run_prepared(self, prepared: Any) -> List[Dict[str, Any]]:
        """Every call through the bucket's signature (the timed part)."""
        runner = self.buckets[prepared[2]]
        return [runner(**call) for call in prepared[3]]

    def assemble(self, prepared: Any, results: List[Dict[str, Any]]) -> Dict[str, Any]:
        """The calls' outputs by name as one batch of the feed's rows, token outputs cut (or zero-padded) to its
        length."""
        import numpy as np

        n, length, size, _ = prepared
        outs = {}
        for name in self.output_names:
            whole = np.concatenate([r[name] for r in results])[:n]
            if name in self.sequence_outputs and length != size:
                if length < size:
                    whole = whole[:, :length]
                else:
                    pad = [(0, 0)] * whole.ndim
                    pad[1] = (0, length - size)
                    whole = np.pad(whole, pad)
            outs[name] = whole
        return outs

    def __call__(self, feeds: Dict[str, Any]) -> Dict[str, Any]:
        """Run once: the outputs by name, with the feeds' rows and length."""
        prepared = self.prepare(feeds)
        return self.assemble(prepared, self.run_prepared(prepared))

    def run(self, output_names: Optional[List[str]], feeds: Dict[str, Any]) -> List[Any]:
        """Run once; the outputs (in ``output_names`` or the file's order), as onnxruntime's session.run."""
        outs = self(feeds)
        return [outs[name] for name in output_names or self.output_names]

    def describe(self) -> Dict[str, Any]:
        """How the file's shapes were run, for the report."""
        return {"delegate": "XNNPACK (the interpreter's default)", "batch": self.batch, "sequence_lengths": self.lengths,
                "truncated": self.truncated}


OPENVINO_SHAPES = ("static: padded to length buckets (powers of two from 16 to 128, then multiples of 128), one "
                   "compile per [batch, bucket]")


def length_bucket(length: int) -> int:
    """The static sequence length an OpenVINO feed of ``length`` tokens runs at: the next power of two (at least 16)
    up to 128, then the next multiple of 128, so the usual maximum lengths (256, 384, 512) are buckets themselves and
    a full window is never padded past the model's positions."""
    if length > 128:
        return -(-length // 128) * 128
    bucket = SMALLEST_BUCKET
    while bucket < length:
        bucket *= 2
    return bucket


def openvino_reason(exc: BaseException) -> str:
    """OpenVINO's message without its "Exception from src/...cpp:N:" location lines, on one line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and not ln.startswith("Exception from ")]
    return " ".join(lines)[:300] or type(exc).__name__


class OpenVinoSession:
    """An OpenVINO IR (.xml + .bin) on CPU behind onnxruntime's session calls, compiled the way OpenVINO's docs
    recommend for one request at a time: LATENCY hint, one stream, ``threads`` as INFERENCE_NUM_THREADS (the
    plugin's default when None), the CPU's default inference precision unless ``precision`` ("f32", "bf16") is given.

    Each compiled shape holds its own copy of the weights, so a feed is padded (masked positions, untimed, in
    ``prepare``) to its length bucket (``length_bucket``) and the model is compiled once per [batch, bucket]; per-token
    outputs are cut back to the feed's length. The local runner (``benchmarks.runners.openvino_runner``) uses this.
    """

    def __init__(self, model: str, threads: Optional[int], precision: Optional[str] = None) -> None:
        import openvino as ov

        weights = os.path.splitext(model)[0] + ".bin"
        if not os.path.isfile(weights):
            raise ValueError(f"the IR has no weights file '{os.path.basename(weights)}' beside it; copy the .bin "
                             "written with the .xml into the same folder")
        self.core = ov.Core()
        self.threads = int(threads) if threads else None
        self.precision = precision
        try:
            self.model = self.core.read_model(model)
        except RuntimeError as exc:
            raise ValueError(openvino_reason(exc)) from None
        self.input_names = [i.get_any_name() for i in self.model.inputs]
        self.dtypes = {i.get_any_name(): i.get_element_type().to_dtype() for i in self.model.inputs}
        self.output_names = [o.get_any_name() for o in self.model.outputs]
        self.compiled: Dict[Any, Any] = {}  # input shapes (input_names order) -> compiled model
        self.dynamic: Any = None

    def config(self) -> Dict[str, Any]:
        """The compile properties: the latency hint, one stream, the threads and precision when set."""
        import openvino.properties as props
        import openvino.properties.hint as hints

        cfg: Dict[str, Any] = {hints.performance_mode: hints.PerformanceMode.LATENCY, props.num_streams: 1}
        if self.precision is not None:
            cfg[hints.inference_precision] = self.precision
        if self.threads is not None:
            cfg[props.inference_num_threads] = self.threads
        return cfg

    def compiled_for(self, shapes: Any) -> Any:
        """The model compiled for these static input shapes (in ``input_names`` order), compiled once and kept."""
        if shapes not in self.compiled:
            model = self.model.clone()
            model.reshape(dict(zip(self.input_names, [list(s) for s in shapes])))
            self.compiled[shapes] = self.core.compile_model(model, "CPU", self.config())
        return self.compiled[shapes]

    def compiled_dynamic(self) -> Any:
        """The model compiled with its own (dynamic) shapes, for runs of many lengths that are not timed."""
        if self.dynamic is None:
            self.dynamic = self.core.compile_model(self.model, "CPU", self.config())
        return self.dynamic

    def get_inputs(self) -> List[_Named]:
        return [_Named(n) for n in self.input_names]

    def get_outputs(self) -> List[_Named]:
        return [_Named(n) for n in self.output_names]

    def prepare(self, feeds: Dict[str, Any]) -> Any:
        """(infer request of the bucket's compile, padded feeds, feed length): the untimed padding and compile."""
        import numpy as np

        length = int(feeds[self.input_names[0]].shape[1])
        pad = length_bucket(length) - length
        arrays = {n: np.ascontiguousarray(np.pad(feeds[n], ((0, 0), (0, pad))), dtype=self.dtypes[n])
                  for n in self.input_names}
        compiled = self.compiled_for(tuple(tuple(arrays[n].shape) for n in self.input_names))
        return compiled.create_infer_request(), arrays, length

    @staticmethod
    def run_prepared(prepared: Any) -> Any:
        """One inference on the prepared request (the timed part)."""
        return prepared[0].infer(prepared[1], share_inputs=True)

    def assemble(self, prepared: Any) -> Dict[str, Any]:
        """Named outputs of a fresh run on the prepared feeds, per-token ones cut back to the feed's own length."""
        got = prepared[0].infer(prepared[1])
        outs = {}
        for n in self.output_names:
            value = got[n]
            outs[n] = value[:, :prepared[2]] if value.ndim >= 3 or n in TOKEN_SCORES else value
        return outs

    def run(self, output_names: Optional[List[str]], feeds: Dict[str, Any]) -> List[Any]:
        """Run once; the outputs (in ``output_names`` or the file's order), as onnxruntime's session.run."""
        outs = self.assemble(self.prepare(feeds))
        return [outs[name] for name in output_names or self.output_names]

    def describe(self) -> Dict[str, Any]:
        """How the IR was compiled, as the compiled model reports it (not as asked)."""
        import openvino as ov
        import openvino.properties as props
        import openvino.properties.hint as hints

        out: Dict[str, Any] = {"shapes": OPENVINO_SHAPES,
                               "compiled_shapes": [list(s[0]) for s in self.compiled]}
        compiled = next(iter(self.compiled.values()), self.dynamic)
        if compiled is not None:
            values = {k: compiled.get_property(k) for k in (hints.performance_mode, props.num_streams,
                                                            props.inference_num_threads, hints.inference_precision)}
            out["hints"] = {k: v.to_string() if isinstance(v, ov.Type) else str(v) for k, v in values.items()}
        return out


def open_model(model: str, threads: Optional[int], inter: Optional[int]) -> Any:
    """A session for ``model`` in its runtime: an onnxruntime InferenceSession, a LiteRTSession for .tflite, an
    OpenVinoSession for an IR's .xml."""
    runtime = runtime_for(model)
    if runtime == "litert":
        return LiteRTSession(model, threads)
    if runtime == "openvino":
        return OpenVinoSession(model, threads)
    return make_session(model, threads, inter)


def timed_call(sess: Any, feeds: Dict[str, Any]) -> Callable[[], Any]:
    """One timed run on ``feeds``, their preparation done now (LiteRT, OpenVINO: padding into a bucket, cast, compile; onnxruntime
    takes the int64 feeds as they are)."""
    if isinstance(sess, (LiteRTSession, OpenVinoSession)):
        prepared = sess.prepare(feeds)
        return lambda: sess.run_prepared(prepared)
    return lambda: sess.run(None, feeds)


def runtime_version(runtime: str) -> str:
    """The installed version of a runtime's module."""
    return str(getattr(__import__(RUNTIMES[runtime][0]), "__version__", "unknown"))


# --------------------------------------------------------------------------------------------- ORT runner


def make_session(model: str, intra: Optional[int], inter: Optional[int], providers: Optional[List[str]] = None):
    """An InferenceSession with thread counts set explicitly (0 = ORT's default)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3  # errors only: ORT's INFO/WARNING lines are not the report
    so.intra_op_num_threads = int(intra or 0)
    so.inter_op_num_threads = int(inter or 0)
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, sess_options=so, providers=providers or ["CPUExecutionProvider"])


def synthetic_feeds(input_names: Sequence[str], batch: int, seq: int, vocab: int, seed: int = 0,
                    lengths: Optional[Sequence[int]] = None) -> Dict[str, Any]:
    """int64 inputs of shape [batch, seq]: random token ids, mask 1 up to each row's length, type ids 0."""
    import numpy as np

    rng = np.random.default_rng(seed)
    low = 100 if vocab > 200 else 5
    ids = rng.integers(low, max(vocab, low + 1), size=(batch, seq), dtype=np.int64)
    mask = np.ones((batch, seq), dtype=np.int64)
    if lengths is not None:
        for r, n in enumerate(lengths):
            ids[r, n:] = 0
            mask[r, n:] = 0
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros((batch, seq), dtype=np.int64)}
    return {k: feeds[k] for k in input_names if k in feeds}


def realistic_batches(lengths: Sequence[int], batch: int, n_batches: int, seed: int = 0) -> List[List[int]]:
    """Batches of sequence lengths drawn (seeded) from observed lengths; each padded to its longest."""
    import random

    rnd = random.Random(seed)
    pool = list(lengths)
    return [[rnd.choice(pool) for _ in range(batch)] for _ in range(n_batches)]


def run_benchmark(args: argparse.Namespace) -> Dict[str, Any]:
    """Load the model (timed: cold start), then the fixed-shape sweep or the realistic mode."""
    runtime = runtime_for(args.model)
    result: Dict[str, Any] = {"model": args.model,
                              "size_mb": sum(os.path.getsize(f) for f in model_files(args.model)) / 1e6,
                              "threads": {"intra_op": args.threads, "inter_op": args.inter_threads},
                              "device": device_info(), "runtime": runtime, "runtime_version": runtime_version(runtime)}
    if runtime == "onnxruntime":
        import onnxruntime as ort

        result["providers"] = ort.get_available_providers()
    else:
        result["threads"]["inter_op"] = None  # LiteRT has one thread pool (num_threads), OpenVINO one stream
    rss0 = rss_mb()
    reset_peak_rss()
    t0 = time.perf_counter()
    try:
        sess = open_model(args.model, args.threads, args.inter_threads)
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph/NoSuchFile types, LiteRT/OpenVINO ValueError
        raise ModelLoadFailure(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:400]}") from None
    names = [i.name for i in sess.get_inputs()]
    timed_call(sess, synthetic_feeds(names, args.batch[0], args.seq[0], args.vocab))()
    result["cold_start_ms"] = (time.perf_counter() - t0) * 1000.0
    result["inputs"] = names
    points = []
    if args.lengths:
        lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
        for b in args.batch:
            batches = realistic_batches(lengths, b, 64, seed=args.seed)
            calls = [timed_call(sess, synthetic_feeds(names, b, max(ls), args.vocab, seed=k, lengths=ls))
                     for k, ls in enumerate(batches)]
            times = measure(lambda i: calls[i % len(calls)](), args.warmup, args.min_runs, args.min_seconds)
            points.append({"batch": b, "seq": "realistic", "mean_seq": sum(map(sum, batches)) / (b * len(batches)),
                           "latency_ms": summarize(times, b)})
    else:
        for b in args.batch:
            for s in args.seq:
                call = timed_call(sess, synthetic_feeds(names, b, s, args.vocab))
                times = measure(lambda i: call(), args.warmup, args.min_runs, args.min_seconds)
                points.append({"batch": b, "seq": s, "latency_ms": summarize(times, b)})
    result["points"] = points
    result["latency_ms"] = points[0]["latency_ms"]
    result["peak_rss_mb"] = peak_rss_mb()
    result["rss_before_load_mb"] = rss0
    if isinstance(sess, LiteRTSession):
        result["litert"] = sess.describe()
    if isinstance(sess, OpenVinoSession):
        result["openvino"] = sess.describe()
    if args.feeds:
        if isinstance(sess, OpenVinoSession):
            # timed in the CPU's default precision (an app's: f16 on ARM cores with FP16 arithmetic, bf16 on AMX),
            # the outputs compared with the host's in f32 on both sides: the same IR's arithmetic, like for like
            sess = OpenVinoSession(args.model, args.threads, precision="f32")
            result["openvino"]["outputs_precision"] = "f32"
        result.update(run_feeds(sess, args.feeds))
    return result


class ModelLoadFailure(Exception):
    """The runtime (onnxruntime, LiteRT, OpenVINO) refused the model file."""


def _int_list(text: str) -> List[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line arguments of the device-side runner."""
    p = argparse.ArgumentParser(description="Measure a model's latency with onnxruntime (.onnx/.ort), LiteRT "
                                            "(.tflite) or OpenVINO (.xml + .bin); prints JSON.")
    p.add_argument("--model", help="the .onnx/.ort/.tflite/.xml file (required unless --device-info)")
    p.add_argument("--device-info", action="store_true", help="print only what this device is (no model)")
    p.add_argument("--feeds", default="", help="an .npz of inputs: also run them once and return the outputs")
    p.add_argument("--batch", type=_int_list, default=[1], help="batch sizes, comma-separated")
    p.add_argument("--seq", type=_int_list, default=[128], help="sequence lengths, comma-separated")
    p.add_argument("--lengths", default="", help="realistic mode: observed token lengths, comma-separated")
    p.add_argument("--vocab", type=int, default=100, help="token ids are drawn below this (the tokenizer's vocab size)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--min-runs", type=int, default=50)
    p.add_argument("--min-seconds", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (LiteRT: num_threads; OpenVINO: "
                                                          "INFERENCE_NUM_THREADS; 0: the runtime's default)")
    p.add_argument("--inter-threads", type=int, default=1, help="inter-op threads")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not args.model and not args.device_info:
        p.error("--model is required (or --device-info)")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point: print one JSON object on stdout (``{"error": ...}`` on failure)."""
    try:
        args = parse_args(argv)
    except SystemExit as exc:
        return 3 if exc.code else 0
    if args.device_info:
        print(json.dumps(device_info()))
        return 0
    runtime = runtime_for(args.model)
    module, hint = RUNTIMES[runtime]
    try:
        import numpy  # noqa: F401

        __import__(module)
    except ImportError as exc:
        print(json.dumps({"error": f"missing on device: {exc.name}; {hint}", "kind": "dependency"}))
        return 4
    missing = next((f for f in model_files(args.model) if not os.path.isfile(f)), None)
    if missing:
        print(json.dumps({"error": f"model file not found on device: {missing}", "kind": "load"}))
        return 2
    if args.feeds and not os.path.isfile(args.feeds):
        print(json.dumps({"error": f"feeds file not found on device: {args.feeds}", "kind": "run"}))
        return 1
    try:
        out = run_benchmark(args)
    except ModelLoadFailure as exc:
        print(json.dumps({"error": f"{runtime} cannot load {args.model}: {exc}", "kind": "load"}))
        return 2
    except Exception as exc:  # a run-time failure (bad input shapes, out of memory): report it as JSON too
        msg = str(exc).strip().splitlines()[0][:500] if str(exc).strip() else ""
        print(json.dumps({"error": f"running {args.model} failed: {type(exc).__name__}: {msg}", "kind": "run"}))
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
