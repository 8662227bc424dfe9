"""Target-aware search: choice and Pareto front on hand-made candidates; a tiny end-to-end run with branches."""

from __future__ import annotations

import json

import pytest

from compress.search.select import Candidate, choose, mark_front


def _c(name, p50, ret, size=10.0):
    return Candidate(name=name, path=f"{name}.onnx", depth=3, prune_ratio=0.0, precision="int8", size_mb=size,
                     p50_ms=p50, retention=ret)


def test_front_drops_dominated_candidates():
    cands = [_c("a", 1.0, 0.95), _c("b", 2.0, 0.99), _c("c", 2.5, 0.98), _c("d", 3.0, 1.0), _c("e", 1.0, 0.94)]
    front = mark_front(cands)
    assert [c.name for c in front] == ["a", "b", "d"]
    assert [c.on_front for c in cands] == [True, True, False, True, False]


def test_fastest_above_floor_wins_and_every_candidate_has_a_verdict():
    cands = [_c("fast-bad", 1.0, 0.90), _c("mid", 2.0, 0.975), _c("slow", 3.0, 0.99), _c("big", 1.5, 0.99, size=50)]
    choice = choose(cands, floor=0.97, max_size_mb=20)
    assert choice.meets_targets and choice.winner.name == "mid"
    verdicts = {c.name: c.verdict for c in cands}
    assert "under the floor" in verdicts["fast-bad"] and "over the 20 MB budget" in verdicts["big"]
    assert "slower (3.00 ms vs 2.00 ms)" in verdicts["slow"] and verdicts["mid"].startswith("winner")
    assert "next qualifying: slow" in choice.reason


def test_tie_margin_prefers_the_more_accurate_of_near_equal_speeds():
    def grid():
        return [_c("p60", 1.00, 0.975, size=9.2), _c("p50", 1.04, 0.990, size=9.7), _c("p50-v16k", 1.04, 0.990, size=5.9),
                _c("p00", 1.30, 1.000)]

    strict = choose(grid(), floor=0.97)
    assert strict.winner.name == "p60" and "fastest of 4" in strict.reason
    cands = grid()
    tied = choose(cands, floor=0.97, tie_margin=0.05)  # 1.04 ms is within 5 % of 1.00 ms; 1.30 is not
    assert tied.winner.name == "p50-v16k"  # most accurate of the tied, then the smaller file
    verdicts = {c.name: c.verdict for c in cands}
    assert "within 5%" in verdicts["p60"] and "less accurate (0.975 vs 0.990)" in verdicts["p60"]
    assert "within 5%" in verdicts["p50"] and "slower (1.30 ms vs 1.04 ms)" in verdicts["p00"]
    assert "most accurate of the 3 within 5% of the fastest p50" in tied.reason


def test_latency_budget_picks_most_accurate_that_fits():
    cands = [_c("a", 1.0, 0.95), _c("b", 1.8, 0.97), _c("c", 3.0, 0.99)]
    choice = choose(cands, floor=0.97, budget_ms=2.0)
    assert choice.winner.name == "b" and choice.meets_targets
    assert "over the 2 ms budget" in cands[2].verdict and "less accurate" in cands[0].verdict


def test_no_candidate_meets_floor_keeps_most_accurate_and_says_so():
    cands = [_c("a", 1.0, 0.90), _c("b", 2.0, 0.93), Candidate("broken", "x", 3, 0.0, "fp32", 1.0, None, None,
                                                               status="error")]
    choice = choose(cands, floor=0.97)
    assert not choice.meets_targets and choice.winner.name == "b" and "no candidate meets" in choice.reason
    assert cands[2].verdict == "not measured (error)"
    assert choose([cands[2]], floor=0.9).winner is None


def test_markdown_names_the_selection_split_and_shows_test_beside_it():
    from compress.search.report import TeacherSummary, to_markdown

    cands = [_c("a", 1.0, 0.98), _c("b", 2.0, 0.99)]
    cands[0].test_retention, cands[1].test_retention = 0.965, 0.985
    choice = choose(cands, 0.97)
    teacher = TeacherSummary(name="teacher", format="pytorch", metric="spearman", value=0.81, test_value=0.87,
                             p50_ms=20.0, size_mb=90.0)
    md = to_markdown(cands, choice, teacher, {"retention_floor": 0.97}, "cpu", "eval")
    assert "chosen by retention on the **eval** split" in md and "0.8100 on eval, 0.8700 on test" in md
    assert "| a | onnxruntime | 3 | 0% | int8 | 10.0 | – | 0.980 | 0.965 | 1.00 |" in md  # eval picks a; its test score is shown
    md_test = to_markdown(cands, choice, teacher, {"retention_floor": 0.97}, "cpu", "test")
    assert "Retention (test)" not in md_test and "| a | onnxruntime | 3 | 0% | int8 | 10.0 | – | 0.980 | 1.00 |" in md_test


def test_search_config_rejects_bad_grid():
    from compress.core.errors import ConfigError
    from compress.config import load_config

    base = ["teacher.model=x", "data.train=y"]
    with pytest.raises(ConfigError, match="search.prune_ratios"):
        load_config(None, [*base, "search.prune_ratios=[0.0, 1.0]"])
    with pytest.raises(ConfigError, match="differ by at least 0.01"):  # both would be branch d3-p50
        load_config(None, [*base, "search.prune_ratios=[0.5, 0.503]"])
    with pytest.raises(ConfigError, match="search.vocab_sizes"):
        load_config(None, [*base, "search.vocab_sizes=[16000, 16000]"])
    with pytest.raises(ConfigError, match="search.targets.device"):
        load_config(None, [*base, "search.targets.device=tpu"])
    with pytest.raises(ConfigError, match="search.depths"):
        load_config(None, [*base, "search.depths=[2, 2]"])


def test_branch_names_keep_vocabulary_sizes_apart():
    from compress.search.branches import branch_name
    from compress.search.config import PrunePoint

    assert branch_name(3, 0.5, 16000) == "d3-p50-v16k" and branch_name(3, 0.5) == "d3-p50"
    names = {branch_name(3, 0.5, v) for v in (100, 150, 16000, 16400, 16)}
    assert len(names) == 5, names  # 100 and 150 were both v0.1k, 16000 and 16400 both v16k
    assert branch_name(3, PrunePoint(heads=0.2, ffn=0.7)) == "d3-h20-f70"
    assert branch_name(3, PrunePoint(heads=0.3, ffn=0.3), 16000) == "d3-p30-v16k"  # same as the plain ratio


def test_branches_fuse_for_the_target_device():
    from compress.config import load_config
    from compress.search.branches import branch_config

    base = ["teacher.model=x", "data.train=y", "stages=[distill, search]"]
    fusions = {(device, given): branch_config(load_config(None, [*base, f"search.targets.device={device}", *given]),
                                              3, 0.3).quantize.slow_cpu_fusions
               for device in ("cpu", "cuda") for given in ((), ("quantize.slow_cpu_fusions=false",))}
    assert fusions == {("cpu", ()): False, ("cuda", ()): True,  # ORT's CUDA kernels for the fused ops are the fast ones
                       ("cpu", ("quantize.slow_cpu_fusions=false",)): False,
                       ("cuda", ("quantize.slow_cpu_fusions=false",)): False}


def test_prune_points_take_separate_head_and_ffn_shares():
    from compress.config import load_config
    from compress.core.errors import ConfigError
    from compress.search.config import PrunePoint

    base = ["teacher.model=x", "data.train=y"]
    cfg = load_config(None, [*base, "search.prune_ratios=[0.0, 0.4, {heads: 0.2, ffn: 0.7}]"])
    assert cfg.search.prune_points() == [PrunePoint(heads=0.0, ffn=0.0), PrunePoint(heads=0.4, ffn=0.4),
                                         PrunePoint(heads=0.2, ffn=0.7)]
    assert load_config(None, [*base, f"search.prune_ratios={json.dumps(cfg.search.model_dump()['prune_ratios'])}"]) \
        .search.prune_points() == cfg.search.prune_points()  # round trip through JSON
    with pytest.raises(ConfigError, match="differ by at least 0.01"):  # both would be branch d3-p40
        load_config(None, [*base, "search.prune_ratios=[0.4, {heads: 0.4, ffn: 0.4}]"])
    with pytest.raises(ConfigError, match="search.prune_ratios"):
        load_config(None, [*base, "search.prune_ratios=[{heads: 0.2, ffn: 1.0}]"])
    with pytest.raises(ConfigError, match="search.prune_ratios"):
        load_config(None, [*base, "search.prune_ratios=[{heads: 0.2}]"])
    c = Candidate("x", "x.onnx", 3, 0.7, "int8", 5.0, 1.0, 0.98, head_ratio=0.2)
    assert c.pruned == "heads 20%, FFN 70%" and _c("y", 1.0, 0.98).pruned == "0%"


def _tiny_search_run(tiny_model_dir, shared_data, tmp_path, **sections) -> dict:
    """A search run on a tiny embedding teacher distilled to 1 layer on 64 STS-B rows; ``sections`` add the rest."""
    from tests.tiny import sts_run_config

    return sts_run_config(tiny_model_dir("bert", "embedding"), shared_data, tmp_path,
                          **{"prune": {"round_to": 4}, **sections})


def test_pipeline_search_then_bench_with_optimum_baseline(tiny_model_dir, shared_data, tmp_path):
    """distill -> search (2 prune ratios x fp32/int8) -> bench with the Optimum baseline; rerun reuses all."""
    from compress.config import RunConfig
    from compress.run.pipeline import run_pipeline

    cfg = RunConfig.model_validate(_tiny_search_run(
        tiny_model_dir, shared_data, tmp_path, name="s", stages=["distill", "search", "bench"],
        search={"depths": [1, 2], "prune_ratios": [0.0, 0.5], "quantize": ["dynamic"], "max_eval_samples": 24,
                "targets": {"retention_floor": 0.5}},
        quantize={"guard": {"eval_samples": 8, "fallbacks": False}, "latency": {"runs": 3, "warmup": 0}},
        bench={"warmup": 1, "min_runs": 3, "min_seconds": 0.0, "threads": 1, "max_eval_samples": 24,
               "baselines": ["optimum-int8-dynamic"]}))
    out = run_pipeline(cfg)
    # the run ends by packaging the search winner into final/
    assert [o.status for o in out] == ["ran", "ran", "ran", "ran"] and out[-1].name == "package"
    assert json.loads((cfg.run_dir / "final" / "package.json").read_text())["chosen"]["origin"] == "search winner"
    search_dir = cfg.run_dir / "02-search"
    data = json.loads((search_dir / "candidates.json").read_text())
    names = sorted(c["name"] for c in data["candidates"])
    assert names == [f"d{d}-p{p}/student-{k}" for d in (1, 2) for p in ("00", "50") for k in ("fp32-opt", "int8-dynamic")]
    # depth 1 is the upstream student (no distill in its branches); depth 2 is distilled once inside the
    # search and seeds both of its branches
    assert sorted(p.name for p in (cfg.run_dir / "search").iterdir() if p.is_dir()) == [
        "d1-p00", "d1-p50", "d2-distill", "d2-p00", "d2-p50"]
    assert json.loads((cfg.run_dir / "search" / "d2-distill" / "01-distill" / "stage.json").read_text())[
        "metrics"]["student_layers"] == [0, 1]
    assert not list((cfg.run_dir / "search").glob("d*-p*/*-distill"))
    d2_pruned = json.loads((cfg.run_dir / "search" / "d2-p50" / "01-prune" / "model" / "config.json").read_text())
    assert d2_pruned["num_hidden_layers"] == 2
    assert all(c["p50_ms"] > 0 and c["retention"] is not None for c in data["candidates"])
    # the winner is chosen on the eval split; the test split's retention is reported beside it
    assert data["select_on"] == "eval" and (search_dir / "measurements_eval.json").is_file()
    assert all(c["test_retention"] is not None for c in data["candidates"])
    assert any(c["test_retention"] != c["retention"] for c in data["candidates"])
    assert "Retention (eval) | Retention (test)" in (search_dir / "search.md").read_text()
    assert data["winner"] in names and any(c["on_front"] for c in data["candidates"])
    assert (search_dir / "winner" / "model.onnx").is_file() and (search_dir / "search.md").is_file()
    assert json.loads((cfg.run_dir / "search" / "d1-p50" / "01-prune" / "stage.json").read_text())[
        "metrics"]["encoder_params_removed"] > 0.3
    report = json.loads((cfg.run_dir / "report.json").read_text())
    roles = {m["name"]: m["role"] for m in report["models"]}
    assert roles["optimum-int8-dynamic"] == "baseline" and roles["teacher"] == "teacher"
    assert any(n.startswith("search-winner") for n in roles)
    assert "Speed-up vs optimum-int8-dynamic" in (cfg.run_dir / "report.md").read_text()
    # an interrupted search keeps its finished branches: they are skipped when the stage runs again
    stamp = (cfg.run_dir / "search" / "d1-p50" / "01-prune" / "stage.json").stat().st_mtime_ns
    out = run_pipeline(cfg, force={"search"})
    assert [o.status for o in out][:3] == ["skipped", "ran", "ran"]
    assert (cfg.run_dir / "search" / "d1-p50" / "01-prune" / "stage.json").stat().st_mtime_ns == stamp


def test_search_prunes_heads_and_ffn_by_their_own_shares(tiny_model_dir, shared_data, tmp_path):
    """{heads: 0.5, ffn: 0.25}: the branch cuts 2 of 4 heads and 16 of 64 FFN neurons, and says so."""
    from compress.config import RunConfig
    from compress.run.pipeline import run_pipeline

    cfg = RunConfig.model_validate(_tiny_search_run(
        tiny_model_dir, shared_data, tmp_path, name="hf", stages=["distill", "search"],
        search={"prune_ratios": [{"heads": 0.5, "ffn": 0.25}], "quantize": [], "max_eval_samples": 16,
                "targets": {"retention_floor": 0.01}},
        bench={"warmup": 0, "min_runs": 2, "min_seconds": 0.0, "threads": 1}))
    run_pipeline(cfg)
    pruned = json.loads((cfg.run_dir / "search" / "d1-h50-f25" / "01-prune" / "model" / "config.json").read_text())
    assert pruned["intermediate_size"] == 48 and sum(map(len, pruned["pruned_heads"].values())) == 2
    data = json.loads((cfg.run_dir / "02-search" / "candidates.json").read_text())
    (cand,) = data["candidates"]
    assert cand["name"] == "d1-h50-f25/student-onnx-optimized" and cand["head_ratio"] == 0.5
    assert cand["prune_ratio"] == 0.25
    assert "| d1-h50-f25/student-onnx-optimized | onnxruntime | 1 | heads 50%, FFN 25% |" in (
        cfg.run_dir / "02-search" / "search.md").read_text()


def test_search_tries_vocabulary_sizes_after_pruning_once(tiny_model_dir, shared_data, tmp_path):
    """vocab_sizes [null, 100]: every (depth, ratio) also gets a trimmed branch, seeded with its untrimmed
    sibling's prune stage (pruned and recovered once), trimmed after pruning; its ONNX file has 100 rows."""
    import onnx

    from compress.config import RunConfig
    from compress.run.pipeline import run_pipeline

    cfg = RunConfig.model_validate(_tiny_search_run(
        tiny_model_dir, shared_data, tmp_path, name="v", stages=["distill", "search"],
        search={"prune_ratios": [0.0, 0.5], "vocab_sizes": [100, None], "quantize": ["dynamic"],
                "max_eval_samples": 24, "targets": {"retention_floor": 0.5}},
        quantize={"guard": {"eval_samples": 8}, "latency": {"runs": 3, "warmup": 0}}))
    run_pipeline(cfg)
    search = cfg.run_dir / "search"
    assert sorted(p.name for p in search.iterdir() if p.is_dir()) == ["d1-p00", "d1-p00-v100", "d1-p50", "d1-p50-v100"]
    assert sorted(p.name for p in (search / "d1-p50-v100").iterdir() if p.name[:2].isdigit()) == [
        "01-trim_vocab", "02-export", "03-quantize"]  # no second prune
    pruned = json.loads((search / "d1-p50" / "01-prune" / "model" / "config.json").read_text())
    trimmed = json.loads((search / "d1-p50-v100" / "01-trim_vocab" / "model" / "config.json").read_text())
    assert trimmed["intermediate_size"] == pruned["intermediate_size"] < 4 * pruned["hidden_size"]
    assert trimmed["vocab_size"] == 100 and pruned["vocab_size"] > 100
    data = json.loads((cfg.run_dir / "02-search" / "candidates.json").read_text())
    names = {c["name"]: c for c in data["candidates"]}
    assert {"d1-p50-v100/student-int8-dynamic", "d1-p00-v100/student-fp32-opt"} <= set(names)
    assert names["d1-p50-v100/student-int8-dynamic"]["size_mb"] < names["d1-p50/student-int8-dynamic"]["size_mb"]
    assert all(c["retention"] is not None for c in data["candidates"])
    fp32 = onnx.load(str(search / "d1-p50-v100" / "03-quantize" / "model.opt.onnx"))
    tables = {tuple(t.dims) for t in fp32.graph.initializer if len(t.dims) == 2}
    assert (100, pruned["hidden_size"]) in tables and (pruned["vocab_size"], pruned["hidden_size"]) not in tables


def test_byte_identical_branch_files_are_measured_once_and_named(tmp_path):
    """Two vocabulary sizes above what the text uses trim to one model: its file is measured once, and the
    repeat is a row that says which candidate it repeats (and is never the winner)."""
    from compress.search.branches import Branch
    from compress.search.stage import candidates_from, distinct_files
    from compress.run.stages import Variant

    files = {}
    for name, content in [("v24k", b"same model"), ("v16k", b"same model"), ("full", b"other model")]:
        files[name] = tmp_path / f"{name}.onnx"
        files[name].write_bytes(content)
    branches = [Branch(3, 0.0, f"d3-p00-{n}", [(Variant("student-int8-dynamic", "onnx", "m.onnx", "int8"), files[n])])
                for n in ("v24k", "v16k", "full")]
    distinct, same_as = distinct_files(branches)
    assert list(distinct) == ["d3-p00-v24k/student-int8-dynamic", "d3-p00-full/student-int8-dynamic"]
    assert same_as == {"d3-p00-v16k/student-int8-dynamic": "d3-p00-v24k/student-int8-dynamic"}
    report = {"models": [{"name": n, "role": "variant", "format": "onnx", "target": "local", "status": "ok",
                          "path": str(p), "precision": "int8",
                          "size_mb": 5.0 + i, "latency_ms": {"p50": 1.0 + i}, "retention": 0.99,
                          "quality": {"value": 0.8}} for i, (n, (_, _, p)) in enumerate(distinct.items())]}
    where = {n: b for n, (b, _, _) in distinct.items()}
    cands = candidates_from(report, where, "local", None, same_as, branches)
    repeat = next(c for c in cands if c.name == "d3-p00-v16k/student-int8-dynamic")
    assert repeat.status == "same file as d3-p00-v24k/student-int8-dynamic" and not repeat.measured
    assert repeat.size_mb == 5.0
    choice = choose(cands, floor=0.97)
    assert choice.winner.name == "d3-p00-v24k/student-int8-dynamic"
    assert repeat.verdict == "not measured (same file as d3-p00-v24k/student-int8-dynamic)"


def test_search_offers_fp16_files_beside_int8(tiny_model_dir, shared_data, tmp_path):
    """``search.quantize: [dynamic, fp16]``: every branch yields an fp16 ONNX candidate, measured like the others."""
    from compress.config import RunConfig
    from compress.run.pipeline import run_pipeline

    cfg = RunConfig.model_validate(_tiny_search_run(
        tiny_model_dir, shared_data, tmp_path, name="f16", stages=["distill", "search"],
        search={"prune_ratios": [0.0], "quantize": ["dynamic", "fp16"], "max_eval_samples": 16,
                "targets": {"retention_floor": 0.01}},
        quantize={"guard": {"eval_samples": 8, "fallbacks": False}, "latency": {"runs": 3, "warmup": 0}},
        bench={"warmup": 0, "min_runs": 2, "min_seconds": 0.0, "threads": 1}))
    run_pipeline(cfg)
    data = json.loads((cfg.run_dir / "02-search" / "candidates.json").read_text())
    by_name = {c["name"]: c for c in data["candidates"]}
    assert sorted(by_name) == ["d1-p00/student-fp16", "d1-p00/student-fp32-opt", "d1-p00/student-int8-dynamic"]
    fp16 = by_name["d1-p00/student-fp16"]
    assert fp16["p50_ms"] > 0 and fp16["retention"] > 0.9  # a float16 copy of the fp32 graph, not a broken file
    assert fp16["size_mb"] < 0.6 * by_name["d1-p00/student-fp32-opt"]["size_mb"]
