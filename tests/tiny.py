"""Tiny randomly initialised BERT-family models and a small WordPiece tokenizer, built offline."""

from __future__ import annotations

import collections
import re
from pathlib import Path
from typing import Any

import torch

from compress.data.rows import builtin_pydoc_sentences

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def write_vocab(folder: Path, size: int = 600) -> Path:
    """A WordPiece vocab: specials, characters (+ ## forms), the commonest words of the demo corpus."""
    words = collections.Counter(w for s in builtin_pydoc_sentences() for w in re.findall(r"[a-z]+", s.lower()))
    chars = sorted({c for c in "abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"()-_*/=<>[]{}"})
    vocab = SPECIALS + chars + ["##" + c for c in chars if c.isalnum()]
    vocab += [w for w, _ in words.most_common(size) if w not in vocab]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n")
    return path


def save_tokenizer(folder: Path, arch: str = "bert"):
    from transformers import BertTokenizerFast

    vocab = write_vocab(folder)
    tok = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    tok.save_pretrained(folder)
    return tok


ARCH_CONFIGS = {
    "bert": ("BertConfig", dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)),
    "distilbert": ("DistilBertConfig", dict(dim=32, n_layers=2, n_heads=4, hidden_dim=64)),
    "roberta": ("RobertaConfig", dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                      pad_token_id=0, bos_token_id=2, eos_token_id=3)),
}

HEAD_CLASSES = {
    "embedding": "AutoModel",
    "mlm": "AutoModelForMaskedLM",
    "classification": "AutoModelForSequenceClassification",
    "regression": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "question-answering": "AutoModelForQuestionAnswering",
}
NER_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}


def make_tiny_model(folder: Path, arch: str = "bert", head: str = "mlm", num_layers: int | None = None,
                    seed: int = 0) -> Path:
    """Save a tiny random model of ``arch`` with ``head`` plus a tokenizer into ``folder``."""
    import transformers

    torch.manual_seed(seed)
    tok = save_tokenizer(folder)
    cfg_name, kw = ARCH_CONFIGS[arch]
    kw = dict(kw, vocab_size=len(tok), max_position_embeddings=130)
    if num_layers is not None:
        kw["n_layers" if arch == "distilbert" else "num_hidden_layers"] = num_layers
    if head == "regression":
        kw.update(num_labels=1, problem_type="regression")
    elif head == "classification":
        kw.update(num_labels=2)
    elif head == "token-classification":
        kw.update(id2label=NER_LABELS, label2id={v: k for k, v in NER_LABELS.items()})
    config = getattr(transformers, cfg_name)(**kw)
    model = getattr(transformers, HEAD_CLASSES[head]).from_config(config)
    model.eval()
    model.save_pretrained(folder)
    return folder


def torch_tags(model_dir: Path, words: list[list[str]]) -> list[list[str]]:
    """Each word's tag from a PyTorch token-classification model: argmax at its first sub-token (run_ner's alignment),
    one row at a time — the reference the ONNX scorers are checked against."""
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForTokenClassification.from_pretrained(model_dir)
    out = []
    for row in words:
        enc = tok(row, is_split_into_words=True, return_tensors="pt")
        with torch.no_grad():
            best = model(**enc).logits[0].argmax(-1).tolist()
        ids = enc.word_ids()
        out.append([model.config.id2label[best[ids.index(w)]] for w in range(len(row))])
    return out


def make_tiny_roberta(folder: Path, head: str = "token-classification", seed: int = 0) -> Path:
    """A tiny random RoBERTa model (``head``) with a byte-level BPE tokenizer trained here: such a
    tokenizer, loaded as saved (no ``add_prefix_space``), refuses pre-split words."""
    import transformers
    from tokenizers import ByteLevelBPETokenizer

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(builtin_pydoc_sentences(), vocab_size=400, min_frequency=2,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(folder))
    tok = transformers.RobertaTokenizerFast(vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt"))
    tok.save_pretrained(folder)
    config = transformers.RobertaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                        intermediate_size=64, max_position_embeddings=130, pad_token_id=1,
                                        bos_token_id=0, eos_token_id=2, id2label=NER_LABELS,
                                        label2id={v: k for k, v in NER_LABELS.items()})
    getattr(transformers, HEAD_CLASSES[head]).from_config(config).eval().save_pretrained(folder)
    return folder


def sts_run_config(teacher_dir: Path, shared_data: Path, tmp_path: Path, **sections: Any) -> dict:
    """A run config on a tiny embedding teacher distilled to 1 layer (2 steps) on 64 STS-B rows, 16 eval rows;
    ``sections`` add or replace top-level keys (stages, search, export, ...)."""
    return {
        "output_dir": str(tmp_path / "runs"), "task": "embedding",
        "teacher": {"model": str(teacher_dir), "max_length": 32},
        "data": {"train": str(shared_data / "stsb" / "dev.tsv"), "test": str(shared_data / "stsb" / "test.tsv"),
                 "text_column": "sentence1", "text_pair_column": "sentence2", "label_column": "score",
                 "max_train_samples": 64, "max_eval_samples": 16},
        "student": {"num_layers": 1},
        "distill": {"max_steps": 2, "batch_size": 16},
        **sections,
    }
