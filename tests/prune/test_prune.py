"""Structural pruning on tiny BERT / DistilBERT / RoBERTa (hidden 32, 2 layers, 4 heads, FFN 64).

Encoder parameters are counted as all parameters of the encoder layer stack (attention, FFN,
LayerNorms); embeddings, pooler and task heads are not prunable and are excluded.
"""

from __future__ import annotations

import json

import pytest
import torch
from pydantic import ValidationError

from compress.data.rows import TextData, builtin_pydoc_sentences
from compress.core.errors import EdgepressError
from compress.model.loading import load_model, load_tokenizer
from compress.prune import arch
from compress.prune.api import encoder_params, prune_model
from compress.prune.config import PruneConfig
from tests.prune.helpers import onnx_parity

ARCHS = ["bert", "distilbert", "roberta"]
TEXTS = builtin_pydoc_sentences()[:48]


def _load(path, task):
    return load_model(str(path), task), load_tokenizer(str(path))


def _enc(tok, model, n=3):
    enc = dict(tok(TEXTS[:n], padding=True, truncation=True, max_length=24, return_tensors="pt"))
    enc.pop("token_type_ids", None)
    return enc


def _out(model, enc):
    with torch.inference_mode():
        out = model(**enc)
    return out.logits if hasattr(out, "logits") else out.last_hidden_state


def _reload(model, tmp_path):
    model.save_pretrained(tmp_path / "pruned")
    return type(model).from_pretrained(tmp_path / "pruned").eval()


@pytest.mark.parametrize("arch_name", ARCHS)
@pytest.mark.parametrize("head", ["embedding", "classification", "mlm"])
def test_ratios_shrink_reload_exact(tiny_model_dir, tmp_path, arch_name, head):
    model, tok = _load(tiny_model_dir(arch_name, head), head)
    enc = _enc(tok, model)
    before_shape = _out(model, enc).shape
    enc_before = encoder_params(model)
    model, rep = prune_model(model, tok, PruneConfig(head_ratio=0.5, ffn_ratio=0.5, round_to=4), task=head)
    assert rep.heads_after == [2, 2] and rep.ffn_after == [32, 32]
    # heads and FFN are ~98.5 % of a layer's parameters (LayerNorms stay), so removal is ~49 %
    assert abs(1 - encoder_params(model) / enc_before - 0.5) <= 0.05
    assert rep.macs_after < rep.macs_before and rep.params_after < rep.params_before
    out = _out(model, enc)
    assert out.shape == before_shape
    again = _reload(model, tmp_path)
    assert arch.heads_per_layer(again) == [2, 2] and arch.ffn_per_layer(again) == [32, 32]
    assert (out - _out(again, enc)).abs().max().item() <= 1e-6


@pytest.mark.parametrize("arch_name", ARCHS)
@pytest.mark.parametrize("kind", ["params", "macs"])
def test_param_and_mac_targets(tiny_model_dir, arch_name, kind):
    model, tok = _load(tiny_model_dir(arch_name, "embedding"), "embedding")
    before = encoder_params(model)
    lin_macs = lambda m: sum(x.in_features * x.out_features for x in arch.layers(m).modules()  # noqa: E731
                             if isinstance(x, torch.nn.Linear))
    macs_before = lin_macs(model)
    model, rep = prune_model(model, tok, PruneConfig(target=kind, amount=0.4, round_to=4), task="embedding")
    got = 1 - (encoder_params(model) / before if kind == "params" else lin_macs(model) / macs_before)
    assert abs(got - 0.4) <= 0.05, got
    assert rep.head_ratio == rep.ffn_ratio > 0


def test_global_heads_differ_per_layer_and_reload(tiny_model_dir, tmp_path):
    model, tok = _load(tiny_model_dir("bert", "embedding"), "embedding")
    with torch.no_grad():  # make layer 1's heads clearly weaker than layer 0's
        p = arch.parts(model, 1)
        for lin in (p.query, p.key, p.value):
            lin.weight.mul_(0.01)
    cfg = PruneConfig(head_ratio=0.5, scope="global", importance="l2", round_to=4)
    model, rep = prune_model(model, tok, cfg, task="embedding")
    assert sum(rep.heads_after) == 4 and rep.heads_after[1] < rep.heads_after[0]
    assert rep.heads_after[1] >= cfg.min_heads
    enc = _enc(tok, model)
    again = _reload(model, tmp_path)
    assert arch.heads_per_layer(again) == rep.heads_after
    assert (_out(model, enc) - _out(again, enc)).abs().max().item() <= 1e-6


def test_magnitude_removes_the_weakest_head_and_neurons(tiny_model_dir):
    model, tok = _load(tiny_model_dir("bert", "embedding"), "embedding")
    dh = arch.head_size(model)
    with torch.no_grad():
        p = arch.parts(model, 0)
        for lin in (p.query, p.key, p.value):
            lin.weight[dh:2 * dh].zero_()
            lin.bias[dh:2 * dh].zero_()
        p.attn_out.weight[:, dh:2 * dh].zero_()
        p.ffn_in.weight[:8].zero_()  # a neuron's group: its FFN-in row and bias, its FFN-out column
        p.ffn_in.bias[:8].zero_()
        p.ffn_out.weight[:, :8].zero_()
    model, rep = prune_model(model, tok, PruneConfig(head_ratio=0.25, ffn_ratio=0.125, round_to=4), task="embedding")
    assert model.config.pruned_heads[0] == [1]
    assert rep.ffn_after == [56, 56]
    assert not any(arch.parts(model, 0).ffn_in.weight.abs().sum(1) == 0)  # all 8 zero rows were the ones cut


@pytest.mark.parametrize("importance", ["taylor", "gradient"])
@pytest.mark.parametrize("arch_name,task", [("bert", "embedding"), ("distilbert", "classification"), ("roberta", "mlm")])
def test_data_driven_importance(tiny_model_dir, tmp_path, importance, arch_name, task):
    model, tok = _load(tiny_model_dir(arch_name, task), task)
    labels = [i % 2 for i in range(len(TEXTS))] if task == "classification" else None
    cfg = PruneConfig(head_ratio=0.5, ffn_ratio=0.25, importance=importance, round_to=4, calibration_batches=2,
                      calibration_batch_size=8)
    torch.manual_seed(123)
    rng_before = torch.random.get_rng_state()
    model, rep = prune_model(model, tok, cfg, TextData(TEXTS, labels=labels), task=task)
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # seeded its own draws, gave the generator back
    assert rep.heads_after == [2, 2] and rep.ffn_after == [48, 48]
    assert all(p.grad is None for p in model.parameters())  # calibration gradients are cleared
    enc = _enc(tok, model)
    assert (_out(model, enc) - _out(_reload(model, tmp_path), enc)).abs().max().item() <= 1e-6


@pytest.mark.parametrize("arch_name", ["bert", "distilbert"])
def test_layer_dropping_fixes_layer_count(tiny_model_dir, tmp_path, arch_name):
    model, tok = _load(tiny_model_dir(arch_name, "embedding"), "embedding")
    cfg = PruneConfig(head_ratio=0.25, num_drop_layers=1, importance="taylor", round_to=4, calibration_batches=2,
                      calibration_batch_size=8)
    model, rep = prune_model(model, tok, cfg, TextData(TEXTS), task="embedding")
    assert len(rep.dropped_layers) == 1 and len(rep.layer_scores) == 2
    assert rep.dropped_layers[0] == min(range(2), key=lambda i: rep.layer_scores[i])
    n_attr = "n_layers" if arch_name == "distilbert" else "num_hidden_layers"
    assert getattr(model.config, n_attr) == 1 and rep.heads_after == [3]
    enc = _enc(tok, model)
    again = _reload(model, tmp_path)
    assert getattr(again.config, n_attr) == 1
    assert (_out(model, enc) - _out(again, enc)).abs().max().item() <= 1e-6


def test_explicit_drop_remaps_pruned_heads(tiny_model_dir, tmp_path):
    model, tok = _load(tiny_model_dir("bert", "embedding"), "embedding")
    model, rep = prune_model(model, tok, PruneConfig(head_ratio=0.5, drop_layers=[0], round_to=4), task="embedding")
    assert rep.dropped_layers == [0] and list(model.config.pruned_heads) == [0]
    per_head = 4 * 32 * 8 + 3 * 8  # q, k, v rows + biases and attention-output columns of one 8-wide head
    assert encoder_params(model) == rep.encoder_params_before // 2 - 2 * per_head


@pytest.mark.parametrize("arch_name,head", [("bert", "embedding"), ("distilbert", "classification"),
                                            ("roberta", "mlm")])
def test_onnx_export_of_pruned_model_matches(tiny_model_dir, tmp_path, arch_name, head):
    model, tok = _load(tiny_model_dir(arch_name, head), head)
    model, _ = prune_model(model, tok, PruneConfig(head_ratio=0.5, ffn_ratio=0.5, round_to=4, scope="global"),
                           task=head)
    enc = _enc(tok, model, n=4)
    assert onnx_parity(model, enc, tmp_path / "pruned.onnx") <= 1e-4


def test_recovery_runs_the_distillation_engine(tiny_model_dir, tmp_path):
    model, tok = _load(tiny_model_dir("bert", "embedding"), "embedding")
    cfg = PruneConfig.model_validate({"head_ratio": 0.5, "ffn_ratio": 0.5, "round_to": 4,
                                      "recovery": {"enabled": True, "max_steps": 3, "batch_size": 8}})
    data = TextData(TEXTS)
    model, rep = prune_model(model, tok, cfg, data, task="embedding", eval_data=TextData(TEXTS[:16]),
                             work_dir=tmp_path)
    assert rep.recovery["steps"] == 3 and rep.recovery["loss"] == {"cos": 1.0, "embed_mse": 1.0}
    q = rep.quality
    assert q["unpruned"]["metric"] == "fidelity_cosine" and q["unpruned"]["value"] == pytest.approx(1.0, abs=1e-5)
    assert 0 < q["recovered"]["value"] <= 1.0 and q["retention"] == pytest.approx(q["recovered"]["value"], rel=1e-5)
    assert not (tmp_path / "recovery" / "checkpoints").exists()
    assert rep.heads_after == [2, 2]


# ------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("kwargs,match", [
    ({"ffn_ratio": 1.0}, "less than 1"),
    ({"head_ratio": -0.1}, "greater than or equal"),
    ({"target": "params"}, "needs prune.amount"),
    ({"target": "macs", "amount": 0.3, "ffn_ratio": 0.2}, "leave head_ratio/ffn_ratio at 0"),
    ({"amount": 0.3}, "prune.target=params"),
    ({"drop_layers": [0], "num_drop_layers": 1}, "not both"),
    ({"importance": "fisher"}, "importance"),
])
def test_bad_config_values_fail_validation(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        PruneConfig(**kwargs)


@pytest.mark.parametrize("kwargs,match", [
    ({"ffn_ratio": 0.5, "round_to": 128}, "round_to=128 exceeds the FFN width 64"),
    ({"head_ratio": 0.1, "round_to": 4}, "removes no head"),
    ({"ffn_ratio": 0.01, "round_to": 8}, "removes no FFN neuron"),
    ({"drop_layers": [0, 1]}, "leaves none"),
    ({"drop_layers": [5]}, "out of range"),
    ({"target": "params", "amount": 0.99, "round_to": 8}, "cannot be reached"),
    ({}, "nothing to remove"),
    ({"ffn_ratio": 0.5, "importance": "taylor", "round_to": 4}, "needs calibration text"),
    ({"head_ratio": 0.5, "min_heads": 5}, "min_heads=5 exceeds"),
])
def test_bad_targets_fail_before_any_work(tiny_model_dir, kwargs, match):
    model, tok = _load(tiny_model_dir("bert", "embedding"), "embedding")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(EdgepressError, match=match):
        prune_model(model, tok, PruneConfig(**kwargs), task="embedding")
    after = model.state_dict()
    assert all(torch.equal(state[k], after[k]) for k in state) and len(after) == len(state)


def test_unsupported_architecture_is_refused(tmp_path):
    import transformers

    cfg = transformers.AlbertConfig(hidden_size=32, num_attention_heads=4, intermediate_size=64, embedding_size=16,
                                    vocab_size=100, num_hidden_layers=2)
    model = transformers.AlbertModel(cfg).eval()
    with pytest.raises(EdgepressError, match="does not support model type 'albert'"):
        prune_model(model, None, PruneConfig(ffn_ratio=0.5, round_to=4), task="embedding")


def test_head_count_that_does_not_divide_is_refused(tiny_model_dir):
    model, tok = _load(tiny_model_dir("bert", "embedding"), "embedding")
    model.config.num_attention_heads = 3
    with pytest.raises(EdgepressError, match="num_attention_heads=3 does not divide hidden_size=32"):
        prune_model(model, tok, PruneConfig(head_ratio=0.5), task="embedding")


def test_config_round_trips_json():
    cfg = PruneConfig.model_validate({"target": "macs", "amount": 0.35, "scope": "global", "importance": "gradient",
                                      "recovery": {"enabled": True, "epochs": 0.5, "loss": {"cos": 2.0}}})
    again = PruneConfig.model_validate(json.loads(cfg.model_dump_json()))
    assert again == cfg and again.recovery.loss.cos == 2.0 and again.needs_data


def test_stage_writes_reloadable_model_and_metrics(tiny_model_dir, tmp_path):
    from compress.config import RunConfig
    from compress.prune.stage import run_stage
    from compress.run.pipeline import stage_inputs
    from compress.run.stages import StageRecord

    src = tiny_model_dir("bert", "embedding")
    cfg = RunConfig.model_validate({
        "task": "embedding", "stages": ["prune"], "teacher": {"model": str(src)},
        "data": {"train": "builtin:pydoc", "max_train_samples": 64, "max_eval_samples": 16},
        "prune": {"head_ratio": 0.5, "ffn_ratio": 0.5, "round_to": 4, "importance": "taylor",
                  "calibration_batches": 2, "calibration_batch_size": 8},
    })
    inputs = stage_inputs(cfg, tmp_path, [StageRecord("distill", src.parent, {"model": src.name}, {}, [])])
    out = tmp_path / "01-prune"
    out.mkdir()
    res = run_stage(cfg, inputs, out)
    assert res.outputs == {"model": "model"} and [v.to_dict() for v in res.variants] == [
        {"name": "student-pruned", "format": "pytorch", "path": "model", "precision": "fp32"}]
    m = res.metrics
    assert m["heads_after"] == [2, 2] and m["ffn_after"] == [32, 32] and m["macs_after"] < m["macs_before"]
    assert 0.45 <= m["encoder_params_removed"] <= 0.55
    assert m["quality"]["unpruned"]["value"] == pytest.approx(1.0, abs=1e-5) and 0 < m["quality"]["pruned"]["value"] < 1
    reloaded, tok = _load(out / "model", "embedding")
    assert arch.heads_per_layer(reloaded) == [2, 2] and json.loads((out / "prune_report.json").read_text())["ffn_after"] == [32, 32]


def test_recovery_that_lowers_the_eval_metric_is_reverted(tiny_model_dir, tmp_path):
    """A harmful recovery (huge learning rate) is undone: the model keeps its pruned weights and says so."""
    import torch

    cfg_d = {"head_ratio": 0.5, "ffn_ratio": 0.5, "round_to": 4,
             "recovery": {"enabled": True, "max_steps": 4, "batch_size": 8, "learning_rate": 5.0, "warmup_ratio": 0.0}}
    model, tok = _load(tiny_model_dir("bert", "embedding"), "embedding")
    model, rep = prune_model(model, tok, PruneConfig.model_validate(cfg_d), TextData(TEXTS), task="embedding",
                             eval_data=TextData(TEXTS[:16]), work_dir=tmp_path / "a")
    q = rep.quality
    assert rep.recovery["kept"].startswith("pruned") and q["recovered"]["value"] == q["pruned"]["value"]
    assert rep.recovery["recovered_eval"] < q["pruned"]["value"]  # what recovery reached, kept for the report
    again, _ = _load(tiny_model_dir("bert", "embedding"), "embedding")
    cfg_d["recovery"]["revert_if_worse"] = False
    torch.manual_seed(0)
    again, rep2 = prune_model(again, tok, PruneConfig.model_validate(cfg_d), TextData(TEXTS), task="embedding",
                              eval_data=TextData(TEXTS[:16]), work_dir=tmp_path / "b")
    assert rep2.recovery["kept"] == "recovered"
    assert rep2.quality["recovered"]["value"] < rep2.quality["pruned"]["value"]


def test_recovery_keeps_its_best_scoring_checkpoint(tiny_model_dir, tmp_path):
    """recovery.keep_best: the recovered model is the checkpoint with the best eval metric, not the last step."""
    cfg_d = {"head_ratio": 0.5, "ffn_ratio": 0.5, "round_to": 4,
             "recovery": {"enabled": True, "max_steps": 20, "batch_size": 8, "learning_rate": 1e-3}}
    model, tok = _load(tiny_model_dir("bert", "embedding"), "embedding")
    model, rep = prune_model(model, tok, PruneConfig.model_validate(cfg_d), TextData(TEXTS), task="embedding",
                             eval_data=TextData(TEXTS[:16]), work_dir=tmp_path)
    metric = rep.recovery["eval_metric_during_training"]
    history = rep.recovery["eval_history"]
    assert [h["step"] for h in history] == [10, 20]  # scored at each checkpoint (every max(10, steps / 4) steps)
    best = max(history, key=lambda h: h[metric])
    assert rep.recovery["best_step"] == best["step"] and rep.recovery["best_eval"] == best[metric]
    cfg_d["recovery"]["keep_best"] = False
    model, tok = _load(tiny_model_dir("bert", "embedding"), "embedding")
    _, last = prune_model(model, tok, PruneConfig.model_validate(cfg_d), TextData(TEXTS), task="embedding",
                          eval_data=TextData(TEXTS[:16]), work_dir=tmp_path / "last")
    assert "eval_history" not in last.recovery  # the last step, never scored during the run


def _pairs_run(tmp_path, src, unlabeled: bool, task: str = "embedding"):
    """A prune-stage config on 32 STS-style pairs (+ 40 unlabelled sentences), recovery at batch 8."""
    from compress.config import RunConfig

    words = builtin_pydoc_sentences()
    rows = ["sentence1\tsentence2\tscore"] + [f"{words[i]} a{i}\t{words[i + 1]} b{i}\t{i % 5}" for i in range(32)]
    (tmp_path / "train.tsv").write_text("\n".join(rows) + "\n")
    (tmp_path / "dev.tsv").write_text("\n".join(rows[:9]) + "\n")
    (tmp_path / "more.tsv").write_text("sentence\n" + "\n".join(f"{w} u{i}" for i, w in enumerate(words[:40])) + "\n")
    return RunConfig.model_validate({
        "task": task, "stages": ["prune"], "teacher": {"model": str(src)},
        "data": {"train": str(tmp_path / "train.tsv"), "eval": str(tmp_path / "dev.tsv"), "text_column": "sentence1",
                 "text_pair_column": "sentence2", "label_column": "score",
                 "unlabeled": [{"source": str(tmp_path / "more.tsv"), "text_column": "sentence", "limit": 40}]},
        "prune": {"head_ratio": 0.5, "ffn_ratio": 0.5, "round_to": 4, "calibration_batches": 2,
                  "calibration_batch_size": 8,
                  "recovery": {"enabled": True, "epochs": 1, "batch_size": 8, "unlabeled": unlabeled}},
    })


@pytest.mark.parametrize("unlabeled,steps", [(False, 8), (True, 13)])
def test_recovery_on_the_distill_text_sees_each_sentence_and_the_unlabeled_rows(tiny_model_dir, tmp_path, unlabeled,
                                                                               steps):
    """32 pairs (64 sentences) recover in 8 steps of 8; with the 40 unlabelled sentences too, in 13."""
    from compress.prune.stage import run_stage
    from compress.run.pipeline import stage_inputs
    from compress.run.stages import StageRecord

    src = tiny_model_dir("bert", "embedding")
    cfg = _pairs_run(tmp_path, src, unlabeled)
    out = tmp_path / "01-prune"
    out.mkdir()
    res = run_stage(cfg, stage_inputs(cfg, tmp_path, [StageRecord("distill", src.parent, {"model": src.name}, {}, [])]), out)
    assert res.metrics["recovery"]["steps"] == steps
    assert res.metrics["heads_after"] == [2, 2]


def test_recovery_on_unlabeled_text_is_refused_for_regression(tiny_model_dir, tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="prune.recovery.unlabeled is for embedding, classification and mlm"):
        _pairs_run(tmp_path, tiny_model_dir("bert", "embedding"), True, task="regression")  # refused by the schema
    assert _pairs_run(tmp_path, tiny_model_dir("bert", "embedding"), False, task="regression").task == "regression"
