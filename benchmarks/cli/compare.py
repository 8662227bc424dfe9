"""`edgepress bench compare`: several runs' report.json side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from compress.core.errors import EdgepressError


def compare_cmd(
    reports: list[str] = typer.Argument(..., help="report.json files, run folders (runs/NAME) or bench output folders"),
    label: list[str] = typer.Option([], help="column label per report (default: its folder name)"),
    out: Optional[Path] = typer.Option(None, help="also write the table as Markdown to this file"),
) -> None:
    """Put several runs' report.json side by side: one row per model (matched by the hash of its weights, named by
    depth-prune-vocabulary-precision), its metric, retention, p50 and size per run, failed models with their reason,
    and the change against the first report. Settings that differ between the reports are printed first."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from benchmarks.report import compare, compare_markdown, load_report

    from benchmarks.report import find_report

    for r in reports:
        p = find_report(r)
        with p.open("rb") as fh:
            head = fh.read(4096)
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if len(head) - exc.start > 4:  # not just a multi-byte character cut at the 4 KiB boundary
                raise EdgepressError(f"'{p}' is a binary file, not a report.json; give the report.json that "
                                     "`edgepress bench run` or `edgepress run` wrote (or its folder)") from None
        if b"\x00" in head:
            raise EdgepressError(f"'{p}' is a binary file, not a report.json; give the report.json that "
                                 "`edgepress bench run` or `edgepress run` wrote (or its folder)")
    loaded = [load_report(r) for r in reports]
    if label and len(label) != len(loaded):
        raise EdgepressError(f"--label given {len(label)} times for {len(loaded)} reports")
    notes, header, table_rows = compare(loaded, label or None)
    console = Console()
    for n in notes:
        console.print(f"[yellow]warning:[/] {escape(n)}", highlight=False)
    table = Table(title="edgepress bench compare")
    for h in header:
        table.add_column(escape(h))
    for r in table_rows:
        table.add_row(*map(escape, r))
    console.print(table)
    if out is not None:
        out.write_text(compare_markdown(header, table_rows, notes))
