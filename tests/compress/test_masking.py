"""BERT masking proportions (15 % selected; 80/10/10 mask/random/keep) through our collator."""

import torch

from compress.distill.engine import DistillCollator, TokenizedExamples


def test_masker_proportions(tiny_bert_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    text = " ".join(["the value of the object is returned by the function"] * 4)
    ds = TokenizedExamples(tok, [text] * 400, None, None, max_length=64)
    torch.manual_seed(0)
    batch = DistillCollator(tok, 0.15)([ds[i] for i in range(len(ds))])
    original = torch.tensor([ds[i]["input_ids"] for i in range(len(ds))])
    labels = batch["mlm_labels"]
    special = torch.isin(original, torch.tensor(tok.all_special_ids))
    selected = labels != -100
    rate = selected.sum().item() / (~special).sum().item()
    assert abs(rate - 0.15) < 0.01
    assert not (selected & special).any()
    assert torch.equal(labels[selected], original[selected])
    ids = batch["input_ids"][selected]
    masked = (ids == tok.mask_token_id).float().mean().item()
    kept = (ids == original[selected]).float().mean().item()
    randomised = 1 - masked - kept
    assert abs(masked - 0.8) < 0.03
    assert abs(kept - 0.1) < 0.03
    assert abs(randomised - 0.1) < 0.03
