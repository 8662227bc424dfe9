"""`edgepress bench headline`: issue 17's targets checked on finished runs (benchmarks.headline)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def headline_cmd(
    runs: list[Path] = typer.Argument(..., help="finished run folders (runs/NAME) holding a search winner's report.json"),
    out: Optional[Path] = typer.Option(None, help="also write the tables as Markdown to this file"),
) -> None:
    """Issue 17's headline check of finished runs: the search winner against the teacher, Optimum INT8 and the
    teacher as ORT fp32 (size, p50, throughput, session memory, retention), each target marked met or not."""
    from benchmarks.headline import headline, to_markdown

    md = to_markdown([headline(r) for r in runs])
    typer.echo(md)
    if out is not None:
        out.write_text(md)
