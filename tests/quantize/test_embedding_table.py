"""quantize.embedding.bits=4: the word-embedding table as ONNX Runtime's 4-bit GatherBlockQuantized, under the guard."""

from __future__ import annotations

import onnx
import pytest

from benchmarks.identity import embedding_table_bits, shape_label
from compress.core.errors import EdgepressError
from compress.quantize.api import quantize_onnx
from compress.quantize.graph import optimize_bert, word_embedding_gathers
from tests.quantize.helpers import TEXTS, mean_cosine, run_onnx
from tests.quantize.test_quantize import _cfg, _corpus, tiny_embedding, unreachable_floor  # noqa: F401  (fixtures)


def _table_nodes(path) -> list[onnx.NodeProto]:
    return [n for n in onnx.load(str(path)).graph.node if n.op_type == "GatherBlockQuantized"]


@pytest.mark.parametrize("method,fused", [("dynamic", False), ("dynamic", True), ("static", True), ("int4", False)])
def test_four_bit_table_replaces_only_the_word_embeddings(tiny_embedding, tmp_path, method, fused):
    onnx_path, tok = tiny_embedding
    words = word_embedding_gathers(onnx.load(str(onnx_path)))
    assert len(words) == 1
    reports = {bits: quantize_onnx(onnx_path, tmp_path / f"e{bits}", [method], tok, calibration=_corpus(),
                                   eval_data=_corpus(), config=_cfg(optimize_graph=fused, calibration_samples=8,
                                                                    embedding={"bits": bits}))
               for bits in (8, 4)}
    rec = reports[4]["methods"][method]
    out = tmp_path / "e4" / rec["path"]
    (table,) = _table_nodes(out)
    model = onnx.load(str(out))
    weights = {t.name: t for t in model.graph.initializer}
    data = weights[table.input[0]]
    # uint8 nibble pairs (the table's 32 values per row in 16 bytes), not an INT4 tensor: the fast kernel
    assert data.data_type == onnx.TensorProto.UINT8 and list(data.dims) == [tok.vocab_size, 16]
    assert onnx.helper.get_attribute_value(next(a for a in table.attribute if a.name == "bits")) == 4
    assert table.input[1] == "input_ids"
    # position / token-type tables are the method's business, not the 4-bit pass's
    assert not _table_nodes(tmp_path / "e8" / reports[8]["methods"][method]["path"])
    assert rec["attempts"][0]["embedding_table"]["nodes"] == words
    assert rec["attempts"][0]["settings"]["embedding_bits"] == 4
    assert rec["size_mb"] < reports[8]["methods"][method]["size_mb"]
    assert embedding_table_bits(out) == 4
    assert embedding_table_bits(tmp_path / "e8" / reports[8]["methods"][method]["path"]) is None
    ref = run_onnx(onnx_path, tok, TEXTS, "sentence_embedding")
    assert mean_cosine(ref, run_onnx(out, tok, TEXTS, "sentence_embedding")) >= 0.99


def test_guard_falls_back_to_the_eight_bit_table_before_float_embeddings(tiny_embedding, tmp_path, unreachable_floor):
    onnx_path, tok = tiny_embedding
    report = quantize_onnx(onnx_path, tmp_path / "out", ["dynamic"], tok, eval_data=_corpus(),
                           config=_cfg(per_channel=True, embedding={"bits": 4},
                                       guard={"retention_floor": 1.0, "sensitivity_samples": 16}))
    attempts = report["methods"]["dynamic"]["attempts"]
    labels = [a["label"] for a in attempts]
    assert labels == ["base", "reduce_range toggled", "8-bit embedding table", "float embeddings+head",
                      "float 1 most sensitive layer(s)"]
    assert [("embedding_table" in a) for a in attempts] == [True, True, False, False, False]
    assert [a["settings"]["embedding_bits"] for a in attempts] == [4, 4, 8, 8, 8]


def test_float_methods_ignore_the_table_setting(tiny_embedding, tmp_path):
    onnx_path, tok = tiny_embedding
    report = quantize_onnx(onnx_path, tmp_path / "out", ["fp16"], tok, eval_data=_corpus(),
                           config=_cfg(embedding={"bits": 4}))
    rec = report["methods"]["fp16"]
    assert "embedding_bits" not in rec["attempts"][0]["settings"]
    assert not _table_nodes(tmp_path / "out" / rec["path"])


def test_a_graph_without_a_word_embedding_gather_is_refused_in_one_line(tiny_embedding, tmp_path):
    onnx_path, tok = tiny_embedding
    fused = tmp_path / "fused.onnx"
    optimize_bert(onnx_path, fused)  # EmbedLayerNormalization swallows the lookup
    with pytest.raises(EdgepressError, match=r"quantize.embedding.bits=4: no Gather .* set quantize.embedding.bits=8"):
        quantize_onnx(fused, tmp_path / "out", ["dynamic"], tok, eval_data=_corpus(),
                      config=_cfg(embedding={"bits": 4}))


def test_block_size_must_be_a_power_of_two():
    with pytest.raises(ValueError, match="power of two"):
        _cfg(embedding={"block_size": 48})


def test_label_names_a_four_bit_table():
    shape = {"layers": 3, "heads": 36, "ffn": 1536, "hidden": 384, "vocab": 30522}
    teacher = {**shape, "layers": 6, "heads": 72}  # 12 heads a layer, as the student
    assert shape_label(shape, teacher, "int8") == "d3-p00-v30522-int8"
    assert shape_label({**shape, "embedding_bits": 4}, teacher, "int8") == "d3-p00-v30522-int8-e4"
    # exact vocabulary sizes, as the search's branch names: 16,000 and 16,400 were both v16k
    assert shape_label({**shape, "vocab": 16000}, teacher, "int8") == "d3-p00-v16k-int8"
    assert shape_label({**shape, "vocab": 16400}, teacher, "int8") == "d3-p00-v16400-int8"
    # heads and FFN pruned by their own shares; a share of heads within one head of the FFN share reads as one
    assert shape_label({**shape, "heads": 30, "ffn": 464}, teacher, "int8") == "d3-h17-f70-v30522-int8"
    assert shape_label({**shape, "heads": 24, "ffn": 1072}, teacher, "int8") == "d3-p30-v30522-int8"


def test_the_graphs_own_opset_is_kept(tmp_path):
    """ORT's quantizer bumps the opset to 21 for int4; a Normalize layer's ReduceL2(axes=...) of opset 17 would
    then be invalid (found on the sentence-transformers MiniLM export), so the original opset is restored."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from compress.quantize.methods import quantize_embedding_table

    table = np.random.default_rng(0).normal(size=(100, 64)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["W", "input_ids"], ["h"], name="words"),
         helper.make_node("ReduceL2", ["h"], ["norm"], axes=[-1], keepdims=1, name="l2")], "t",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"])],
        [helper.make_tensor_value_info("norm", TensorProto.FLOAT, ["b", "s", 1])], [numpy_helper.from_array(table, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    quantize_embedding_table(path, ["words"], 32, True)
    out = onnx.load(str(path))
    assert next(o.version for o in out.opset_import if o.domain == "") == 17
    assert [n.op_type for n in out.graph.node] == ["GatherBlockQuantized", "ReduceL2"]
    ids = np.array([[1, 2, 99]])
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input_ids": ids})[0]
    np.testing.assert_allclose(got[0, :, 0], np.linalg.norm(table[ids[0]], axis=-1), rtol=0.05)


@pytest.mark.parametrize("symmetric", [True, False])
def test_uint8_packed_table_gives_the_int4_tables_outputs_bit_for_bit(tiny_embedding, tmp_path, symmetric):
    """ORT's quantizer writes an INT4 (or UINT4 + zero points) table; repacked as uint8 nibble pairs with bits=4
    the model computes exactly the same embeddings."""
    import numpy as np
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    from compress.quantize.methods import pack_tables_as_uint8

    onnx_path, tok = tiny_embedding
    model = onnx.load(str(onnx_path))
    words = word_embedding_gathers(model)
    others = [n.name for n in model.graph.node if n.op_type == "Gather" and n.name not in words]
    quant = MatMulNBitsQuantizer(model, bits=4, block_size=16, is_symmetric=symmetric, op_types_to_quantize=("Gather",),
                                 quant_axes=(("Gather", 1),), nodes_to_exclude=others)
    quant.process()
    int4 = quant.model.model
    (table,) = [n for n in int4.graph.node if n.op_type == "GatherBlockQuantized"]
    kinds = {t.name: t.data_type for t in int4.graph.initializer}
    assert kinds[table.input[0]] == (onnx.TensorProto.INT4 if symmetric else onnx.TensorProto.UINT4)
    assert (len(table.input) > 3) != symmetric  # zero points only when asymmetric
    onnx.save(int4, str(tmp_path / "int4.onnx"))
    packed = onnx.load(str(tmp_path / "int4.onnx"))
    assert pack_tables_as_uint8(packed) == 1 and pack_tables_as_uint8(packed) == 0  # a second pass finds none
    onnx.save(packed, str(tmp_path / "uint8.onnx"))
    kinds = {t.name: t.data_type for t in packed.graph.initializer}
    assert kinds[table.input[0]] == onnx.TensorProto.UINT8
    if not symmetric:
        assert kinds[table.input[3]] == onnx.TensorProto.UINT8
    texts = [*TEXTS, "a word the tiny vocabulary spells in pieces: tokenization"]
    a = run_onnx(tmp_path / "int4.onnx", tok, texts, "sentence_embedding")
    b = run_onnx(tmp_path / "uint8.onnx", tok, texts, "sentence_embedding")
    assert np.array_equal(a, b)
