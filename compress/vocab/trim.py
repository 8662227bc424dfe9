"""Trim a WordPiece vocabulary to the tokens a domain uses, rewriting the tokenizer and the embeddings together.

What to keep (``select_tokens``) is separate from how to cut (``trim_tokenizer`` / ``trim_embeddings``).
The kept tokens keep their relative order; special tokens always stay. WordPiece is greedy longest-match,
so a text whose tokens were all kept is tokenized exactly as before (any longer match would have been
picked before too), and the model's outputs on it are bit-identical. A word that used dropped tokens is
re-spelled with kept pieces (every single character stays by default), and becomes ``[UNK]`` only when
no kept piece matches. Like TextPruner's vocabulary pruning, this needs the tokenizer to be rewritable:
BPE/Unigram tokenizers (RoBERTa, XLM-R) are refused rather than silently approximated.
"""

from __future__ import annotations

import collections
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from compress.core.errors import EdgepressError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from compress.vocab.config import VocabConfig

@dataclass
class Coverage:
    """How well the kept vocabulary covers a text set (under the original tokenization)."""

    tokens: int  # tokens of the text under the original vocabulary
    kept: int  # of those, still in the vocabulary
    unk_before: int  # [UNK] tokens under the original vocabulary
    unk_after: int  # [UNK] tokens under the trimmed vocabulary

    @property
    def share_kept(self) -> float:
        return self.kept / self.tokens if self.tokens else 1.0

    @property
    def new_unk(self) -> int:
        return self.unk_after - self.unk_before

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "share_kept": round(self.share_kept, 6), "new_unk": self.new_unk}


def _check_wordpiece(tokenizer: "PreTrainedTokenizerBase") -> dict[str, Any]:
    if not getattr(tokenizer, "is_fast", False):
        raise EdgepressError("vocabulary trimming needs a fast tokenizer (tokenizer.json); load it with use_fast=True")
    data = json.loads(tokenizer.backend_tokenizer.to_str())
    kind = (data.get("model") or {}).get("type")
    if kind != "WordPiece":
        raise EdgepressError(f"vocabulary trimming supports WordPiece tokenizers (BERT, DistilBERT, MiniLM, ELECTRA); "
                             f"this one is {kind} (RoBERTa/XLM-R style): remove the trim_vocab stage")
    return data


def token_counts(tokenizer: "PreTrainedTokenizerBase", texts: Iterable[str], max_length: int,
                 batch: int = 1024) -> collections.Counter:
    """How often each token id occurs in ``texts`` (special tokens excluded)."""
    counts: collections.Counter = collections.Counter()
    chunk: list[str] = []

    def flush() -> None:
        enc = tokenizer(chunk, add_special_tokens=False, truncation=True, max_length=max_length)
        for ids in enc["input_ids"]:
            counts.update(ids)
        chunk.clear()

    for text in texts:
        chunk.append(text)
        if len(chunk) >= batch:
            flush()
    if chunk:
        flush()
    return counts


def select_tokens(tokenizer: "PreTrainedTokenizerBase", counts: collections.Counter, cfg: "VocabConfig") -> list[int]:
    """Old ids to keep, ascending: specials, (characters), then the most frequent used tokens within the target."""
    vocab = tokenizer.get_vocab()
    special = set(tokenizer.all_special_ids)
    prefix = _check_wordpiece(tokenizer)["model"].get("continuing_subword_prefix", "##")
    chars = set()
    if cfg.keep_characters:
        chars = {i for t, i in vocab.items() if len(t) == 1 or (t.startswith(prefix) and len(t) == len(prefix) + 1)}
    base = special | chars
    used = [(c, i) for i, c in counts.items() if c >= cfg.min_count and i not in base]
    used.sort(key=lambda x: (-x[0], x[1]))
    if cfg.max_size is not None:
        room = cfg.max_size - len(base)
        if room < 0:
            raise EdgepressError(f"vocab.max_size={cfg.max_size} is below the {len(base)} tokens that always stay "
                                 f"({len(special)} special{f' + {len(chars)} characters' if chars else ''}); raise it "
                                 "or set vocab.keep_characters=false")
        used = used[:room]
    elif cfg.coverage is not None:
        total = sum(counts.values()) or 1
        covered = sum(c for i, c in counts.items() if i in base)
        picked = []
        for c, i in used:
            if covered / total >= cfg.coverage:
                break
            picked.append((c, i))
            covered += c
        used = picked
    return sorted(base | {i for _, i in used})


def _remap_json_ids(node: Any, mapping: dict[int, int], key_path: str = "") -> Any:
    """Token ids under ``ids`` lists and ``id`` fields of added tokens, mapped old -> new."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "ids" and isinstance(v, list) and all(isinstance(x, int) for x in v):
                out[k] = [mapping[x] for x in v]
            else:
                out[k] = _remap_json_ids(v, mapping, f"{key_path}.{k}")
        return out
    if isinstance(node, list):
        return [_remap_json_ids(v, mapping, key_path) for v in node]
    return node


def trim_tokenizer(tokenizer: "PreTrainedTokenizerBase", keep: list[int], out_dir: Path) -> "PreTrainedTokenizerBase":
    """Write the tokenizer with only ``keep`` (old ids, new id = position) into ``out_dir`` and load it back."""
    from transformers import AutoTokenizer

    data = _check_wordpiece(tokenizer)
    mapping = {old: new for new, old in enumerate(keep)}
    id_to_token = {i: t for t, i in tokenizer.get_vocab().items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(out_dir))
    data["model"]["vocab"] = {id_to_token[old]: new for old, new in mapping.items()}
    data["added_tokens"] = [{**t, "id": mapping[t["id"]]} for t in data.get("added_tokens", []) if t["id"] in mapping]
    if data.get("post_processor"):
        data["post_processor"] = _remap_json_ids(data["post_processor"], mapping)
    (out_dir / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False, indent=2))
    (out_dir / "vocab.txt").write_text("".join(id_to_token[old] + "\n" for old in keep), encoding="utf-8")
    cfg_path = out_dir / "tokenizer_config.json"
    tcfg = json.loads(cfg_path.read_text())
    if "added_tokens_decoder" in tcfg:
        tcfg["added_tokens_decoder"] = {str(mapping[int(k)]): v for k, v in tcfg["added_tokens_decoder"].items()
                                        if int(k) in mapping}
    cfg_path.write_text(json.dumps(tcfg, ensure_ascii=False, indent=2))
    trimmed = AutoTokenizer.from_pretrained(str(out_dir))
    check_tokenizer(tokenizer, trimmed, keep)
    return trimmed


def check_tokenizer(original: "PreTrainedTokenizerBase", trimmed: "PreTrainedTokenizerBase", keep: list[int]) -> None:
    """Every kept token has its new id in the trimmed tokenizer; special tokens keep their roles."""
    old_vocab = {i: t for t, i in original.get_vocab().items()}
    new_vocab = trimmed.get_vocab()
    if len(new_vocab) != len(keep):
        raise EdgepressError(f"trimmed tokenizer has {len(new_vocab)} tokens, expected {len(keep)} (internal error)")
    for new, old in enumerate(keep):
        if new_vocab.get(old_vocab[old]) != new:
            raise EdgepressError(f"trimmed tokenizer maps '{old_vocab[old]}' to {new_vocab.get(old_vocab[old])}, "
                                 f"expected {new} (internal error)")
    for role in ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token"):
        if getattr(original, role, None) != getattr(trimmed, role, None):
            raise EdgepressError(f"trimmed tokenizer lost its {role} ({getattr(original, role, None)!r})")


def trim_embeddings(model: "PreTrainedModel", keep: list[int], pad_token_id: int | None) -> "PreTrainedModel":
    """Keep only the ``keep`` rows of the word embeddings (and of a tied output layer), in place."""
    import torch

    emb = model.get_input_embeddings()
    idx = torch.tensor(keep, dtype=torch.long)
    new = torch.nn.Embedding(len(keep), emb.embedding_dim, padding_idx=pad_token_id, dtype=emb.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(emb.weight[idx])
    model.set_input_embeddings(new)
    out = model.get_output_embeddings()
    if out is not None:  # an MLM head: its decoder rows (tied to the embeddings) and bias follow
        with torch.no_grad():
            if out.weight.shape[0] != len(keep):
                out.weight = new.weight if getattr(model.config, "tie_word_embeddings", True) else \
                    torch.nn.Parameter(out.weight[idx].clone())
            if getattr(out, "bias", None) is not None and out.bias.shape[0] != len(keep):
                out.bias = torch.nn.Parameter(out.bias[idx].clone())
            out.out_features = len(keep)
        heads = [m for m in model.modules() if hasattr(m, "decoder") and hasattr(m, "bias")
                 and isinstance(getattr(m, "bias"), torch.nn.Parameter)]
        for head in heads:  # BertLMPredictionHead keeps its own reference to the bias
            head.bias = out.bias
    model.config.vocab_size = len(keep)
    return model


def remap_config_ids(model: "PreTrainedModel", mapping: dict[int, int]) -> None:
    """pad/bos/eos/sep/cls token ids in the model config, old -> new."""
    for key in ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id", "mask_token_id"):
        old = getattr(model.config, key, None)
        if isinstance(old, int):
            if old not in mapping:
                raise EdgepressError(f"config.{key}={old} is not among the kept tokens (internal error)")
            setattr(model.config, key, mapping[old])


def coverage(original: "PreTrainedTokenizerBase", trimmed: "PreTrainedTokenizerBase", keep: list[int],
             texts: list[str], max_length: int) -> Coverage:
    """Share of the texts' tokens still in the vocabulary and the [UNK] count before and after."""
    kept = set(keep)
    before = original(texts, add_special_tokens=False, truncation=True, max_length=max_length)["input_ids"]
    after = trimmed(texts, add_special_tokens=False, truncation=True, max_length=max_length)["input_ids"]
    flat = [i for ids in before for i in ids]
    unk_b, unk_a = original.unk_token_id, trimmed.unk_token_id
    return Coverage(tokens=len(flat), kept=sum(i in kept for i in flat), unk_before=sum(i == unk_b for i in flat),
                    unk_after=sum(i == unk_a for ids in after for i in ids))


def trim_model_folder(model: "PreTrainedModel", tokenizer: "PreTrainedTokenizerBase", keep: list[int],
                      out_dir: Path) -> tuple["PreTrainedModel", "PreTrainedTokenizerBase"]:
    """The model and tokenizer with only ``keep``; the tokenizer is written to ``out_dir`` (the model is not)."""
    trimmed_tok = trim_tokenizer(tokenizer, keep, out_dir)
    mapping = {old: new for new, old in enumerate(keep)}
    remap_config_ids(model, mapping)
    trim_embeddings(model, keep, trimmed_tok.pad_token_id)
    return model, trimmed_tok
