"""Convert a saved ``torch.export`` program to LiteRT files; runs inside the converter's own virtualenv.

Run as ``python litert_convert.py JOB.json`` by ``export.litert`` (never imported by edgepress: this environment
has litert-torch and ai-edge-quantizer but not edgepress's dependencies). The job names the program (.pt2), its
input names, the static sequence lengths (one signature ``len_<L>`` each, batch 1: litert-torch 0.10 lowers only
static shapes for BERT-family graphs) and the output folder. It writes ``model.tflite`` (fp32),
``model_fp16.tflite`` (fp16 weights, ai-edge-quantizer's float casting) and ``model_int8.tflite``
(ai-edge-quantizer's dynamic-range recipe ``dynamic_wi8_afp32``: int8 weights, activations quantized at run time),
and prints a JSON summary on stdout.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def convert(job: dict) -> dict:
    """Write the three files the job asks for; return their paths and the conversion's timings."""
    import litert_torch
    import torch
    from ai_edge_quantizer import algorithm_manager, qtyping, quantizer, recipe

    out = Path(job["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    module = torch.export.load(job["program"]).module()
    started = time.perf_counter()
    converter = litert_torch.Converter()
    for length in job["lengths"]:
        sample = {n: torch.ones(1, length, dtype=torch.int64) for n in job["input_names"]}
        converter.signature(f"len_{length}", module, sample_kwargs=sample)
    fp32 = out / "model.tflite"
    converter.convert().export(str(fp32))
    seconds = {"convert": time.perf_counter() - started}
    files = {"fp32": str(fp32)}
    if job.get("fp16", True):
        started = time.perf_counter()
        q = quantizer.Quantizer(str(fp32))
        q.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=16,
                                 algorithm_key=algorithm_manager.AlgorithmName.FLOAT_CASTING)
        q.quantize(enable_progress_report=False).export_model(str(out / "model_fp16.tflite"), overwrite=True)
        files["fp16"] = str(out / "model_fp16.tflite")
        seconds["fp16"] = time.perf_counter() - started
    if job.get("int8", True):
        started = time.perf_counter()
        q = quantizer.Quantizer(str(fp32), recipe.dynamic_wi8_afp32())
        q.quantize(enable_progress_report=False).export_model(str(out / "model_int8.tflite"), overwrite=True)
        files["int8"] = str(out / "model_int8.tflite")
        seconds["int8"] = time.perf_counter() - started
    return {"files": files, "seconds": seconds, "litert_torch": litert_torch.__version__}


if __name__ == "__main__":
    summary = convert(json.loads(Path(sys.argv[1]).read_text()))
    print("EDGEPRESS_RESULT " + json.dumps(summary))
