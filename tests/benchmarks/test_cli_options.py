"""`edgepress bench run`'s measuring options are made from BenchConfig: same fields, defaults and checks."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from benchmarks.api import settings_from_config
from benchmarks.cli import app
from benchmarks.cli.options import CONFIG_OPTIONS, bench_config
from benchmarks.config import BenchConfig
from compress.core.errors import EdgepressError, UsageError


class Captured(Exception):
    """Raised by the fake harness: carries what the command would have measured with."""

    def __init__(self, settings, targets, remote) -> None:
        super().__init__("captured")
        self.settings, self.targets, self.remote = settings, targets, remote


@pytest.fixture
def capture(monkeypatch):
    """Replace the harness by one that raises Captured with its settings (nothing is measured)."""
    import benchmarks.harness

    def fake_benchmark(specs, task, settings, **kw):
        raise Captured(settings, kw.get("targets"), kw.get("remote_options"))

    monkeypatch.setattr(benchmarks.harness, "benchmark", fake_benchmark)


@pytest.fixture
def files(tmp_path):
    """A model file (never loaded), a tokenizer folder (never loaded) and a two-column eval file."""
    model = tmp_path / "m.onnx"
    model.write_bytes(b"onnx")
    tok = tmp_path / "tok"
    tok.mkdir()
    data = tmp_path / "d.tsv"
    data.write_text("sentence\tlabel\n" + "".join(f"text number {i}\t{i % 2}\n" for i in range(6)))
    return {"model": str(model), "tok": str(tok), "data": str(data), "out": str(tmp_path / "out")}


def _run_params() -> dict:
    """The click parameters of `bench run`, by name."""
    command = typer.main.get_command(app).commands["run"]
    return {p.name: p for p in command.params}


def _invoke(*args: str):
    return CliRunner().invoke(app, ["run", *args], env={"COLUMNS": "200"})


def test_every_bench_field_has_one_option_whose_default_is_the_config_default():
    params = _run_params()
    covered = [f for opt in CONFIG_OPTIONS for f in opt.fields]
    assert sorted(covered) == sorted(BenchConfig.model_fields)  # each field once
    for opt in CONFIG_OPTIONS:
        assert opt.flag in params[opt.name].opts, (opt.flag, params[opt.name].opts)
    from_defaults = bench_config({opt.name: params[opt.name].default for opt in CONFIG_OPTIONS})
    assert from_defaults == BenchConfig()
    assert params["realistic"].default is True and params["realistic"].secondary_opts == ["--no-realistic"]
    assert params["min_runs"].default == BenchConfig().min_runs and params["batch"].default == "1"


def test_defaults_measure_what_the_config_section_measures(capture, files):
    res = _invoke(files["model"], "--tokenizer", files["tok"], "--data", files["data"], "--out", files["out"])
    assert isinstance(res.exception, Captured), res.output
    assert res.exception.settings.to_dict() == settings_from_config(BenchConfig(), 128, 0).to_dict()
    assert res.exception.settings.realistic is True


def test_without_data_the_fixed_lengths_are_measured_and_a_typed_realistic_is_refused(capture, files):
    res = _invoke(files["model"], "--seq", "16,32", "--out", files["out"])
    assert isinstance(res.exception, Captured), res.output
    assert res.exception.settings.realistic is False and res.exception.settings.seq_lens == [16, 32]
    res = _invoke(files["model"], "--realistic", "--out", files["out"])
    assert isinstance(res.exception, EdgepressError) and "give --data" in str(res.exception)


def test_no_realistic_and_renamed_options_reach_the_settings(capture, files):
    res = _invoke(files["model"], "--tokenizer", files["tok"], "--data", files["data"], "--no-realistic",
                  "--batch", "2,4", "--seq", "8", "--min-runs", "3", "--threads", "1", "--identity", "/k",
                  "--target", "ssh://pi@host", "--target", "adb://serial", "--out", files["out"])
    assert isinstance(res.exception, Captured), res.output
    s = res.exception.settings
    assert (s.realistic, s.batch_sizes, s.seq_lens, s.min_runs, s.threads.intra_op) == (False, [2, 4], [8], 3, 1)
    assert res.exception.targets == ["ssh://pi@host", "adb://serial"] and res.exception.remote.identity == "/k"


def test_a_value_the_config_refuses_names_its_flag(capture, files):
    res = _invoke(files["model"], "--target", "pi@host", "--out", files["out"])
    assert isinstance(res.exception, UsageError) and "--target" in str(res.exception) and "ssh://" in str(res.exception)
    res = _invoke(files["model"], "--device", "abacus")
    assert isinstance(res.exception, EdgepressError) and "--device 'abacus'" in str(res.exception)
    res = _invoke(files["model"], "--baseline", "optimum-onnx", "--out", files["out"])
    assert isinstance(res.exception, UsageError) and "--teacher" in str(res.exception)
    res = _invoke(files["model"], "--baseline", "nope")
    assert isinstance(res.exception, EdgepressError) and "optimum-int8-dynamic" in str(res.exception)
    res = _invoke(files["model"], "--min-runs", "0")
    assert res.exit_code == 2 and "--min-runs" in res.output


def test_a_field_without_a_spelling_gets_an_option_named_after_it():
    from benchmarks.cli.options import SPELLINGS, _all_options

    without_warmup = tuple(o for o in SPELLINGS if o.fields != ("warmup",))
    made = [o for o in _all_options(without_warmup) if "warmup" in o.fields]
    assert [(o.flag, o.name) for o in made] == [("--warmup", "warmup")]


def test_help_lists_every_option_with_the_config_description():
    res = _invoke("--help")
    assert res.exit_code == 0, res.output
    for opt in CONFIG_OPTIONS:
        assert opt.flag in res.output
    assert "--no-realistic" in res.output and "Measuring (the config's bench section)" in res.output
    assert BenchConfig.model_fields["warmup"].description in res.output
    assert "(bench.max_eval_samples)" in res.output


def test_baseline_measures_optimums_export_of_the_teacher(tiny_model_dir, tmp_path):
    import json

    import onnx

    teacher = tiny_model_dir("bert", "embedding")
    out = tmp_path / "out"
    res = _invoke(str(teacher), "--teacher", str(teacher), "--baseline", "optimum-onnx", "--baseline", "optimum-onnx-fused",
                  "--seq", "8", "--warmup", "0", "--min-runs", "2", "--min-seconds", "0", "--threads", "1",
                  "--out", str(out))
    assert res.exit_code == 0, res.output
    entries = {m["name"]: m for m in json.loads((out / "report.json").read_text())["models"]}
    assert entries["optimum-onnx"]["role"] == "baseline" and entries["optimum-onnx"]["status"] == "ok"
    assert (out / "baselines" / "optimum-onnx" / "model.onnx").is_file()
    fused = out / "baselines" / "optimum-onnx-fused" / "model_optimized.onnx"
    ops = {n.op_type for n in onnx.load(str(fused)).graph.node}
    assert {"Attention", "SkipLayerNormalization"} <= ops  # optimum-cli onnxruntime optimize -O2's fusions
    assert entries["optimum-onnx-fused"]["status"] == "ok" and entries["optimum-onnx-fused"]["role"] == "baseline"
    assert entries["optimum-onnx-fused"]["sha256"] != entries["optimum-onnx"]["sha256"]
