"""Config schema: strict keys with nearest-key hints, overrides, JSON round trip of every section."""

from pathlib import Path

import pytest
import yaml

from compress.config import RunConfig, load_config, parse_override
from compress.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
BASE = ["teacher.model=packaged:minilm-l6", "data.train=builtin:pydoc"]


def test_typo_names_key_path_and_nearest_valid_key():
    with pytest.raises(ConfigError) as exc:
        load_config(None, BASE + ["distill.epocs=2"])
    msg = str(exc.value)
    assert "distill.epocs" in msg and "did you mean 'distill.epochs'" in msg


def test_wrong_type_names_the_field():
    with pytest.raises(ConfigError, match=r"'distill.batch_size'"):
        load_config(None, BASE + ["distill.batch_size=many"])


def test_offending_value_is_named_once():
    with pytest.raises(ConfigError) as exc:  # the validator's message names the value itself
        load_config(None, BASE + ["search.prune_ratios=[0.5, 0.503]"])
    assert str(exc.value).count("[0.5, 0.503]") == 1
    with pytest.raises(ConfigError) as exc:  # a type error's message does not: the loader adds it
        load_config(None, BASE + ["distill.batch_size=many"])
    assert "(got 'many')" in str(exc.value)


def test_unknown_stage_suggests_nearest():
    with pytest.raises(ConfigError, match="did you mean 'distill'"):
        load_config(None, BASE + ["stages=[distil]"])


def test_missing_required_section():
    with pytest.raises(ConfigError, match="'teacher' is required"):
        load_config(None, ["data.train=x"])


def test_override_parses_yaml_values():
    assert parse_override("distill.epochs=2") == (["distill", "epochs"], 2)
    assert parse_override("student.layers=[0, 5]") == (["student", "layers"], [0, 5])
    cfg = load_config(None, BASE + ["distill.learning_rate=3e-5", "student.layers=[0,5]"])
    assert cfg.distill.learning_rate == pytest.approx(3e-5)
    assert cfg.student.layers == [0, 5]


def test_every_section_round_trips_through_json():
    cfg = load_config(ROOT / "configs" / "default.yaml")
    again = RunConfig.model_validate_json(cfg.model_dump_json())
    assert again == cfg
    for name in RunConfig.model_fields:
        section = getattr(cfg, name)
        if hasattr(section, "model_dump_json"):
            assert type(section).model_validate_json(section.model_dump_json()) == section


def test_section_hash_changes_only_with_its_sections():
    a = load_config(None, BASE)
    b = load_config(None, BASE + ["bench.min_runs=7"])
    c = load_config(None, BASE + ["distill.epochs=3"])
    sections = ("teacher", "data", "distill")
    assert a.section_hash(sections) == b.section_hash(sections)
    assert a.section_hash(sections) != c.section_hash(sections)


def test_search_hash_ignores_the_bench_fields_it_sets_itself():
    """Adding a baseline or a sweep size re-runs bench, not the search's measurement of every candidate; the
    timing settings the search does read still count."""
    from compress.run.pipeline import stage_hash

    base = load_config(None, BASE)
    same = [load_config(None, BASE + [o]) for o in ("bench.baselines=[optimum-int8-dynamic]", "bench.sweep_batch_sizes=[32]",
                                                    "bench.batch_size=8", "bench.max_eval_samples=99",
                                                    "bench.session_memory=false")]
    assert {stage_hash(c, "search", "up") for c in same} == {stage_hash(base, "search", "up")}
    assert stage_hash(load_config(None, BASE + ["bench.min_runs=7"]), "search", "up") != stage_hash(base, "search", "up")
    assert stage_hash(same[0], "bench", "up") != stage_hash(base, "bench", "up")


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_validates(path):
    cfg = load_config(path)
    assert cfg.stages, f"{path.name} has no stages"
    assert yaml.safe_load(path.read_text())["name"] == cfg.name


def test_override_indexes_into_lists():
    cfg = load_config(None, BASE + ["data.unlabeled=[{source: a.txt}]", "data.unlabeled.0.limit=5"])
    assert cfg.data.unlabeled[0].limit == 5
    with pytest.raises(ConfigError, match="not an index"):
        load_config(None, BASE + ["data.unlabeled=[]", "data.unlabeled.0.limit=5"])


def test_every_loss_mix_needs_a_positive_weight():
    from pydantic import ValidationError

    from compress.distill.config import DistillConfig, LossWeights
    from compress.prune.config import RecoveryConfig

    with pytest.raises(ValidationError, match="every distill.loss weight is 0"):
        DistillConfig(loss=LossWeights())
    with pytest.raises(ValidationError, match="every prune.recovery.loss weight is 0"):
        RecoveryConfig(loss=LossWeights())
    assert RecoveryConfig(loss=None).loss is None and DistillConfig(loss=LossWeights(kl=1.0)).loss.kl == 1.0


def test_duplicate_yaml_keys_are_named_at_every_depth(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("teacher: {model: x}\ndata:\n  train: a.tsv\n  eval: b.tsv\n  train: c.tsv\n")
    with pytest.raises(ConfigError, match=r"key 'train' is given twice \(lines 3 and 5\)"):
        load_config(path)
    path.write_text("teacher: {model: x}\ndata: {train: a.tsv}\nstages: [distill]\n")
    assert load_config(path).data.train == "a.tsv"  # a list or a flow mapping without repeats loads as before


def test_retention_floors_lie_in_zero_to_one():
    for key in ("search.targets.retention_floor", "quantize.guard.retention_floor"):
        assert load_config(None, BASE + [f"{key}=1"]) is not None
        for bad in ("0", "-0.1", "1.01"):
            with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
                load_config(None, BASE + [f"{key}={bad}"])


def test_seed_bounds_are_numpys():
    import numpy as np

    top = load_config(None, BASE + [f"seed={2**32 - 1}"]).seed
    np.random.default_rng(top)
    np.random.seed(top)  # the legacy API refuses 2**32 and negatives: the config refuses them first
    for bad in (-1, 2**32):
        with pytest.raises(ConfigError, match="'seed'"):
            load_config(None, BASE + [f"seed={bad}"])
