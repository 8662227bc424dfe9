"""Reference inference for an edgepress bundle: tokenize a sentence and run the model, as an app would.

Needs only onnxruntime, numpy and tokenizers (pip install onnxruntime numpy tokenizers).
    python reference.py "A sentence to encode."            # the prediction (label + scores, or the embedding)
    python reference.py "A sentence." --model model.ort    # any .onnx/.ort file listed in manifest.json
    python reference.py "A sentence." --raw                # every raw output as JSON
Port these ~40 lines to Kotlin/Swift: the manifest says the input names, dtypes, maximum length,
special tokens and what each output means.
"""

import argparse
import json
import os

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))


def encode(manifest: dict, sentence: str) -> dict:
    """Token ids, attention mask and token type ids exactly as the exported model expects them."""
    tok = Tokenizer.from_file(os.path.join(HERE, manifest["tokenizer"]["tokenizer_json"]))
    tok.no_padding()
    tok.enable_truncation(max_length=manifest["max_sequence_length"])
    enc = tok.encode(sentence)
    values = {"input_ids": enc.ids, "attention_mask": enc.attention_mask, "token_type_ids": enc.type_ids}
    return {i["name"]: np.asarray([values[i["name"]]], dtype=i["dtype"]) for i in manifest["inputs"]}


def run(sentence: str, model_file: str | None = None) -> dict:
    """Outputs of the bundle's ONNX / ORT model for one sentence, by output name."""
    with open(os.path.join(HERE, "manifest.json"), encoding="utf-8") as fh:
        manifest = json.load(fh)
    if model_file is None:
        model_file = next(m["file"] for m in manifest["models"] if m["format"] in ("onnx", "ort"))
    session = ort.InferenceSession(os.path.join(HERE, model_file), providers=["CPUExecutionProvider"])
    names = [o["name"] for o in manifest["outputs"]]
    outputs = session.run(names, encode(manifest, sentence))
    return dict(zip(names, outputs))


def predict(sentence: str, model_file: str | None = None) -> dict:
    """What an app shows: the label and class probabilities (classification), or the sentence embedding."""
    with open(os.path.join(HERE, "manifest.json"), encoding="utf-8") as fh:
        manifest = json.load(fh)
    outputs = run(sentence, model_file)
    if manifest["task"] == "classification" and manifest.get("labels"):
        logits = outputs["logits"][0].astype(np.float64)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        id2label = manifest["labels"]["id2label"]
        best = int(probs.argmax())
        return {"label": id2label[str(best)], "score": float(probs[best]),
                "scores": {id2label[str(i)]: float(p) for i, p in enumerate(probs)}}
    if manifest["task"] == "embedding":
        return {"sentence_embedding": outputs["sentence_embedding"][0].tolist(),
                "pooling": manifest["pooling"]["mode"], "normalized": manifest["pooling"]["normalized"]}
    return {name: value.tolist() for name, value in outputs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sentence")
    parser.add_argument("--model", default=None, help="model file in this bundle (default: the first one listed)")
    parser.add_argument("--raw", action="store_true", help="print every raw output instead of the prediction")
    args = parser.parse_args()
    if args.raw:
        print(json.dumps({name: value.tolist() for name, value in run(args.sentence, args.model).items()}))
    else:
        print(json.dumps(predict(args.sentence, args.model)))


if __name__ == "__main__":
    main()
