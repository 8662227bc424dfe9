// Sentence embeddings of a sentence-transformers folder by transformers.js (@huggingface/transformers) in Node, the
// way a web developer loads it: config.json, tokenizer.json and onnx/model.onnx (dtype fp32) or
// onnx/model_quantized.onnx (dtype q8), pooled and normalised as the folder's 1_Pooling and modules.json say.
// Texts are read as a JSON list from stdin; prints a JSON list of vectors. Usage: node transformers_embed.mjs DIR DTYPE
import { readFileSync } from "node:fs";
import path from "node:path";
import { env, pipeline } from "@huggingface/transformers";

const [dir, dtype] = process.argv.slice(2);
const folder = path.resolve(dir);
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = path.dirname(folder) + path.sep;
const modules = JSON.parse(readFileSync(path.join(folder, "modules.json"), "utf8"));
const poolingDir = modules.find((m) => m.type.endsWith("Pooling")).path;
const pooling = JSON.parse(readFileSync(path.join(folder, poolingDir, "config.json"), "utf8"));
// sentence-transformers 5 writes "pooling_mode": "mean"; older folders set one pooling_mode_*_token(s) flag
const legacy = { cls: "pooling_mode_cls_token", mean: "pooling_mode_mean_tokens", max: "pooling_mode_max_tokens" };
const mode = ["cls", "mean", "max"].find((m) => pooling.pooling_mode === m || pooling[legacy[m]] === true);
if (!mode) throw new Error(`transformers.js pools by cls, mean or max; ${poolingDir}/config.json asks for another mode`);
const normalize = modules.some((m) => m.type.endsWith("Normalize"));
let input = "";
for await (const chunk of process.stdin) input += chunk;
const extractor = await pipeline("feature-extraction", path.basename(folder), { dtype, device: "cpu" });
const out = await extractor(JSON.parse(input), { pooling: mode, normalize });
console.log(JSON.stringify({ pooling: mode, normalize, embeddings: out.tolist() }));
