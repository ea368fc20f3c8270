// Prints llama.cpp's token ids for strings, for a GGUF file: the independent reference of
// tests/tokenizer/test_gguf_vocab.cpp ("llama.cpp itself" cases). Uses node-llama-cpp@3.21.1's prebuilt CPU
// binaries, installed by scripts/fetch_test_assets.sh into ASSETS/llamacpp-ref (package-lock.json here).
//
//   node scripts/llamacpp_ref/tokenize.mjs ASSETS REQUEST.json OUT.json
//
// REQUEST.json: {"model": "path.gguf", "texts": ["...", ...]}. OUT.json: {"no_parse": [[ids], ...],
// "parse_special": [[ids], ...]}: llama_tokenize with add_special=false and parse_special false / true
// (node-llama-cpp's model.tokenize(text, specialTokens) calls common_tokenize(vocab, text, false, specialTokens)).
import fs from "node:fs";
import path from "node:path";
import {pathToFileURL} from "node:url";

const [assets, requestPath, outPath] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: node tokenize.mjs ASSETS REQUEST.json OUT.json");
  process.exit(2);
}
const entry = path.join(assets, "llamacpp-ref", "node_modules", "node-llama-cpp", "dist", "index.js");
const {getLlama, LlamaLogLevel} = await import(pathToFileURL(entry).href);
const request = JSON.parse(fs.readFileSync(requestPath, "utf8"));

// Logging off: node-llama-cpp's memory estimate first tries a full load of these tensor-less files and logs
// "missing tensor" before loading the vocabulary alone; real failures still throw.
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.disabled});
const model = await llama.loadModel({modelPath: request.model, gpuLayers: 0, vocabOnly: true});
const out = {no_parse: [], parse_special: []};
for (const text of request.texts) {
  out.no_parse.push(Array.from(model.tokenize(text, false)));
  out.parse_special.push(Array.from(model.tokenize(text, true)));
}
fs.writeFileSync(outPath, JSON.stringify(out));
await model.dispose();
await llama.dispose();
