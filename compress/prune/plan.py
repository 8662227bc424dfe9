"""How much to remove: per-layer keep counts from ratios or from a parameter / MAC target.

Pure arithmetic on layer shapes (no importance needed), so every impossible request fails here,
before any calibration or cutting.
"""

from __future__ import annotations

from dataclasses import dataclass

from compress.core.errors import EdgepressError


@dataclass(frozen=True)
class Shapes:
    """Shapes of the encoder that pruning changes, plus per-layer totals for targets."""

    hidden: int
    head_size: int
    heads: list[int]  # per layer
    ffn: list[int]  # per layer
    layer_params: list[int]  # all parameters of each layer
    layer_macs: list[int]  # Linear multiply-accumulates per token of each layer

    def head_cost(self, kind: str) -> int:
        """Parameters (or MACs/token) one head carries in q, k, v (+bias) and the attention output."""
        d, dh = self.hidden, self.head_size
        return 4 * d * dh + (3 * dh if kind == "params" else 0)

    def neuron_cost(self, kind: str) -> int:
        """Parameters (or MACs/token) one FFN neuron carries in the two FFN Linear layers."""
        return 2 * self.hidden + (1 if kind == "params" else 0)


@dataclass
class Plan:
    """Counts to keep: heads per kept layer (uniform) or heads to remove in total (global), FFN width."""

    head_ratio: float
    ffn_ratio: float
    heads_keep: list[int]  # per kept layer; for global scope the mean-preserving reference counts
    ffn_keep: list[int]  # per kept layer
    global_heads_remove: int | None  # set for global scope: heads removed across all kept layers
    dropped: list[int]
    expected_fraction: float | None = None  # of encoder params/MACs, for targets


def keep_heads(h: int, ratio: float, min_heads: int) -> int:
    """Heads kept out of ``h`` when removing ``ratio`` of them (nearest count, at least ``min_heads``)."""
    return min(h, max(min_heads, int(h * (1 - ratio) + 0.5)))


def keep_ffn(f: int, ratio: float, round_to: int | None) -> int:
    """FFN width kept out of ``f``: nearest multiple of ``round_to``, at least one multiple."""
    k = f * (1 - ratio)
    if round_to:
        return min(f, max(round_to, int(k / round_to + 0.5) * round_to))
    return min(f, max(1, int(k + 0.5)))


def check_shapes(shapes: Shapes, round_to: int | None, min_heads: int) -> None:
    """Refuse settings no ratio could satisfy."""
    if round_to and round_to > min(shapes.ffn):
        raise EdgepressError(f"prune.round_to={round_to} exceeds the FFN width {min(shapes.ffn)}; "
                             f"use a round_to that divides it (e.g. {_divisor(min(shapes.ffn))})")
    if round_to and any(f % round_to for f in shapes.ffn) and len(set(shapes.ffn)) > 1:
        raise EdgepressError(f"FFN widths {sorted(set(shapes.ffn))} are not uniform multiples of round_to={round_to}")
    if min_heads > min(shapes.heads):
        raise EdgepressError(f"prune.min_heads={min_heads} exceeds the heads a layer has ({min(shapes.heads)})")


def _divisor(n: int) -> int:
    return next(d for d in (8, 4, 2, 1) if n % d == 0)


def _ratios_plan(shapes: Shapes, kept: list[int], head_ratio: float, ffn_ratio: float, round_to: int | None,
                 min_heads: int, scope: str, dropped: list[int]) -> Plan:
    heads = [shapes.heads[i] for i in kept]
    ffn = [shapes.ffn[i] for i in kept]
    hk = [keep_heads(h, head_ratio, min_heads) for h in heads]
    fk = [keep_ffn(f, ffn_ratio, round_to) for f in ffn]
    global_remove = None
    if scope == "global" and head_ratio > 0:
        total = sum(heads)
        global_remove = min(int(total * head_ratio + 0.5), total - min_heads * len(heads))
    return Plan(head_ratio, ffn_ratio, hk, fk, global_remove, dropped)


def removed_fraction(shapes: Shapes, plan: Plan, kind: str) -> float:
    """Fraction of the original encoder's params (``kind='params'``) or Linear MACs (``'macs'``) removed."""
    per_layer = shapes.layer_params if kind == "params" else shapes.layer_macs
    total = sum(per_layer)
    gone = sum(per_layer[i] for i in plan.dropped)
    kept = [i for i in range(len(shapes.heads)) if i not in plan.dropped]
    if plan.global_heads_remove is not None:
        gone += plan.global_heads_remove * shapes.head_cost(kind)
    else:
        gone += sum((shapes.heads[i] - k) * shapes.head_cost(kind) for i, k in zip(kept, plan.heads_keep))
    gone += sum((shapes.ffn[i] - k) * shapes.neuron_cost(kind) for i, k in zip(kept, plan.ffn_keep))
    return gone / total


def make_plan(shapes: Shapes, cfg, dropped: list[int]) -> Plan:
    """Keep counts for ``cfg`` (a PruneConfig) on a model of ``shapes`` after dropping ``dropped``."""
    check_shapes(shapes, cfg.round_to, cfg.min_heads)
    n = len(shapes.heads)
    if len(dropped) >= n:
        raise EdgepressError(f"dropping {len(dropped)} of {n} layers leaves none; keep at least one")
    bad = [i for i in dropped if not 0 <= i < n]
    if bad:
        raise EdgepressError(f"prune.drop_layers {bad} out of range: the model has layers 0..{n - 1}")
    kept = [i for i in range(n) if i not in dropped]
    if cfg.target == "ratios":
        plan = _ratios_plan(shapes, kept, cfg.head_ratio, cfg.ffn_ratio, cfg.round_to, cfg.min_heads, cfg.scope,
                            dropped)
        if cfg.head_ratio > 0 and (plan.global_heads_remove or 0) == 0 and plan.heads_keep == [shapes.heads[i] for i in kept]:
            raise EdgepressError(f"prune.head_ratio={cfg.head_ratio} removes no head of {shapes.heads[kept[0]]} per layer "
                                 f"after rounding (min_heads={cfg.min_heads}); use at least "
                                 f"{1 / (2 * max(shapes.heads)):.3f} or 0")
        if cfg.ffn_ratio > 0 and plan.ffn_keep == [shapes.ffn[i] for i in kept]:
            raise EdgepressError(f"prune.ffn_ratio={cfg.ffn_ratio} removes no FFN neuron of {shapes.ffn[kept[0]]} after "
                                 f"rounding to multiples of round_to={cfg.round_to}; raise the ratio or lower round_to")
        return plan
    # target params/macs: one ratio r for heads and FFN, the r whose removal is nearest the amount
    best: tuple[float, Plan] | None = None
    for step in range(0, 1000):
        r = step / 1000
        plan = _ratios_plan(shapes, kept, r, r, cfg.round_to, cfg.min_heads, cfg.scope, dropped)
        frac = removed_fraction(shapes, plan, cfg.target)
        if best is None or abs(frac - cfg.amount) < abs(best[0] - cfg.amount) - 1e-12:
            best = (frac, plan)
    frac, plan = best
    if abs(frac - cfg.amount) > 0.05:
        raise EdgepressError(
            f"prune.amount={cfg.amount} of the encoder {cfg.target} cannot be reached within 5 points with "
            f"round_to={cfg.round_to}, min_heads={cfg.min_heads} and {len(dropped)} dropped layers; nearest "
            f"reachable is {frac:.3f}"
        )
    plan.expected_fraction = frac
    return plan
