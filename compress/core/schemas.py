"""JSON-schema checks of the reports edgepress writes and reads (stage.json, the quantize and search reports,
package.json, the bundle manifest): one place that runs jsonschema and words its first complaint."""

from __future__ import annotations

from typing import Any


def schema_problem(document: Any, schema: dict[str, Any]) -> tuple[str, str] | None:
    """None when ``document`` matches ``schema``; else where it first breaks it and why, e.g.
    ``("models/0", "'file' is a required property (2 problem(s))")``."""
    from compress.core.errors import require

    jsonschema = require("jsonschema", "jsonschema>=4.0")
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(document), key=lambda e: list(e.path))
    if not errors:
        return None
    where = "/".join(str(p) for p in errors[0].absolute_path) or "(top level)"
    return where, f"{errors[0].message} ({len(errors)} problem(s))"


def check_document(document: Any, schema: dict[str, Any], what: str, schema_file: str) -> None:
    """Raise EdgepressError naming the first place ``document`` (called ``what``) breaks ``schema`` (read from
    ``schema_file``, the project path the message names): the field and why."""
    from compress.core.errors import EdgepressError

    problem = schema_problem(document, schema)
    if problem:
        raise EdgepressError(f"{what} does not match {schema_file} at {problem[0]}: {problem[1]}")


def required_field(data: Any, key: str, where: str, report: str, schema_file: str, rerun: str) -> Any:
    """``data[key]``; a missing key (a report from another version) is one EdgepressError naming the field, the schema
    that expects it and the stage to run again."""
    from compress.core.errors import EdgepressError

    if not isinstance(data, dict) or key not in data:
        raise EdgepressError(f"{report}: '{where}{key}' is missing (expected by {schema_file}); re-run the {rerun} stage")
    return data[key]
