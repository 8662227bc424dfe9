"""What the console says, through the real entry point ``compress.cli.main.main``: where a run's result is, each stage's
headline number, retention in one unit, help text that reads as its prose."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from compress.cli.main import main


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, str]:
    """`edgepress run` on a tiny sentence-transformers teacher: distill -> export -> quantize -> bench -> final/."""
    from tests.compress.test_package import make_st_teacher

    root = tmp_path_factory.mktemp("console")
    teacher = make_st_teacher(root / "tiny-st-teacher", pooling="mean")
    config = root / "tiny.yaml"
    config.write_text(f"""name: tiny
output_dir: {root / 'runs'}
stages: [distill, export, quantize, bench]
teacher: {{model: {teacher}}}
data: {{train: 'builtin:pydoc', max_train_samples: 200, max_eval_samples: 40}}
student: {{num_layers: 1}}
distill: {{max_steps: 3, batch_size: 8}}
quantize: {{guard: {{eval_samples: 32}}}}
bench: {{min_runs: 3, min_seconds: 0, warmup: 1, max_eval_samples: 40}}
""")
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        main(["run", str(config)])
    return root / "runs" / "tiny", err.getvalue()


def test_run_ends_by_naming_final_report_and_plot(tiny_run):
    run_dir, err = tiny_run
    last = err.strip().splitlines()[-3:]
    assert last == [f"result: {run_dir / 'final'}/ (bundle/, model/, onnx/)", f"report: {run_dir / 'report.md'}",
                    f"plot: {run_dir / 'pareto.png'}"]
    assert (run_dir / "final" / "model").is_dir() and (run_dir / "pareto.png").stat().st_size > 1000


def test_stage_table_shows_quantize_and_bench_headlines(tiny_run):
    run_dir, err = tiny_run
    rows = " ".join(line.replace("│", " ") for line in err.splitlines())
    rows = re.sub(r"\s+", " ", rows)
    quantize = re.search(r"quantize ran [\d.]+ (.*?) bench ran", rows).group(1)
    assert re.search(r"retention (of fp32: \S+ )?[\d.]+ %", quantize), quantize  # the INT8 pick, or why not
    bench = re.search(r"bench ran [\d.]+ best speed-up ([\d.]+)x vs the teacher: (\S+)", rows)
    assert bench is not None and float(bench.group(1)) > 0, rows
    assert bench.group(2) in {"student-pytorch", "student-onnx", "student-int8-dynamic"}


def test_retention_is_a_percentage_on_the_console_and_in_report_md(tiny_run):
    import json

    run_dir, err = tiny_run
    report = json.loads((run_dir / "report.json").read_text())
    fractions = [m["retention"] for m in report["models"]]
    assert all(0.5 < f <= 1.01 for f in fractions)  # JSON keeps fractions
    assert "(teacher: tiny-st-teacher; metric: fidelity_cosine)" in re.sub(r"\s+", " ", err)
    table = err[err.index("┃ variant"):]
    shown = re.findall(r"(\d+\.\d) %", table)
    assert len(shown) == len(fractions) and all(abs(float(s) - 100 * f) < 0.051 for s, f in zip(shown, fractions))
    md = (run_dir / "report.md").read_text()
    ratios = md[md.index("## Ratios (local)"):].splitlines()[4:]
    names = [row.split(" | ")[1] for row in ratios if row.startswith("| local")]
    assert len(names) == 3 and len(set(names)) == 3, names  # distill's PyTorch and export's ONNX student apart
    assert all(re.search(r"\| \d+\.\d %", row) for row in ratios if row.startswith("| local"))
    assert "Teacher: `tiny-st-teacher`" in md and "| tiny-st-teacher \\[d2-" in md


def _help(capsys, monkeypatch, *argv: str) -> str:
    monkeypatch.setenv("COLUMNS", "80")
    main([*argv, "--help"])  # returns (exit code 0) after printing the help
    return capsys.readouterr().out


def _prose_lines(text: str) -> list[str]:
    """The help's text lines, panel borders and panel titles left out."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith(("╭", "╰"))]
    return [line.strip(" │") for line in lines if line.strip(" │")]


@pytest.mark.parametrize("argv,usage", [(["run"], "Usage: edgepress run [OPTIONS] CONFIG"),
                                        (["validate"], "Usage: edgepress validate [OPTIONS] CONFIG"),
                                        (["export"], "Usage: edgepress export [OPTIONS] MODEL OUT"),
                                        (["bench", "run"], "Usage: edgepress bench run [OPTIONS] MODELS...")])
def test_help_names_arguments_as_the_prose_and_flags_without_types(capsys, monkeypatch, argv, usage):
    text = _help(capsys, monkeypatch, *argv)
    assert usage in text and "{" not in text.split("\n\n")[0]
    assert "<bool>" not in text
    flag = next(line for line in text.splitlines() if "--help" in line)
    assert flag.split("--help")[1].split()[:3] == ["Show", "this", "message"]  # no type between flag and help


@pytest.mark.parametrize("argv", [["bench"], ["bench", "run"]])
def test_help_prose_has_no_one_word_lines_at_80_columns(capsys, monkeypatch, argv):
    text = _help(capsys, monkeypatch, *argv)
    panels = text.index("╭")
    prose = _prose_lines(text[:panels])  # the description above the panels
    assert len(prose) >= 2 and all(len(line.split()) > 1 for line in prose), prose
    if argv == ["bench"]:  # the commands panel: each description wraps at the width, not at docstring breaks
        described = [line.split(None, 1) for line in _prose_lines(text[panels:])]
        assert all(len(words) > 1 and len(words[-1].split()) > 1 for words in described), described


def test_bench_run_option_help_keeps_a_readable_column_at_80_columns(capsys, monkeypatch):
    """Every option panel of `bench run --help` leaves its help text a column wide enough for phrases: at most a few
    of its wrapped lines hold a single word (the --no-X switches sit in a panel of their own)."""
    text = _help(capsys, monkeypatch, "bench", "run")
    for panel in text.split("╭")[1:]:
        rows = [line.strip("│ ").strip() for line in panel.splitlines()[1:] if line.startswith("│")]
        single = [r for r in rows if len(r.split()) == 1 and not r.startswith(("[", "-", "(bench.", "bench."))]
        assert len(single) <= 3, (panel.splitlines()[0], single)


def test_unwrap_joins_docstring_lines_and_keeps_paragraphs():
    from compress.cli.help import unwrap

    text = "Exit code 1 when any model failed, unless --allow-partial; the report is\n    written either way.\n\n" \
           "\bkept\nas is"
    assert unwrap(text) == "Exit code 1 when any model failed, unless --allow-partial; the report is written either " \
                           "way.\n\n\bkept\nas is"
    assert unwrap(None) is None and unwrap("") == ""


def test_stage_headlines_from_stage_metrics():
    from compress.cli.main import _stage_headline
    from tests.quantize.sample_report import method_result, sample_report

    quantize = sample_report({"dynamic": method_result("dynamic", 0.98149, 21.7)}, "dynamic")
    assert _stage_headline("quantize", quantize) == ("student-int8-dynamic: retention 98.1 % of fp32, "
                                                      "21.7 MiB (fp32 86.2 MiB)")
    kept = sample_report({"dynamic": method_result("dynamic", 0.95, 21.7, meets_floor=False)}, None)
    assert _stage_headline("quantize", kept) == ("kept fp32: no INT8 variant both met the retention floor and ran "
                                                  "faster than fp32 on this CPU (retention of fp32: dynamic 95.0 %)")
    bench = {"metric": "spearman",
             "teacher": {"role": "teacher", "status": "ok", "p50_ms": 12.0, "retention": 1.0},
             "optimum-int8-dynamic": {"role": "baseline", "status": "ok", "p50_ms": 2.0, "retention": 0.99},
             "student-onnx": {"role": "variant", "status": "ok", "p50_ms": 4.0, "retention": 0.99},
             "student-int8-dynamic": {"role": "variant", "status": "ok", "p50_ms": 3.0, "retention": 0.9751},
             "broken": {"role": "variant", "status": "error", "p50_ms": None}}
    assert _stage_headline("bench", bench) == ("best speed-up 4.00x vs the teacher: student-int8-dynamic "
                                               "(p50 3.00 ms vs 12.00 ms, retention 97.5 %)")
    assert _stage_headline("trim_vocab", {"retention": 0.9912, "size_mb": 3.5}) == "retention=99.1 %, size_mb=3.5"


@pytest.mark.parametrize("typer_type,name", [("<int range>", "INT"), ("<float range>", "FLOAT"), ("<str>", "TEXT"),
                                             ("<list[str]>", "TEXT"), ("<path>", "PATH"), ("<cpu|cuda>", "cpu|cuda")])
def test_option_values_are_named_briefly(typer_type, name):
    from compress.cli.help import _value_name

    assert _value_name(typer_type) == name


def test_readme_quick_start_shows_where_a_run_put_its_result():
    """README's quick start quotes the end of a real default run: the lines naming final/, report.md, pareto.png."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    quick = readme[:readme.index("## Using the result")]
    block = re.search(r"```text\n(.*?)```", quick, re.S).group(1)
    last = block.strip().splitlines()[-3:]
    assert re.fullmatch(r"result: \S+/default/final/ \(bundle/, model/, onnx/\)", last[0]), last
    assert re.fullmatch(r"report: \S+/default/report\.md", last[1]) and re.fullmatch(r"plot: \S+/default/pareto\.png",
                                                                                  last[2]), last
    assert re.search(r"quantize .* retention [\d.]+ % of fp32", block) and re.search(r"best speed-up [\d.]+x", block)


def test_run_start_line_names_the_following_package_stage_and_keeps_markup_literal(tmp_path, capsys):
    """The first line shows every stage that will run (package follows export) and prints a run folder holding
    console markup as written."""
    from compress.cli.main import main

    out = tmp_path / "[bold]runs"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: t\noutput_dir: '{out}'\nstages: [distill, export]\nteacher: {{model: '{tmp_path / 'none'}'}}\n"
                   "data: {train: 'builtin:pydoc'}\n")
    with pytest.raises(SystemExit):
        main(["run", str(cfg)])
    err = capsys.readouterr().err
    first = "".join(err.split("error:")[0].split())  # the start line, as wrapped by the console, without spaces
    assert "".join(f"{out}/t".split()) in first, err
    assert "distill->export->package" in first, err
