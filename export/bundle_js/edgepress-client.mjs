/**
 * Reference inference for an edgepress bundle in JavaScript: the same predictions as reference.py, in Node
 * (onnxruntime-node) and in browsers (onnxruntime-web, see index.html).
 *
 *   npm ci                                            # once, in this folder: the pinned packages of package.json
 *   node edgepress-client.mjs "A sentence to encode."   # label + scores, entities, or the embedding (JSON)
 *   node edgepress-client.mjs "Who wrote it?" --context "..."  # question answering: the question, then the context
 *   node edgepress-client.mjs "A sentence." --model model.onnx --raw   # any listed model file; every raw output
 *
 * In code (Node or a browser): const bundle = await EdgepressBundle.load(); await bundle.predict("text").
 * Tokenization is @huggingface/tokenizers (the tokenizer of transformers.js) reading tokenizer/tokenizer.json;
 * input names, maximum length, output names, labels and the no-answer threshold come from manifest.json.
 */
import { Tokenizer } from "@huggingface/tokenizers";

const IN_NODE = typeof window === "undefined" && typeof process !== "undefined" && !!process.versions?.node;
const HERE = new URL("./", import.meta.url);

/** An input this client cannot handle (bad arguments, a text it cannot align): one line for the user. */
export class ClientError extends Error {}

/** The URL of a file of the bundle; a path leading outside the bundle folder (absolute, '..') is refused. */
function bundleUrl(base, rel, what) {
  const url = new URL(String(rel), base);
  if (!url.href.startsWith(base.href) || url.href === base.href) {
    throw new ClientError(`${what} '${rel}' is outside the bundle folder ${base.href}; a bundle only reads its own files: fix manifest.json or re-export the bundle`);
  }
  return url;
}

async function readBytes(base, rel, what = "file") {
  const url = bundleUrl(base, rel, what);
  if (IN_NODE && url.protocol === "file:") {
    const { readFile } = await import("node:fs/promises");
    try {
      return new Uint8Array(await readFile(url));
    } catch (err) {
      throw new ClientError(`cannot read '${decodeURIComponent(url.pathname)}' of the bundle: ${err.code ?? err.message}`);
    }
  }
  const res = await fetch(url);
  if (!res.ok) throw new ClientError(`cannot fetch '${url.href}' of the bundle: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

async function readJson(base, rel, what) {
  return JSON.parse(new TextDecoder().decode(await readBytes(base, rel, what)));
}

async function loadOrt() {
  const mod = IN_NODE ? await import("onnxruntime-node") : await import("onnxruntime-web");
  const ort = mod.InferenceSession ? mod : mod.default;
  if (!IN_NODE) ort.env.wasm.numThreads = 1; // threads need a cross-origin-isolated page; one is enough here
  return ort;
}

function softmax(row) {
  const top = Math.max(...row);
  const e = row.map((x) => Math.exp(x - top));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
}

function argmax(row) {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** A tensor as nested arrays (what numpy's tolist() gives). */
function toList(tensor) {
  const data = Array.from(tensor.data, Number);
  const nest = (dims, offset) => {
    if (dims.length === 0) return data[offset];
    const step = dims.slice(1).reduce((a, b) => a * b, 1);
    return Array.from({ length: dims[0] }, (_, i) => nest(dims.slice(1), offset + i * step));
  };
  return nest(tensor.dims.map(Number), 0);
}

/**
 * Python tokenizers' longest_first truncation of a pair (tokenizers/src/utils/truncation.rs), so that the
 * model sees what reference.py feeds it: [SEP] kept, the longer segment cut first.
 */
function truncationLengths(n1, n2, budget) {
  if (n2 === null) return [Math.min(n1, budget), null];
  if (n1 + n2 <= budget) return [n1, n2];
  const swap = n1 > n2;
  let [a, b] = swap ? [n2, n1] : [n1, n2];
  b = a > budget ? a : Math.max(a, budget - a);
  if (a + b > budget) {
    a = Math.floor(budget / 2);
    b = a + (budget % 2);
  }
  return swap ? [b, a] : [a, b];
}

/** The model inputs for one text (or a pair) with what reference.py reads off a tokenizers Encoding. */
export class Encoding {
  constructor(ids, typeIds, offsets, wordIds, sequenceIds) {
    this.ids = ids;
    this.attention_mask = ids.map(() => 1);
    this.type_ids = typeIds;
    this.offsets = offsets; // [start, end] in code points of the segment's text; [0, 0] for special tokens
    this.word_ids = wordIds; // index of the pre-tokenizer's word within its segment; null for special tokens
    this.sequence_ids = sequenceIds; // 0 for the text, 1 for the pair, null for special tokens
  }
}

/** Where each piece of a byte-level BPE word lies in its decoded text, spaces trimmed (trim_offsets). */
function byteLevelSpans(pieces, byteDecoder) {
  const bytes = Uint8Array.from(pieces.flatMap((p) => Array.from(p, (c) => byteDecoder[c])));
  const surface = new TextDecoder().decode(bytes);
  const unitAt = []; // UTF-16 index in `surface` of the character each byte belongs to
  const unitEnd = [];
  let unit = 0;
  for (const ch of surface) {
    const n = new TextEncoder().encode(ch).length;
    for (let i = 0; i < n; i++) {
      unitAt.push(unit);
      unitEnd.push(unit + ch.length);
    }
    unit += ch.length;
  }
  let b = 0;
  const spans = pieces.map((p) => {
    const [b0, b1] = [b, b + Array.from(p).length];
    b = b1;
    let [start, end] = [unitAt[b0], unitEnd[b1 - 1]];
    const text = surface.slice(start, end);
    const lead = text.length - text.replace(/^ +/, "").length;
    const trail = text.length - text.replace(/ +$/, "").length;
    start += lead;
    end = Math.max(end - trail, start);
    return [start, end];
  });
  return { surface, pieces: spans };
}

/** Where each piece of a word lies in its decoded text: the growth of the decoded prefix (WordPiece ##, Metaspace). */
function decodedSpans(pieces, word, decode, unk) {
  const full = decode([word]);
  const surface = full.trim();
  const lead = full.length - full.trimStart().length;
  if (pieces.includes(unk) || decode(pieces).trim() !== surface) { // [UNK] stands for its whole word
    return { surface, pieces: pieces.map(() => [0, surface.length]) };
  }
  let prev = 0;
  const spans = pieces.map((_, k) => {
    const upto = Math.max(decode(pieces.slice(0, k + 1)).length - lead, 0);
    let start = Math.min(prev, upto);
    prev = upto;
    while (start < upto && /\s/.test(surface[start])) start++;
    return [start, upto];
  });
  return { surface, pieces: spans };
}

/** An edgepress bundle (manifest, tokenizer, ONNX Runtime session) read from a folder or URL. */
export class EdgepressBundle {
  constructor(base, manifest, tokenizer, ort) {
    this.base = base;
    this.manifest = manifest;
    this.tokenizer = tokenizer;
    this.ort = ort;
    this.sessions = new Map();
  }

  /** Read manifest.json and the tokenizer from ``base`` (default: the folder holding this file). */
  static async load(base = HERE) {
    base = new URL(base, HERE);
    if (!base.href.endsWith("/")) base = new URL(base.href + "/");
    const manifest = await readJson(base, "manifest.json");
    const tokInfo = manifest.tokenizer;
    const tokJson = await readJson(base, tokInfo.tokenizer_json, "manifest tokenizer.tokenizer_json");
    const cfgFile = tokInfo.files.find((f) => f.endsWith("tokenizer_config.json"));
    const tokConfig = cfgFile ? await readJson(base, cfgFile, "manifest tokenizer.files") : {};
    const bundle = new EdgepressBundle(base, manifest, new Tokenizer(tokJson, tokConfig), await loadOrt());
    // Python tokenizers' RobertaProcessing gives every token type id 0 (RoBERTa has one type); tokenizers.js gives
    // the pair 1, which such a model's embedding table does not have
    bundle.singleTypeId = tokJson.post_processor?.type === "RobertaProcessing";
    return bundle;
  }

  /** The first ONNX/ORT model of the manifest (the compressed one when the bundle has it) or ``file``. */
  modelFile(file = null) {
    const listed = this.manifest.models.filter((m) => m.format === "onnx" || m.format === "ort").map((m) => m.file);
    if (file === null) return listed[0];
    if (!listed.includes(file)) {
      throw new ClientError(`--model '${file}' is not an ONNX/ORT file of manifest.json (models: ${listed.join(", ")})`);
    }
    return file;
  }

  async session(file) {
    if (!this.sessions.has(file)) {
      const url = bundleUrl(this.base, file, "model file");
      const { fileURLToPath } = IN_NODE ? await import("node:url") : {};
      const where = IN_NODE && url.protocol === "file:" ? fileURLToPath(url) : url.href;
      this.sessions.set(file, this.ort.InferenceSession.create(where, { executionProviders: ["cpu"] }));
    }
    return this.sessions.get(file);
  }

  /** The tokens of one segment, each with its word (the pre-tokenizer's) and character span in ``text``. */
  segment(text) {
    const tok = this.tokenizer;
    const chars = Array.from(text); // code points: Python's str indices, which reference.py's offsets use
    let norm = "";
    const origin = []; // code point of `text` behind each UTF-16 unit of the normalized text
    chars.forEach((ch, i) => {
      const n = tok.normalizer ? tok.normalizer(ch) : ch;
      norm += n;
      for (let k = 0; k < n.length; k++) origin.push(i);
    });
    if (tok.normalizer && tok.normalizer(text) !== norm) {
      throw new ClientError("this tokenizer's normalizer joins characters, so tokens cannot be mapped back to the text");
    }
    const words = tok.pre_tokenizer ? tok.pre_tokenizer(norm) : [norm];
    const tokens = [];
    const wordIds = [];
    const offsets = [];
    const unk = tok.model.unk_token;
    const decode = (pieces) => (tok.decoder ? tok.decoder(pieces) : pieces.join(""));
    const byteDecoder = tok.decoder?.byte_decoder; // byte-level BPE: each character of a piece is one UTF-8 byte
    let cursor = 0;
    words.forEach((word, w) => {
      const pieces = tok.model([word]);
      const spans = byteDecoder && Array.from(word).every((c) => c in byteDecoder)
        ? byteLevelSpans(pieces, byteDecoder) : decodedSpans(pieces, word, decode, unk);
      const found = spans.surface === "" ? -1 : norm.indexOf(spans.surface, cursor);
      if (found < 0) throw new ClientError(`cannot find the word '${spans.surface}' in the normalized text`);
      cursor = found + spans.surface.length;
      pieces.forEach((piece, k) => {
        const [start, end] = [found + spans.pieces[k][0], found + spans.pieces[k][1]];
        tokens.push(piece);
        wordIds.push(w);
        // an empty span sits where its (trimmed) characters would start, as Python tokenizers puts it
        offsets.push(start < end ? [origin[start], origin[end - 1] + 1]
          : Array(2).fill(start < origin.length ? origin[start] : chars.length));
      });
    });
    const expected = tok.tokenize(text);
    if (expected.length !== tokens.length || expected.some((t, i) => t !== tokens[i])) {
      throw new ClientError("the tokenizer's words do not add up to its tokens for this text; cannot map them to characters");
    }
    return { tokens, wordIds, offsets };
  }

  /** Tokenize ``text`` (and ``pair``) as reference.py does: truncated to the manifest's max length, specials added. */
  tokenize(text, pair = null) {
    const tok = this.tokenizer;
    const post = (a, b) => (tok.post_processor ? tok.post_processor(a, b, true)
      : { tokens: [...a, ...(b ?? [])], token_type_ids: [...a.map(() => 0), ...(b ?? []).map(() => 1)] });
    const first = this.segment(text);
    const second = pair === null ? null : this.segment(pair);
    const added = post([], pair === null ? null : []).tokens.length;
    const budget = Math.max(this.manifest.max_sequence_length - added, 0);
    const [n1, n2] = truncationLengths(first.tokens.length, second ? second.tokens.length : null, budget);
    const segs = [first, second].filter(Boolean);
    const keep = [n1, n2];
    // markers show where the post-processor puts each segment's tokens around its special tokens
    const markers = segs.map((s, j) => Array.from({ length: keep[j] }, (_, i) => `\u0000${j}:${i}`));
    const out = post(markers[0], segs.length > 1 ? markers[1] : null);
    const ids = [], typeIds = [], offsets = [], wordIds = [], sequenceIds = [];
    out.tokens.forEach((t, p) => {
      const m = /^\u0000(\d):(\d+)$/.exec(t);
      const seg = m ? segs[Number(m[1])] : null;
      const i = m ? Number(m[2]) : -1;
      const token = m ? seg.tokens[i] : t;
      ids.push(tok.token_to_id(token) ?? tok.token_to_id(tok.model.unk_token));
      typeIds.push(this.singleTypeId ? 0 : out.token_type_ids?.[p] ?? 0);
      offsets.push(m ? seg.offsets[i] : [0, 0]);
      wordIds.push(m ? seg.wordIds[i] : null);
      sequenceIds.push(m ? Number(m[1]) : null);
    });
    if (n1 === first.tokens.length && (second === null || n2 === second.tokens.length)) {
      const lib = tok.encode(text, { text_pair: pair }).ids;
      if (lib.length !== ids.length || lib.some((id, i) => id !== ids[i])) {
        throw new ClientError("the aligned tokens differ from the tokenizer's own encoding of this text");
      }
    }
    return new Encoding(ids, typeIds, offsets, wordIds, sequenceIds);
  }

  feeds(enc) {
    const values = { input_ids: enc.ids, attention_mask: enc.attention_mask, token_type_ids: enc.type_ids };
    const feeds = {};
    for (const input of this.manifest.inputs) {
      if (input.dtype !== "int64") throw new ClientError(`input '${input.name}' has dtype ${input.dtype}; this client feeds int64`);
      feeds[input.name] = new this.ort.Tensor("int64", BigInt64Array.from(values[input.name].map(BigInt)), [1, enc.ids.length]);
    }
    return feeds;
  }

  /** Every output of the model for one input, by the manifest's output names (ONNX Runtime tensors). */
  async run(text, { model = null, pair = null } = {}) {
    const session = await this.session(this.modelFile(model));
    const result = await session.run(this.feeds(this.tokenize(text, pair)));
    const outputs = {};
    for (const o of this.manifest.outputs) outputs[o.name] = result[o.name];
    return outputs;
  }

  /** Each word's tag from its first sub-token; B-X/I-X (and S-/E-) runs merged into spans with char offsets. */
  entities(text, logits) {
    const enc = this.tokenize(text);
    const id2label = this.manifest.labels.id2label;
    const chars = Array.from(text);
    const words = [];
    const seen = new Set();
    enc.word_ids.forEach((word, k) => {
      if (word === null || seen.has(word)) return;
      seen.add(word);
      const probs = softmax(logits[k]);
      const best = argmax(probs);
      words.push([id2label[String(best)], probs[best], enc.offsets[k][0], enc.offsets[k][1]]);
    });
    enc.word_ids.forEach((word, k) => { // a word's end is its last sub-token's end
      if (word !== null) words[word][3] = enc.offsets[k][1];
    });
    const spans = [];
    let current = null;
    for (const [label, score, start, end] of words) {
      const dash = label.indexOf("-");
      const prefix = dash < 0 ? label : label.slice(0, dash);
      const kind = dash < 0 ? "" : label.slice(dash + 1);
      if (label === "O" || !kind) {
        current = null;
        continue;
      }
      if (current !== null && (prefix === "I" || prefix === "E") && current.entity === kind) {
        current.end = end;
        current.scores.push(score);
      } else {
        current = { entity: kind, start, end, scores: [score] };
        spans.push(current);
      }
      if (prefix === "E" || prefix === "S") current = null;
    }
    return spans.map((s) => ({ entity: s.entity, text: chars.slice(s.start, s.end).join(""), start: s.start, end: s.end,
                               score: s.scores.reduce((a, b) => a + b, 0) / s.scores.length }));
  }

  /** The best context span by start + end logit ('' when the [CLS] null answer beats it by more than the threshold). */
  answer(question, context, outputs, maxAnswerTokens = 30) {
    const enc = this.tokenize(question, context);
    const start = toList(outputs.start_logits)[0];
    const end = toList(outputs.end_logits)[0];
    const ctx = enc.sequence_ids.flatMap((s, k) => (s === 1 ? [k] : []));
    const nullScore = start[0] + end[0];
    let best = [-Infinity, null, null];
    for (const a of ctx) {
      for (const b of ctx) {
        if (a <= b && b < a + maxAnswerTokens && start[a] + end[b] > best[0]) best = [start[a] + end[b], a, b];
      }
    }
    const [score, a, b] = best;
    if (a === null || nullScore - score > Number(this.manifest.no_answer_threshold || 0)) {
      return { answer: "", score: nullScore, start: null, end: null };
    }
    const [s, e] = [enc.offsets[a][0], enc.offsets[b][1]];
    return { answer: Array.from(context).slice(s, e).join(""), score, start: s, end: e };
  }

  /** What an app shows: label + scores, entities with character offsets, an answer span, or the embedding. */
  async predict(text, { model = null, context = null } = {}) {
    const task = this.manifest.task;
    if (task === "question-answering") {
      if (context === null) throw new ClientError("question answering needs --context CONTEXT (the question is the first argument)");
      return this.answer(text, context, await this.run(text, { model, pair: context }));
    }
    const outputs = await this.run(text, { model });
    if (task === "classification" && this.manifest.labels) {
      const probs = softmax(toList(outputs.logits)[0]);
      const id2label = this.manifest.labels.id2label;
      const best = argmax(probs);
      return { label: id2label[String(best)], score: probs[best],
               scores: Object.fromEntries(probs.map((p, i) => [id2label[String(i)], p])) };
    }
    if (task === "token-classification") return { entities: this.entities(text, toList(outputs.logits)[0]) };
    if (task === "embedding") {
      const pooling = this.manifest.pooling;
      return { sentence_embedding: toList(outputs[pooling.output])[0], pooling: pooling.mode, normalized: pooling.normalized };
    }
    return Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, toList(v)]));
  }

  /** Every raw output as nested arrays (reference.py --raw). */
  async raw(text, { model = null, context = null } = {}) {
    const outputs = await this.run(text, { model, pair: context });
    return Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, toList(v)]));
  }
}

async function main(argv) {
  const { parseArgs } = await import("node:util");
  let args;
  try {
    args = parseArgs({ args: argv, allowPositionals: true, options: {
      context: { type: "string" }, model: { type: "string" }, raw: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false } } });
  } catch (err) {
    console.error(`error: ${err.message}`);
    return 2;
  }
  if (args.values.help || args.positionals.length !== 1) {
    const usage = 'usage: node edgepress-client.mjs TEXT [--context CONTEXT] [--model FILE] [--raw]';
    (args.values.help ? console.log : console.error)(args.values.help ? usage : `${usage}\nerror: give exactly one TEXT`);
    return args.values.help ? 0 : 2;
  }
  const opts = { model: args.values.model ?? null, context: args.values.context ?? null };
  try {
    const bundle = await EdgepressBundle.load();
    const out = args.values.raw ? await bundle.raw(args.positionals[0], opts) : await bundle.predict(args.positionals[0], opts);
    console.log(JSON.stringify(out));
    return 0;
  } catch (err) {
    if (!(err instanceof ClientError)) throw err;
    console.error(`error: ${err.message}`);
    return err.message.startsWith("--") || err.message.includes("needs --") ? 2 : 1;
  }
}

if (IN_NODE && process.argv[1]) {
  const { realpathSync } = await import("node:fs");
  const { fileURLToPath } = await import("node:url");
  if (realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
    process.exitCode = await main(process.argv.slice(2));
  }
}
