"""The bundle manifest's contract for apps and for the package stage: a built bundle's manifest.json validates against
export/manifest.schema.json as the file users read, and BundleManifest (its typed view for readers outside export)
reads the same values, refusing a manifest that lacks a required field by naming it."""

from __future__ import annotations

import copy
import json

import pytest

from export.errors import ExportError


@pytest.fixture
def built_bundle(tiny_model_dir, tmp_path):
    """A bundle of a tiny classifier with its fp32 ONNX file; returns the folder."""
    from export.bundle import export_bundle

    export_bundle(tiny_model_dir("bert", "classification"), tmp_path / "bundle", "classification", formats=["onnx"])
    return tmp_path / "bundle"


def test_built_manifest_follows_the_schema_file_and_reads_typed(built_bundle):
    import jsonschema

    from export.bundle import SCHEMA_PATH, BundleManifest

    manifest = json.loads((built_bundle / "manifest.json").read_text())
    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text())).validate(manifest)  # the file as shipped
    typed = BundleManifest.load(built_bundle)
    assert typed.task == manifest["task"] == "classification"
    assert [(m.file, m.format, m.precision) for m in typed.models] == [("model.onnx", "onnx", "fp32")]
    assert typed.num_layers == manifest["num_layers"] == 2 and typed.hidden_size == manifest["hidden_size"] == 32
    assert typed.quantization is None and typed.quantization_method is None
    assert (built_bundle / typed.models[0].file).is_file()


def test_manifest_without_a_required_field_is_named(built_bundle):
    from export.bundle import BundleManifest, validate_manifest

    manifest = json.loads((built_bundle / "manifest.json").read_text())
    broken = copy.deepcopy(manifest)
    del broken["models"][0]["runtime"]
    with pytest.raises(ExportError, match="at 'models/0': 'runtime' is a required property"):
        validate_manifest(broken)
    with pytest.raises(ExportError, match="manifest.json lacks models/0/runtime"):
        BundleManifest.from_dict(broken)
    del broken["quantization"]
    with pytest.raises(ExportError, match="lacks quantization, models/0/runtime"):
        BundleManifest.from_dict(broken)
    quantized = {**manifest, "quantization": {"file": "model.int8.onnx", "precision": "int8", "quantized_ops": {},
                                              "method": "dynamic"}}
    assert BundleManifest.from_dict(quantized).quantization_method == "dynamic"
