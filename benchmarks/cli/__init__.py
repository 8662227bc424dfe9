"""`edgepress bench`: measure any model files (latency, memory, size, quality) and compare reports.

One module per subcommand (run, compare, headline); the bench-section options they share are in ``options``.
"""

from __future__ import annotations

import typer

from benchmarks.cli.compare import compare_cmd
from benchmarks.cli.headline import headline_cmd
from benchmarks.cli.run import run_cmd

app = typer.Typer(
    name="bench",
    help="Measure model files — PyTorch folders, ONNX/.ort, TorchScript .pt/.ptl — locally or on remote "
         "devices (ssh://user@host[:port], adb://serial), and write report.json/md/csv + a Pareto plot.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("run")(run_cmd)
app.command("compare")(compare_cmd)
app.command("headline")(headline_cmd)
