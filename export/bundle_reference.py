"""Reference inference for an edgepress bundle: tokenize text and run the model, as an app would.

Needs only onnxruntime, numpy and tokenizers (pip install onnxruntime numpy tokenizers).
    python reference.py "A sentence to encode."            # the prediction (label + scores, entities, or the embedding)
    python reference.py "A sentence." --model model.ort    # any .onnx/.ort file listed in manifest.json
    python reference.py "Who wrote it?" --context "..."    # question answering: the question, then the context
    python reference.py "A sentence." --raw                # every raw output as JSON
Port these lines to Kotlin/Swift: the manifest says the input names, dtypes, maximum length, special
tokens, labels and what each output means.
"""

import argparse
import json
import os

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))


def load_manifest() -> dict:
    with open(os.path.join(HERE, "manifest.json"), encoding="utf-8") as fh:
        return json.load(fh)


def bundle_file(relative: str, what: str) -> str:
    """The path of a file inside this bundle; a path that leads outside it (absolute, '..', a link) is refused."""
    root = os.path.realpath(HERE)
    path = os.path.realpath(os.path.join(root, str(relative)))
    if os.path.commonpath([root, path]) != root or path == root:
        raise SystemExit(f"error: {what} '{relative}' is outside the bundle folder {root}; a bundle only reads its "
                         "own files: fix manifest.json or re-export the bundle")
    return path


def tokenize(manifest: dict, text: str, pair: str | None = None):
    """The tokenizers Encoding (ids, offsets, word ids) exactly as the exported model expects it."""
    tok = Tokenizer.from_file(bundle_file(manifest["tokenizer"]["tokenizer_json"], "manifest tokenizer.tokenizer_json"))
    tok.no_padding()
    tok.enable_truncation(max_length=manifest["max_sequence_length"])
    return tok.encode(text, pair) if pair is not None else tok.encode(text)


def feeds(manifest: dict, enc) -> dict:
    values = {"input_ids": enc.ids, "attention_mask": enc.attention_mask, "token_type_ids": enc.type_ids}
    return {i["name"]: np.asarray([values[i["name"]]], dtype=i["dtype"]) for i in manifest["inputs"]}


def run(text: str, model_file: str | None = None, pair: str | None = None) -> dict:
    """Outputs of the bundle's ONNX / ORT model for one input, by output name."""
    manifest = load_manifest()
    what = "--model"
    if model_file is None:
        model_file, what = next(m["file"] for m in manifest["models"] if m["format"] in ("onnx", "ort")), "manifest model"
    session = ort.InferenceSession(bundle_file(model_file, what), providers=["CPUExecutionProvider"])
    names = [o["name"] for o in manifest["outputs"]]
    outputs = session.run(names, feeds(manifest, tokenize(manifest, text, pair)))
    return dict(zip(names, outputs))


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def entities(manifest: dict, text: str, logits: np.ndarray) -> list:
    """Each word's tag from its first sub-token; B-X/I-X (and S-/E-) runs merged into spans with char offsets."""
    enc = tokenize(manifest, text)
    id2label = manifest["labels"]["id2label"]
    probs = softmax(logits.astype(np.float64))
    words = []  # (label, score, start, end) per word
    seen = set()
    for k, word in enumerate(enc.word_ids):
        if word is None or word in seen:
            continue
        seen.add(word)
        best = int(probs[k].argmax())
        words.append((id2label[str(best)], float(probs[k, best]), enc.offsets[k][0], enc.offsets[k][1]))
    for k, word in enumerate(enc.word_ids):  # a word's end is its last sub-token's end
        if word is not None:
            label, score, start, _ = words[word]
            words[word] = (label, score, start, enc.offsets[k][1])
    spans, current = [], None
    for label, score, start, end in words:
        prefix, _, kind = label.partition("-")
        if label == "O" or not kind:
            current = None
            continue
        if current is not None and prefix in ("I", "E") and current["entity"] == kind:
            current.update(end=end, scores=current["scores"] + [score])
        else:
            current = {"entity": kind, "start": start, "end": end, "scores": [score]}
            spans.append(current)
        if prefix in ("E", "S"):
            current = None
    return [{"entity": s["entity"], "text": text[s["start"]:s["end"]], "start": s["start"], "end": s["end"],
             "score": float(np.mean(s["scores"]))} for s in spans]


def answer(manifest: dict, question: str, context: str, outputs: dict, max_answer_tokens: int = 30) -> dict:
    """The best context span by start + end logit ('' when the [CLS] null answer beats it by more than the
    manifest's no_answer_threshold)."""
    enc = tokenize(manifest, question, context)
    start, end = outputs["start_logits"][0], outputs["end_logits"][0]
    ctx = [k for k, s in enumerate(enc.sequence_ids) if s == 1]
    null = float(start[0] + end[0])  # the null answer at [CLS]
    best = (float("-inf"), None, None)
    for a in ctx:
        for b in ctx:
            if a <= b < a + max_answer_tokens and start[a] + end[b] > best[0]:
                best = (float(start[a] + end[b]), a, b)
    score, a, b = best
    if a is None or null - score > float(manifest.get("no_answer_threshold") or 0.0):
        return {"answer": "", "score": null, "start": None, "end": None}
    s_char, e_char = enc.offsets[a][0], enc.offsets[b][1]
    return {"answer": context[s_char:e_char], "score": score, "start": s_char, "end": e_char}


def predict(text: str, model_file: str | None = None, context: str | None = None) -> dict:
    """What an app shows: label + scores, entities with character offsets, an answer span, or the embedding."""
    manifest = load_manifest()
    task = manifest["task"]
    if task == "question-answering":
        if context is None:
            raise SystemExit("question answering needs --context CONTEXT (the question is the first argument)")
        return answer(manifest, text, context, run(text, model_file, context))
    outputs = run(text, model_file)
    if task == "classification" and manifest.get("labels"):
        probs = softmax(outputs["logits"][0].astype(np.float64))
        id2label = manifest["labels"]["id2label"]
        best = int(probs.argmax())
        return {"label": id2label[str(best)], "score": float(probs[best]),
                "scores": {id2label[str(i)]: float(p) for i, p in enumerate(probs)}}
    if task == "token-classification":
        return {"entities": entities(manifest, text, outputs["logits"][0])}
    if task == "embedding":
        return {"sentence_embedding": outputs["sentence_embedding"][0].tolist(),
                "pooling": manifest["pooling"]["mode"], "normalized": manifest["pooling"]["normalized"]}
    return {name: value.tolist() for name, value in outputs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text", help="the sentence (the question, for question answering)")
    parser.add_argument("--context", default=None, help="question answering: the passage to find the answer in")
    parser.add_argument("--model", default=None, help="model file in this bundle (default: the first one listed)")
    parser.add_argument("--raw", action="store_true", help="print every raw output instead of the prediction")
    args = parser.parse_args()
    if args.raw:
        print(json.dumps({name: value.tolist() for name, value in run(args.text, args.model, args.context).items()}))
    else:
        print(json.dumps(predict(args.text, args.model, args.context)))


if __name__ == "__main__":
    main()
