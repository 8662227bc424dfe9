"""compress.core.console.capture_logs keeps third-party logging off the console for a run and restores it after."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# optimum's logger is configured (its stderr handler added) only on the first get_logger() call, here inside
# the run: without the preload the warning would reach stderr through that handler
CODE = """
import sys
from compress.core.console import capture_logs
with capture_logs(sys.argv[1]):
    from optimum.utils import logging as optimum_logging
    optimum_logging.get_logger("optimum.exporters").warning("optimum noise during the run")
optimum_logging.get_logger("optimum.exporters").warning("optimum after the run")
"""


def test_optimums_own_stderr_handler_stays_off_the_console_during_a_run(tmp_path):
    log = tmp_path / "log.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", CODE, str(log)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "optimum noise during the run" not in proc.stderr and "optimum noise during the run" in log.read_text()
    assert "optimum after the run" in proc.stderr  # optimum's own handler is back once the run ends


# a native library writing to file descriptor 2 directly (os.write stands in for ExecuTorch's C++ cpuinfo probe)
NATIVE = """
import os, sys
from compress.core.console import capture_logs, native_stderr
with capture_logs(sys.argv[1]):
    with native_stderr("executorch"):
        os.write(2, b"[cpuinfo_utils.cpp:100] Reading file /sys/devices/soc0/image_version\\n")
    os.write(2, b"after the native call\\n")
"""


def test_native_lines_on_stderr_go_to_the_runs_log(tmp_path):
    log = tmp_path / "log.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", NATIVE, str(log)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "cpuinfo_utils" not in proc.stderr and "executorch: [cpuinfo_utils.cpp:100] Reading file" in log.read_text()
    assert "after the native call" in proc.stderr  # fd 2 is the console again after the block
