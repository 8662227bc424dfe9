"""Config of the student and of the distillation stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from compress.core.config_base import Section, optimizer_steps


class StudentConfig(Section):
    """How the student is built: a subset of teacher layers, or a given pretrained model."""

    num_layers: int | None = Field(3, ge=1, description="layers kept from the teacher, spread evenly (first and last kept)")
    layers: list[int] | None = Field(None, description="explicit teacher layer indices to copy (overrides num_layers)")
    model: str | None = Field(None, description="a pretrained student (path or hub name) instead of teacher layers")

    @model_validator(mode="after")
    def _one_source(self) -> "StudentConfig":
        if self.layers is not None and len(self.layers) == 0:
            raise ValueError("student.layers is empty: give at least one teacher layer index")
        if self.layers is not None and len(set(self.layers)) != len(self.layers):
            twice = sorted({v for v in self.layers if self.layers.count(v) > 1})
            raise ValueError(f"teacher layer {twice[0]} is listed twice in {self.layers}: give each layer once")
        return self


class LossWeights(Section):
    """Weight of each loss term; a term with weight 0 is not computed."""

    kl: float = Field(0.0, ge=0, description="soft-label KL on class logits (classification) or MLM logits at masked positions")
    mlm: float = Field(0.0, ge=0, description="cross-entropy on masked tokens (mode mlm)")
    cos: float = Field(0.0, ge=0, description="cosine loss between student and teacher last hidden states, non-padding tokens")
    hard: float = Field(0.0, ge=0, description="cross-entropy (classification) or MSE (regression) on gold labels")
    embed_mse: float = Field(0.0, ge=0, description="MSE between mean-pooled student and teacher sentence embeddings")
    embed_cos: float = Field(0.0, ge=0, description="1 - cosine between pooled student and teacher embeddings")
    hidden_mse: float = Field(0.0, ge=0, description="MSE between mapped hidden states (learned projection if widths differ)")
    attn_kl: float = Field(0.0, ge=0, description="KL between last-layer attention distributions (TinyBERT/MiniLM)")
    value_kl: float = Field(0.0, ge=0, description="KL between last-layer value-relation matrices (MiniLM)")


def check_some_weight(weights: "LossWeights | None", field: str) -> None:
    """Refuse a loss mix whose every weight is 0: nothing would be trained."""
    if weights is not None and not any(v > 0 for v in weights.model_dump().values()):
        raise ValueError(f"every {field} weight is 0: give at least one term a positive weight, "
                         f"e.g. {field}: {{embed_mse: 1.0, cos: 1.0}}")


class DistillConfig(Section):
    """Distillation hyper-parameters; the training loop is transformers.Trainer."""

    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, description="stop after this many optimizer steps (-1: use epochs)")
    batch_size: int = Field(32, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    learning_rate: float = Field(1e-4, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    temperature: float = Field(2.0, gt=0)
    t_squared: bool = Field(True, description="multiply the soft-label KL by T^2 (DistilBERT does, TextBrewer does not)")
    kl_reduction: Literal["batchmean", "mean", "sum"] = "batchmean"
    mlm_probability: float = Field(0.15, gt=0, lt=1)
    kl_on_masked_only: bool = Field(True, description="MLM soft-label KL only at masked positions (memory: B*S*V otherwise)")
    loss: LossWeights = Field(default_factory=lambda: LossWeights(embed_mse=1.0, cos=1.0))
    cache_teacher: bool = Field(True, description="keep the teacher's outputs per row in a disk cache (embedding, "
                                "classification, regression without hidden_mse/attn_kl/value_kl); false: every "
                                "step runs the teacher")
    cache_dir: str | None = Field(None, description="folder of on-disk caches: teacher outputs under teacher/<key>/, "
                                  "Arrow copies of data files under data/ (None: <run folder>/.cache, shared by "
                                  "re-runs, the search's depth distillations and QAT); runs may share one at the "
                                  "same time; `edgepress cache verify DIR` checks it")
    cache_max_gb: float = Field(8.0, ge=0, description="the teacher cache stops growing at this many GB; rows past "
                                "it are computed by the teacher every time they come up (0: no disk cache)")
    save_steps: int | None = Field(None, ge=1, description="write a resumable checkpoint every N optimizer steps "
                                   "(None: a quarter of the run, at least 10)")
    precision: Literal["fp32", "fp16", "bf16"] = Field("fp32", description="mixed precision on GPU")
    logging_steps: int = Field(10, ge=1)
    eval_steps: int | None = Field(None, ge=1, description="score the student on the eval split every N optimizer "
                                   "steps with the task metric (None: at every checkpoint, see save_steps)")
    keep_best: bool = Field(True, description="the stage's output is the checkpoint with the best eval-split metric "
                            "(Trainer's load_best_model_at_end); false: the last step's weights")

    _steps = field_validator("max_steps")(classmethod(optimizer_steps))

    @field_validator("loss")
    @classmethod
    def _some_weight(cls, loss: LossWeights) -> LossWeights:
        check_some_weight(loss, "distill.loss")
        return loss

    @model_validator(mode="after")
    def _best_needs_evaluated_checkpoints(self) -> "DistillConfig":
        if self.keep_best and self.save_steps and self.eval_steps and self.save_steps % self.eval_steps:
            raise ValueError(f"distill.save_steps={self.save_steps} is not a multiple of distill.eval_steps="
                             f"{self.eval_steps}: keep_best keeps a checkpoint at evaluated steps; make save_steps a "
                             "multiple, or keep_best: false")
        return self
