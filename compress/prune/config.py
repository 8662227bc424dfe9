"""Config of the structural pruning stage (see docs/pruning.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from compress.core.config_base import Section
from compress.distill.config import LossWeights, check_some_weight


class RecoveryConfig(Section):
    """Short distillation from the unpruned model after pruning (the distill engine, Trainer-based)."""

    enabled: bool = Field(False, description="distill the pruned model from the unpruned one after cutting")
    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, description="stop after this many optimizer steps (-1: use epochs)")
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(5e-5, gt=0)
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    max_train_samples: int | None = Field(None, ge=1, description="cap on recovery examples (None: all of data.train)")
    unlabeled: bool = Field(False, description="recover on the distill stage's text: data.train plus data.unlabeled "
                                               "(embedding, mlm, classification)")
    keep_best: bool = Field(True, description="the recovered model is the recovery checkpoint with the best eval-split "
                                              "metric (scored 4 times across the run), not its last step")
    revert_if_worse: bool = Field(True, description="keep the pruned weights when recovery lowers the eval metric "
                                                    "(needs an eval split; stage.json says which were kept)")
    loss: LossWeights | None = Field(None, description="loss mix (None: per task — embedding: embed_mse+cos, "
                                                       "classification/mlm/token-classification/question-answering: kl+cos, "
                                                       "regression: cos+embed_mse(+hard))")

    @field_validator("loss")
    @classmethod
    def _some_weight(cls, loss: LossWeights | None) -> LossWeights | None:
        check_some_weight(loss, "prune.recovery.loss")
        return loss


class PruneConfig(Section):
    """What to remove (importance) and how much (target); see docs/pruning.md."""

    target: Literal["ratios", "params", "macs"] = Field(
        "ratios", description="ratios: head_ratio/ffn_ratio as given; params/macs: remove `amount` of the encoder's "
                              "parameters / Linear MACs with one ratio shared by heads and FFN")
    amount: float = Field(0.0, ge=0, lt=1, description="fraction of encoder params/MACs to remove (target params|macs)")
    ffn_ratio: float = Field(0.0, ge=0, lt=1, description="fraction of FFN intermediate neurons removed")
    head_ratio: float = Field(0.0, ge=0, lt=1, description="fraction of attention heads removed")
    importance: Literal["l1", "l2", "taylor", "gradient"] = Field(
        "l2", description="l1/l2: group weight magnitude; taylor: first-order Taylor on calibration batches; "
                          "gradient: heads by |dL/d head-mask| (Michel et al. 2019), FFN by Taylor")
    scope: Literal["uniform", "global"] = Field(
        "uniform", description="uniform: same share of heads in every layer; global: heads ranked across layers "
                               "(different head counts per layer). FFN widths are always uniform (one config value)")
    round_to: int | None = Field(8, ge=1, description="keep FFN widths a multiple of this (INT8 kernel friendly)")
    min_heads: int = Field(1, ge=1, description="never leave a layer with fewer heads than this")
    drop_layers: list[int] | None = Field(None, description="explicit encoder layer indices to remove")
    num_drop_layers: int = Field(0, ge=0, description="remove this many layers, the ones whose removal changes "
                                                     "the output least on calibration batches")
    calibration_batches: int = Field(64, ge=1, description="batches for taylor/gradient importance and layer scores "
                                                          "(the first rows of data.train; 8 gave noisy scores: BENCHMARKS)")
    calibration_batch_size: int = Field(16, ge=2)
    max_length: int | None = Field(None, ge=8, description="tokenizer truncation for calibration, recovery and the "
                                   "quality scores; default: the model's own max length (a QA model's windows)")
    recovery: RecoveryConfig = Field(default_factory=RecoveryConfig)

    @model_validator(mode="after")
    def _consistent(self) -> "PruneConfig":
        if self.target == "ratios":
            if self.amount:
                raise ValueError("prune.amount is used with target params|macs; with target ratios set "
                                 "head_ratio/ffn_ratio (or set prune.target=params)")
        else:
            if self.head_ratio or self.ffn_ratio:
                raise ValueError(f"prune.target={self.target} picks head and FFN ratios itself from prune.amount; "
                                 "leave head_ratio/ffn_ratio at 0 (or use target: ratios)")
            if self.amount <= 0:
                raise ValueError(f"prune.target={self.target} needs prune.amount in (0, 1), e.g. 0.4")
        if self.drop_layers is not None and self.num_drop_layers:
            raise ValueError("give either prune.drop_layers (explicit) or prune.num_drop_layers (chosen), not both")
        if self.drop_layers is not None and len(set(self.drop_layers)) != len(self.drop_layers):
            raise ValueError(f"prune.drop_layers lists a layer twice: {self.drop_layers}")
        return self

    @property
    def needs_data(self) -> bool:
        """Whether importance or layer choice needs calibration batches."""
        from compress.prune.importance import IMPORTANCE  # the registry says which scores read batches

        return IMPORTANCE[self.importance].needs_data or self.num_drop_layers > 0

    @property
    def removes_anything(self) -> bool:
        return bool(self.amount or self.head_ratio or self.ffn_ratio or self.drop_layers or self.num_drop_layers)
