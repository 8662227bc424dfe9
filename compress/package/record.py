"""``final/package.json``: what the package stage built (the chosen model, every file's name, the bundle, the runtime
folders, parity, storage), typed (:class:`PackageRecord`) and checked against ``package.schema.json`` when written
and when read."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from compress.core.errors import EdgepressError

SCHEMA_FILE = Path(__file__).with_name("package.schema.json")
RECORD_FILE = "package.json"


@dataclass
class ChosenModel:
    """The model final/ ships, paths relative to the run folder (compress.package.choice.Choice.to_dict)."""

    model_dir: str
    onnx: str
    precision: str
    origin: str
    name: str
    runtime: str
    file: str | None


@dataclass
class TeacherRef:
    """The teacher as the card names it: its reference, hub id and license when known."""

    model: str
    hub_id: str | None
    license: str | None


@dataclass
class BundleSummary:
    """The app bundle's model files and its size on disk (MB)."""

    models: list[str]
    size_mb: float


@dataclass
class RuntimeFolder:
    """One ``final/<format>/`` folder: the file an app loads, its precision, the runtime and why it is there."""

    folder: str
    file: str
    precision: str
    runtime_name: str
    chosen_by: str


@dataclass
class Parity:
    """A written file against PyTorch: largest absolute difference and lowest cosine on the check batches (None where
    the file was not run here: Core ML predicts only on Apple devices)."""

    max_abs_diff: float | None
    min_cosine: float | None


@dataclass
class PackageRecord:
    """``final/package.json``, typed."""

    key: str
    chosen: ChosenModel
    interface: dict[str, Any]  # compress.model.interface.ModelInterface.to_dict, source = the teacher's reference
    teacher: TeacherRef
    recipe: dict[str, Any]  # what the card's tags and recipe say: distilled / pruned / trimmed, shapes
    files: dict[str, str]  # a name for each file (pytorch, onnx_fp32, onnx_int8, st_onnx, <format>) -> its path
    bundle: BundleSummary
    runtimes: dict[str, RuntimeFolder]
    parity: dict[str, Parity]
    seconds: float
    storage: dict[str, Any] = field(default_factory=dict)  # hard links, copies, bytes named / stored

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = RECORD_FILE) -> "PackageRecord":
        """The record from its JSON, checked against package.schema.json first (one line naming the field)."""
        validate_record(data, where)
        return cls(**{**data, "chosen": ChosenModel(**data["chosen"]), "teacher": TeacherRef(**data["teacher"]),
                      "bundle": BundleSummary(**data["bundle"]),
                      "runtimes": {k: RuntimeFolder(**v) for k, v in data["runtimes"].items()},
                      "parity": {k: Parity(**v) for k, v in data["parity"].items()}})

    @classmethod
    def read(cls, final_dir: Path) -> "PackageRecord":
        """``final_dir/package.json``; a missing or damaged one is one line naming it and the command to rerun."""
        path = Path(final_dir) / RECORD_FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise EdgepressError(f"'{path}' cannot be read ({exc}): rerun `edgepress package` on the run folder") \
                from None
        return cls.from_dict(data, str(path))

    def write(self, final_dir: Path) -> Path:
        """Write ``final_dir/package.json`` (checked against the schema, written whole)."""
        from compress.core.fsio import write_text

        data = self.to_dict()
        validate_record(data)
        return write_text(Path(final_dir) / RECORD_FILE, json.dumps(data, indent=2, default=str) + "\n",
                          "the package record")


def validate_record(data: dict[str, Any], where: str = RECORD_FILE) -> None:
    """Raise EdgepressError naming the first place ``data`` breaks package.schema.json (the field and why)."""
    from compress.core.schemas import check_document

    check_document(data, json.loads(SCHEMA_FILE.read_text()), where, "compress/package/package.schema.json")
