// Prints the bundle client's encodings (ids, type ids, offsets, word and sequence ids) of [text, pair] rows read as
// JSON from stdin, for tests that compare them with Python tokenizers' Encoding. Usage: node encodings.mjs BUNDLE_DIR
import { pathToFileURL } from "node:url";

const bundleDir = process.argv[2];
const { EdgepressBundle } = await import(pathToFileURL(`${bundleDir}/edgepress-client.mjs`).href);
const bundle = await EdgepressBundle.load(pathToFileURL(`${bundleDir}/`));
let input = "";
for await (const chunk of process.stdin) input += chunk;
const rows = JSON.parse(input).map(([text, pair]) => {
  try {
    const e = bundle.tokenize(text, pair ?? null);
    return { ids: e.ids, type_ids: e.type_ids, offsets: e.offsets, word_ids: e.word_ids, sequence_ids: e.sequence_ids };
  } catch (err) {
    return { error: err.message };
  }
});
console.log(JSON.stringify(rows));
