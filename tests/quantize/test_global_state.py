"""Library calls leave process-wide state as they found it: logger levels and handlers, os.environ, matplotlib's backend."""

from __future__ import annotations

import logging
import os
import subprocess
import sys


def test_quiet_keeps_records_off_the_console_and_leaves_levels_and_files_alone(tmp_path):
    import io
    import sys

    from compress.quantize.graph import quiet

    lg = logging.getLogger("onnxruntime.quantization")
    child = logging.getLogger("onnxruntime.quantization.quant_utils")
    buffer = io.StringIO()
    sys_stderr, sys.stderr = sys.stderr, buffer
    console = logging.StreamHandler(sys.stderr)  # a console handler, as a notebook or basicConfig adds one
    log_file = logging.FileHandler(tmp_path / "log.txt")
    for h in (console, log_file):
        lg.addHandler(h)
    lg.setLevel(logging.INFO)
    try:
        with quiet("onnxruntime.quantization"):
            assert lg.level == logging.INFO  # the level is not touched
            lg.info("noise from the library")
            child.warning("noise from a child logger")
            lg.error("an error still shows")

        @quiet("onnxruntime.quantization")
        def call() -> None:
            lg.info("decorated noise")

        call()
        lg.info("after the block")
    finally:
        sys.stderr = sys_stderr
        for h in (console, log_file):
            lg.removeHandler(h)
        log_file.close()
        lg.setLevel(logging.NOTSET)
    shown = buffer.getvalue()
    assert "noise" not in shown and "an error still shows" in shown and "after the block" in shown
    written = (tmp_path / "log.txt").read_text()
    assert "noise from the library" in written and "noise from a child logger" in written  # the file keeps them
    assert not console.filters  # the filter went with the block


def test_importing_qat_sets_no_environment_variable():
    code = ("import os; import compress.quantize.qat as q; assert 'NNCF_EXTENSION_LOAD_TIMEOUT' not in os.environ\n"
            "with q.scoped_env(q.NNCF_TIMEOUT):\n    assert os.environ['NNCF_EXTENSION_LOAD_TIMEOUT'] == '0'\n"
            "assert 'NNCF_EXTENSION_LOAD_TIMEOUT' not in os.environ\n"
            "os.environ['NNCF_EXTENSION_LOAD_TIMEOUT'] = '180'\n"
            "with q.scoped_env(q.NNCF_TIMEOUT):\n    assert os.environ['NNCF_EXTENSION_LOAD_TIMEOUT'] == '180'\n")
    env = {k: v for k, v in os.environ.items() if k != "NNCF_EXTENSION_LOAD_TIMEOUT"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_report_plot_keeps_matplotlibs_backend(tmp_path):
    code = ("import matplotlib; matplotlib.use('svg')\n"
            "from benchmarks.report import plot_pareto\n"
            "rep = {'task': 'embedding', 'models': [{'name': 'a', 'target': 'local', 'latency_ms': {'p50': 2.0},"
            " 'retention': 0.98, 'size_mb': 3.0}, {'name': 'b', 'target': 'local', 'latency_ms': {'p50': 1.0},"
            " 'retention': 0.9, 'size_mb': 1.0}]}\n"
            f"out = plot_pareto(rep, __import__('pathlib').Path({str(tmp_path / 'p.png')!r}))\n"
            "assert out.read_bytes()[:8] == b'\\x89PNG\\r\\n\\x1a\\n'\n"
            "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
