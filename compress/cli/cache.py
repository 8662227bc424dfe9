"""`edgepress cache`: check the disk caches that distillation runs share (a thin layer over
:func:`compress.distill.cache.verify_cache`)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(name="cache", help="Check the teacher-output cache distillation runs share (distill.cache_dir).",
                  no_args_is_help=True, add_completion=False)

SHOW_BAD = 20  # damaged records listed one per line; the rest are counted


@app.command()
def verify(
    path: Path = typer.Argument(..., help="distill.cache_dir, a run's .cache folder, or one teacher/<key> folder."),
) -> None:
    """Check every record of every shard (bounds and checksum); safe while runs use the cache.

    Exit 0 when clean (damaged records that have a sound copy count as clean: they are never served), 1 when a
    damaged record has no sound copy or a folder is unreadable."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from compress.distill.cache import verify_cache

    report = verify_cache(path)
    out = Console(soft_wrap=True)
    table = Table(title=f"teacher cache {report.path}")
    for col in ("teacher key", "shards", "records", "bad", "superseded", "torn bytes", "MB", "status"):
        table.add_column(col, justify="left" if col in ("teacher key", "status") else "right")
    for f in report.folders:
        status = f.problem or ("bad" if f.unrepaired else "ok")
        table.add_row(f.folder.name, str(f.shards), str(f.records), str(len(f.bad)),
                      str(len(f.bad) - len(f.unrepaired)), str(f.torn_bytes), f"{f.bytes / 2**20:.1f}", escape(status))
    out.print(table)
    for b in report.bad[:SHOW_BAD]:
        fix = "a sound copy is served" if b.superseded else "recomputed when a run meets it"
        out.print(f"  {b.shard} record {b.index}: key {b.key} failed its {b.reason} check ({fix})", highlight=False)
    if len(report.bad) > SHOW_BAD:
        out.print(f"  ... and {len(report.bad) - SHOW_BAD} more damaged records", highlight=False)
    if not report.clean:
        worst = ", ".join(str(f.folder) for f in report.folders if f.problem or f.unrepaired)
        out.print(f"[bold red]not clean[/]: damaged records are never served (runs recompute them and write sound "
                  f"copies); to start afresh, delete {escape(worst)}")
        raise typer.Exit(1)
    out.print(f"clean: {report.records} records checked"
              + (f" ({len(report.bad)} damaged ones superseded by sound copies)" if report.bad else ""))
