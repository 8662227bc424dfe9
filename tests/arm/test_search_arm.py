"""search.targets.device = ssh://… on the emulated aarch64 device: ARM INT8 recipe, winner from aarch64 measurements."""

from __future__ import annotations

import json


def test_search_on_emulated_aarch64_target(arm_device, tiny_model_dir, tmp_path):
    from compress.config import RunConfig
    from compress.run.pipeline import run_pipeline

    teacher = tiny_model_dir("bert", "embedding")
    target = arm_device.target
    opts = arm_device.options()
    cfg = RunConfig.model_validate({
        "name": "arm", "output_dir": str(tmp_path / "runs"), "task": "embedding", "stages": ["distill", "search"],
        "teacher": {"model": str(teacher), "max_length": 32},
        "data": {"train": "builtin:pydoc", "max_train_samples": 64, "max_eval_samples": 16},
        "student": {"num_layers": 1},
        "distill": {"max_steps": 2, "batch_size": 16},
        "search": {"prune_ratios": [0.0], "quantize": ["dynamic"], "max_eval_samples": 16,
                   "targets": {"retention_floor": 0.01, "device": target}},
        "quantize": {"guard": {"eval_samples": 8, "fallbacks": False}, "latency": {"runs": 3, "warmup": 0}},
        "bench": {"warmup": 1, "min_runs": 3, "min_seconds": 0.0, "threads": 1, "max_eval_samples": 16,
                  "known_hosts": opts.known_hosts, "ssh_identity": opts.identity, "remote_dir": opts.remote_dir},
    })
    out = run_pipeline(cfg)
    assert all(o.status == "ran" for o in out)
    search_dir = cfg.run_dir / "02-search"
    assert (search_dir / "stage.json").is_file()
    meta = json.loads((search_dir / "stage.json").read_text())["metrics"]
    # the device was probed once and the candidates were quantized with its (ARM dot-product) recipe
    assert meta["target_device"]["arch"] == "aarch64" and meta["target_device"]["emulated"] is True
    assert meta["int8_recipe"]["source"] == target and meta["int8_recipe"]["cpu"]["isa"] == "arm-dotprod"
    quant = json.loads(next((cfg.run_dir / "search" / "d1-p00").glob("*-quantize/stage.json")).read_text())["metrics"]
    assert quant["cpu"]["isa"] == "arm-dotprod" and quant["cpu"]["source"] == target
    assert quant["int8_recipe"]["chosen_for"] == f"arm-dotprod ({target})"
    assert quant["methods"]["dynamic"]["attempts"][0]["settings"]["reduce_range"] is False  # x86 AVX2 would use 7 bits

    # every candidate's latency is the aarch64 entry's, not this machine's
    measured = json.loads((search_dir / "measurements.json").read_text())
    assert measured["devices"][target]["arch"] == "aarch64"
    remote = {e["name"]: e for e in measured["models"] if e["target"] == target}
    local = {e["name"]: e for e in measured["models"] if e["target"] == "local"}
    data = json.loads((search_dir / "candidates.json").read_text())
    names = sorted(c["name"] for c in data["candidates"])
    assert names == ["d1-p00/student-fp32-opt", "d1-p00/student-int8-dynamic"]
    for c in data["candidates"]:
        assert remote[c["name"]]["status"] == "ok"
        assert c["p50_ms"] == remote[c["name"]]["latency_ms"]["p50"] != local[c["name"]]["latency_ms"]["p50"]
        assert remote[c["name"]]["parity"]["mean_cosine"] > 0.99
    assert remote["d1-p00/student-fp32-opt"]["parity"]["max_abs_diff"] <= 1e-4
    fastest = min(data["candidates"], key=lambda c: c["p50_ms"])
    assert data["winner"] == fastest["name"] and data["meets_targets"]
    md = (search_dir / "search.md").read_text()
    assert "Neoverse-N1" in md and "**emulated**" in md and "INT8 recipe chosen for arm-dotprod" in md
    assert data["teacher"]["p50_ms"] is None and data["teacher"]["p50_ms_local"] > 0  # no cross-device ratio
    rows = [ln for ln in md.splitlines() if ln.startswith("| d1-p00/")]
    assert len(rows) == 2 and all(ln.split("|")[-4].strip() == "–" for ln in rows)  # speed-up vs teacher
