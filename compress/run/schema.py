"""The JSON schema of ``stage.json`` (compress/run/stage.schema.json) and a check of a finished stage folder against it.

The pipeline does not validate what it writes (the record is assembled in one place, compress/run/pipeline.py); the
test suite checks every stage of tiny runs with ``validate_stage_record``, and users can check a run folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from compress.core.errors import EdgepressError
from compress.quantize.report import validate_report

SCHEMA_FILE = Path(__file__).with_name("stage.schema.json")


def load_schema() -> dict[str, Any]:
    """The JSON schema of stage.json."""
    return json.loads(SCHEMA_FILE.read_text())


def validate_stage_record(record: dict[str, Any], where: str = "stage.json") -> None:
    """Raise EdgepressError naming the first field of ``record`` that breaks stage.schema.json; a quantize
    stage's metrics are also checked against compress/quantize/report.schema.json."""
    from compress.core.schemas import check_document

    check_document(record, load_schema(), where, "compress/run/stage.schema.json")
    if record["stage"] == "quantize":
        try:
            validate_report(record["metrics"])
        except EdgepressError as exc:
            raise EdgepressError(f"{where} metrics: {exc}") from None


def validate_stage_dir(stage_dir: Path) -> dict[str, Any]:
    """Read ``stage_dir``/stage.json and validate it; returns the record."""
    path = Path(stage_dir) / "stage.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise EdgepressError(f"cannot read '{path}': {exc}") from None
    validate_stage_record(record, str(path))
    return record
