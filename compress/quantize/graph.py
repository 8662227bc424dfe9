"""ONNX graph helpers for quantization: graph blocks, BERT fusion, pre-processing, and quieting the libraries.

Sessions and tokenised feeds are the measuring layer's (``benchmarks.sessions``, ``benchmarks.feeds``).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from compress.core.errors import EdgepressError

if TYPE_CHECKING:
    import onnx

LAYER_NORM_OPS = ("LayerNormalization", "SkipLayerNormalization", "EmbedLayerNormalization",
                  "SimplifiedLayerNormalization", "SkipSimplifiedLayerNormalization")
QUIET = logging.ERROR


class BelowLevel(logging.Filter):
    """Drops records of the named loggers (and their children) below ``level``; passes every other record."""

    def __init__(self, names: tuple[str, ...], level: int) -> None:
        super().__init__()
        self.names, self.level = names, level

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a record of a named logger below the level."""
        named = any(record.name == n or record.name.startswith(n + ".") for n in self.names)
        return record.levelno >= self.level or not named


def console_handlers(names: tuple[str, ...]) -> list[logging.Handler]:
    """The handlers writing to stderr/stdout that records of the named loggers reach (lastResort included)."""
    import sys

    found: list[logging.Handler] = [] if logging.lastResort is None else [logging.lastResort]
    for name in names:
        lg: logging.Logger | None = logging.getLogger(name)
        while lg is not None:
            found += [h for h in lg.handlers if isinstance(h, logging.StreamHandler)
                      and not isinstance(h, logging.FileHandler) and h.stream in (sys.stderr, sys.stdout)]
            lg = lg.parent if lg.propagate else None
    return list(dict.fromkeys(found))


@contextmanager
def quiet(*names: str, level: int = QUIET) -> Iterator[None]:
    """While the block (or decorated function) runs, records of the named loggers below ``level`` stay off the console.

    A Filter on the console handlers those records reach, removed afterwards: logger levels are left as the
    user (or a run's ``compress.core.console.capture_logs``) set them, and a run's log.txt still gets every record.
    """
    drop = BelowLevel(names, level)
    handlers = console_handlers(names)
    for h in handlers:
        h.addFilter(drop)
    try:
        yield
    finally:
        for h in handlers:
            h.removeFilter(drop)


def graph_blocks(model: "onnx.ModelProto") -> dict[str, list[str]]:
    """Node names grouped as ``embeddings``, ``layer.<i>``, ``head`` by counting LayerNorms in graph order.

    A BERT-family encoder has one LayerNorm after the embeddings and two per layer (attention output,
    FFN output); this holds for the plain export and for ORT-fused graphs (EmbedLayerNormalization,
    SkipLayerNormalization), so node names are not needed.
    """
    nodes = list(model.graph.node)
    n_ln = sum(n.op_type in LAYER_NORM_OPS for n in nodes)
    if n_ln < 3:
        return {}
    num_layers = (n_ln - 1) // 2
    blocks: dict[str, list[str]] = {}
    seen = 0
    for i, node in enumerate(nodes):
        if not node.name:
            node.name = f"{node.op_type}_{i}"
        is_ln = node.op_type in LAYER_NORM_OPS
        if seen == 0:
            block = "embeddings"
        elif seen <= 2 * num_layers:
            block = f"layer.{(seen - 1) // 2}"
        else:
            block = "head"
        if is_ln:
            seen += 1
            if node.op_type == "EmbedLayerNormalization" or seen == 1:
                block = "embeddings"
        blocks.setdefault(block, []).append(node.name)
    return blocks


def activation_matmuls(model: "onnx.ModelProto") -> list[str]:
    """MatMul nodes whose second input is computed from the graph inputs (attention's QK^T and PV), not a weight."""
    graph = model.graph
    constant = {i.name for i in graph.initializer}
    for node in graph.node:  # topological order: a node's inputs are settled before it
        if node.op_type == "Constant" or (node.input and all(not i or i in constant for i in node.input)):
            constant.update(node.output)
    return [n.name for n in graph.node if n.op_type == "MatMul" and len(n.input) > 1 and n.input[1] not in constant]


def fold_weight_quantizers(path: Path) -> int:
    """Store QDQ weights as int8: replace each QuantizeLinear of a float initializer by its (precomputed) output.

    ``torch.onnx.export`` of fake-quantized weights writes float weights followed by QuantizeLinear, so the
    file stays fp32-sized; ONNX Runtime's constant folding deliberately keeps QuantizeLinear. The values are
    computed by onnx's reference implementation of the op, so rounding and saturation follow the spec.
    """
    import onnx
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    model = onnx.load(str(path))
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    consts = {n.output[0]: n.attribute[0].t for n in graph.node
              if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"}
    consts.update(inits)  # TensorProtos; only the folded ones are read into numpy
    opset = [o for o in model.opset_import if o.domain in ("", "ai.onnx")]
    folded = []
    for node in graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] not in inits or not all(i in consts for i in node.input[1:]):
            continue
        names = ["x", "scale", "zero_point"][: len(node.input)]
        single = helper.make_model(helper.make_graph(
            [helper.make_node("QuantizeLinear", names, ["y"], **{a.name: helper.get_attribute_value(a) for a in node.attribute})],
            "fold", [], [helper.make_tensor_value_info("y", onnx.TensorProto.UNDEFINED, None)],
            [numpy_helper.from_array(numpy_helper.to_array(consts[i]), n) for i, n in zip(node.input, names)]),
            opset_imports=opset)
        (quantized,) = ReferenceEvaluator(single).run(None, {})
        graph.initializer.append(numpy_helper.from_array(quantized, node.output[0]))
        folded.append(node)
    for node in folded:
        graph.node.remove(node)
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)
    onnx.save(model, str(path))
    return len(folded)


def name_nodes(path: Path) -> None:
    """Give every unnamed node a name, so exclusion lists can address it."""
    import onnx

    model = onnx.load(str(path))
    changed = False
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"
            changed = True
    if changed:
        onnx.save(model, str(path))


def word_embedding_gathers(model: "onnx.ModelProto") -> list[str]:
    """Names of the Gather nodes that look ``input_ids`` up in a constant 2-D table: the word embeddings."""
    tables = {t.name for t in model.graph.initializer if len(t.dims) == 2}
    return [n.name for n in model.graph.node
            if n.op_type == "Gather" and len(n.input) == 2 and n.input[1] == "input_ids" and n.input[0] in tables]


@quiet("onnxruntime.transformers")
def optimize_bert(src: Path, dst: Path, embed_layer_norm: bool = True, slow_cpu_fusions: bool = True) -> dict[str, int]:
    """Fuse BERT attention/LayerNorm/GELU with onnxruntime.transformers.optimizer; returns fused-op counts.

    ``embed_layer_norm=False`` keeps the embedding lookups as plain Gathers (a 4-bit table needs its own op).
    ``slow_cpu_fusions=False`` leaves out the two fusions whose CPU kernels are slower than what they replace
    (see ``separate_residual_sums``), for a graph that runs on ONNX Runtime's CPU provider.
    """
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_embed_layer_norm = embed_layer_norm
    options.enable_skip_layer_norm = options.enable_bias_skip_layer_norm = slow_cpu_fusions
    options.enable_bias_gelu = slow_cpu_fusions  # unfused, the bias folds into the (quantized) MatMul instead
    model = optimize_model(str(src), model_type="bert", num_heads=0, hidden_size=0, opt_level=0,
                           optimization_options=options)
    stats = {k: int(v) for k, v in model.get_fused_operator_statistics().items() if v}
    if not slow_cpu_fusions:
        stats["residual_sums"] = separate_residual_sums(model.model)
    model.save_model_to_file(str(dst))
    if not stats.get("Attention") and not stats.get("MultiHeadAttention"):
        logging.getLogger(__name__).warning("ORT BERT optimizer fused no Attention node in %s (%s)", src, stats)
    return stats


def separate_residual_sums(model: "onnx.ModelProto") -> int:
    """Write each residual Add that feeds a LayerNormalization as an ONNX ``Sum``; returns how many were rewritten.

    ONNX Runtime fuses Add + LayerNormalization into SkipLayerNormalization when it loads a graph, and its CPU
    kernel for that op (1.32) is a scalar per-element loop: 1.28 ms against 0.64 ms for Sum + LayerNormalization
    on a 32 x 40 x 384 input with two threads (experiments/cpu_layer_norm.py). Its fusion matches ``Add`` only;
    ``Sum`` of two tensors computes the same values and keeps the vectorised LayerNormalization.
    """
    consts = {t.name for t in model.graph.initializer}
    producer = {out: node for node in model.graph.node for out in node.output}
    rewritten = 0
    for node in model.graph.node:
        if node.op_type != "LayerNormalization":
            continue
        add = producer.get(node.input[0])
        if add is not None and add.op_type == "Add" and add.domain in ("", "ai.onnx") \
                and not any(name in consts for name in add.input):
            add.op_type = "Sum"
            rewritten += 1
    return rewritten


@quiet("onnxruntime.quantization")
def prepare_for_quantization(src: Path, dst: Path) -> dict[str, Any]:
    """Shape inference for quantization (quant_pre_process), retried without symbolic inference when it fails.

    Fused graphs (Attention, SkipLayerNormalization from com.microsoft) carry no types after plain ONNX
    shape inference, which makes ``quantize_dynamic``/``quantize_static`` fail with "Unable to find data
    type for weight_name"; ORT's symbolic shape inference knows those ops.
    """
    from onnxruntime.quantization import quant_pre_process

    tries = [dict(skip_optimization=True, auto_merge=True),
             dict(skip_optimization=True, skip_symbolic_shape=True)]
    errors = []
    for kw in tries:
        try:
            quant_pre_process(str(src), str(dst), **kw)
            name_nodes(dst)
            return {"pre_process": kw, "errors": errors}
        except Exception as exc:  # symbolic inference raises assorted errors on unknown ops
            errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
    raise EdgepressError(f"quant_pre_process failed on '{src}' with every option: {errors}; "
                         "try quantize.optimize_graph=false")
