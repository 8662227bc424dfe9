"""The stage contract: a stage receives only the config sections its hash covers.

Each stage runs on ``stage_view(cfg, spec)``, where every undeclared section is a stand-in that raises on any
use (so every real stage run in this suite checks its reads), and ``unused`` keys read at their defaults. Here,
for every stage and every config field: changing an undeclared field changes neither the stage's hash nor what
the stage can see; changing a declared one changes the hash.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from compress.config import RunConfig, load_config
from compress.run.pipeline import stage_hash
from compress.run.stages import META_FIELDS, STAGES, StageContractError, stage_view

BASE = {"teacher": {"model": "packaged:minilm-l6"}, "data": {"train": "builtin:pydoc"}}


def _cfg(**over: Any) -> RunConfig:
    return load_config(None, base={**BASE, **over})


def _mutated_section(section: BaseModel, skip: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """The section's fields with one scalar field (not in ``skip``) changed to another valid value (None if none can
    be)."""
    data = section.model_dump(mode="json")
    for name, value in data.items():
        if name in skip:
            continue
        candidates: list[Any] = []
        if isinstance(value, bool):
            candidates = [not value]
        elif isinstance(value, (int, float)):
            candidates = [value + 1, value * 2, value / 2, 0.5, 3]
        elif value is None:
            candidates = [3, 0.5, "x", True]
        for c in candidates:
            try:
                type(section).model_validate({**data, name: c})
            except ValidationError:
                continue
            if c != value:
                return {**data, name: c}
    return None


MUTATIONS: dict[str, Any] = {"task": "classification", "seed": 7}
UNUSED_MUTATIONS: dict[str, Any] = {  # another valid value for every key a stage declares unused
    "data.unlabeled": [{"source": "builtin:pydoc"}], "bench.batch_size": 8, "bench.sweep_batch_sizes": [32],
    "bench.max_eval_samples": 99, "bench.device": "cuda", "bench.targets": ["ssh://pi@device"],
    "bench.baselines": ["optimum-int8-dynamic"], "bench.session_memory": False}


def _mutation(field: str, cfg: RunConfig, skip: tuple[str, ...] = ()) -> Any:
    if field in MUTATIONS:
        return MUTATIONS[field]
    value = getattr(cfg, field)
    assert isinstance(value, BaseModel), field
    mutated = _mutated_section(value, skip)
    assert mutated is not None, f"no valid mutation found for section '{field}'"
    return mutated


CONTENT_FIELDS = [f for f in RunConfig.model_fields if f not in META_FIELDS]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_undeclared_fields_change_neither_hash_nor_view(stage):
    spec = STAGES[stage]
    base = _cfg()
    for field in CONTENT_FIELDS:
        dumped = base.model_dump(mode="json")
        unused = tuple(d.split(".", 1)[1] for d in spec.unused if d.split(".", 1)[0] == field)
        dumped[field] = _mutation(field, base, unused)
        other = RunConfig.model_validate(dumped)
        same_hash = stage_hash(base, stage, "up") == stage_hash(other, stage, "up")
        if field in spec.sections:
            assert not same_hash, f"{stage}: changing declared '{field}' must change its hash"
        else:
            assert same_hash, f"{stage}: undeclared '{field}' changed its hash"
            with pytest.raises(StageContractError, match=f"stage '{stage}' read config '{field}'"):
                value = getattr(stage_view(other, spec), field)
                str(value.model_fields if hasattr(value, "model_fields") else value)  # any use raises
                getattr(value, "anything")


@pytest.mark.parametrize("stage", sorted(s for s in STAGES if STAGES[s].unused))
def test_unused_keys_read_at_their_default(stage):
    spec = STAGES[stage]
    for dotted in spec.unused:
        section, key = dotted.split(".", 1)
        changed = None
        value = UNUSED_MUTATIONS.get(dotted)
        if value is not None:
            changed = _cfg(**{section: {**BASE.get(section, {}), key: value}})
        assert changed is not None, f"add a mutation for {dotted}"
        assert stage_hash(changed, stage, "up") == stage_hash(_cfg(), stage, "up")
        assert getattr(getattr(stage_view(changed, spec), section), key) == getattr(getattr(_cfg(), section), key)


def test_declared_sections_pass_through_unchanged():
    cfg = _cfg(distill={"temperature": 3.0})
    view = stage_view(cfg, STAGES["distill"])
    assert view.distill.temperature == 3.0 and view.teacher.model == "packaged:minilm-l6"
    assert view.run_dir == cfg.run_dir and view.stages == cfg.stages
    assert view.section_hash(("distill",)) == cfg.section_hash(("distill",))


def test_a_stage_reading_an_undeclared_section_fails_in_the_pipeline(tmp_path: Path, monkeypatch):
    """A stage that reads more than it declares fails loudly, naming the field, instead of caching stale output."""
    import compress.run.stages as stages
    from compress.run.pipeline import run_pipeline
    from compress.run.stages import StageResult, StageSpec

    def sneaky(cfg, inputs, out_dir):
        return StageResult(metrics={"t": cfg.distill.temperature})

    import sys
    import types

    mod = types.ModuleType("sneaky_stage")
    mod.run_stage = sneaky
    monkeypatch.setitem(sys.modules, "sneaky_stage", mod)
    monkeypatch.setitem(stages.STAGES, "sneaky", StageSpec("sneaky", "sneaky_stage:run_stage", ("task",), "reads distill"))
    cfg = _cfg(stages=["sneaky"], output_dir=str(tmp_path))
    with pytest.raises(StageContractError, match="stage 'sneaky' read config 'distill'"):
        run_pipeline(cfg)
