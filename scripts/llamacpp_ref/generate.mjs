// Greedy generation by llama.cpp itself, for a GGUF file: the independent reference of
// tests/convert/test_llamacpp_reference.cpp and the llama.cpp side of bench/bench_llamacpp.sh. Uses
// node-llama-cpp@3.21.1's prebuilt CPU binaries, installed by scripts/fetch_test_assets.sh into ASSETS/llamacpp-ref
// (package-lock.json here).
//
//   node scripts/llamacpp_ref/generate.mjs ASSETS REQUEST.json > OUT.json
//
// REQUEST.json: one run or a list of runs (one model load each), printed back as one JSON object per run (a list
// for a list):
//   {"model": "path.gguf",            the GGUF to load (CPU, no GPU layers)
//    "prompt": "Once upon a time",     raw text: tokenized by llama.cpp with special-token parsing (as hearth
//                                      generate does), BOS prepended when the model's add_bos says so; no chat
//                                      template is applied
//    "prompt_ids": [1, 2, ...],        or: token ids, fed as they are (no BOS added)
//    "messages": [{"role", "content"}] or: a chat, rendered with the GGUF's tokenizer.chat_template by
//                                      @huggingface/jinja (node-llama-cpp's own dependency) with
//                                      add_generation_prompt, then tokenized as "prompt"
//    "add_bos": false,                 for "prompt"/"messages": prepend BOS or not; default the model's add_bos
//                                      (llama-server's way, also for a chat; transformers and hearth tokenize
//                                      a rendered chat without adding one: the template writes its own)
//    "max_tokens": 64,                 tokens to generate at most (stops earlier at an end-of-generation token:
//                                      llama.cpp's llama_vocab_is_eog — eos, eot, eom and the like)
//    "ignore_eog": false,              true: keep generating through end-of-generation tokens (benchmarks)
//    "threads": 1,                     llama.cpp's thread count (default: 1)
//    "context_size": 512, "batch_size": 512,   defaults: prompt + max_tokens rounded up, batch ≥ the prompt
//    "lora": ["adapter.gguf", ...]}    llama.cpp LoRA GGUFs applied to the context at scale 1 (llama-cli --lora)
// Each result: {"model", "prompt_ids", "token_ids" (generated, without the end-of-generation token),
// "text" (token_ids detokenized by llama.cpp, control tokens left out), "finish_reason" ("stop" at an
// end-of-generation token, "length" at max_tokens), "eog_token" (the id that stopped it, or null),
// "chat_prompt" (the rendered chat, for "messages"), "chat_wrapper_prompt" (the same chat as node-llama-cpp's
// JinjaTemplateChatWrapper renders it, as text), "model_add_bos" (the GGUF's add_bos as llama.cpp reads it),
// "threads" (what the context really uses), "prefill_seconds", "prefill_tokens_per_s", "decode_seconds",
// "decode_tokens_per_s"}.
//
// Sampling: node-llama-cpp's sequence.evaluate with temperature 0 (llama.cpp's greedy sampler: the arg-max),
// top-k 0, top-p 1, min-p 0, no repetition or DRY penalty, no grammar, no token predictor. Timing: prefill =
// from the call to the first sampled token (the prompt in one batch, then one sample); decode = from the first
// sampled token to the last: n − 1 decode steps for n tokens, rate = (n − 1) / time. (hearth's GenerationStats
// divides n tokens by the same n − 1 steps; bench/bench_llamacpp.sh puts both on the per-step footing.)
import fs from "node:fs";
import path from "node:path";
import {pathToFileURL} from "node:url";

const [assets, requestPath] = process.argv.slice(2);
if (!requestPath) {
  console.error("usage: node generate.mjs ASSETS REQUEST.json > OUT.json");
  process.exit(2);
}
const modules = path.join(assets, "llamacpp-ref", "node_modules");
const {getLlama, LlamaLogLevel, JinjaTemplateChatWrapper} = await import(pathToFileURL(path.join(modules, "node-llama-cpp", "dist", "index.js")).href);
const {Template} = await import(pathToFileURL(path.join(modules, "@huggingface", "jinja", "dist", "index.js")).href);

const request = JSON.parse(fs.readFileSync(requestPath, "utf8"));
const runs = Array.isArray(request) ? request : [request];

// maxThreads 0: a context's `threads` is then the number it really uses (not capped by node-llama-cpp's pool).
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: 0});

// The chat template as llama.cpp's metadata reader sees it, rendered like transformers' apply_chat_template.
function render_chat(model, messages) {
  const template = model.fileInfo.metadata?.tokenizer?.chat_template;
  if (typeof template !== "string") throw new Error(`${model.filename}: no tokenizer.chat_template`);
  const text = (id) => (id == null ? "" : model.detokenize([id], true));
  return new Template(template).render({
    messages,
    add_generation_prompt: true,
    bos_token: text(model.tokens.bos),
    eos_token: text(model.tokens.eos),
  });
}

// The same chat through node-llama-cpp's own JinjaTemplateChatWrapper (what its chat sessions feed llama.cpp
// for a template it has no dedicated wrapper for), as text; "BOS" stands for a BOS token it adds.
function wrap_chat(model, messages) {
  const wrapper = new JinjaTemplateChatWrapper({template: model.fileInfo.metadata.tokenizer.chat_template});
  const type = {system: "system", user: "user", assistant: "model"};
  const chatHistory = messages.map((m) =>
    m.role === "assistant" ? {type: "model", response: [m.content]} : {type: type[m.role], text: m.content});
  chatHistory.push({type: "model", response: []});
  return wrapper.generateContextState({chatHistory}).contextText.toString();
}

function prompt_ids(model, run) {
  if (run.prompt_ids) return {ids: run.prompt_ids.slice(), chat: null};
  const chat = run.messages ? render_chat(model, run.messages) : null;
  const text = chat ?? run.prompt;
  if (typeof text !== "string") throw new Error("a run needs prompt, prompt_ids or messages");
  const ids = Array.from(model.tokenize(text, true));
  // One BOS: add_bos (default the model's), unless the text (a chat template's output) starts with it already.
  const bos = model.tokens.bos;
  const addBos = run.add_bos ?? model.tokens.shouldPrependBosToken;
  if (addBos && bos != null && ids[0] !== bos) ids.unshift(bos);
  return {ids, chat};
}

async function generate(run) {
  const threads = run.threads ?? 1;
  const maxTokens = run.max_tokens ?? 64;
  const model = await llama.loadModel({modelPath: run.model, gpuLayers: 0});
  try {
    const {ids, chat} = prompt_ids(model, run);
    const need = ids.length + maxTokens + 1;
    const context = await model.createContext({
      contextSize: run.context_size ?? Math.max(64, Math.ceil(need / 64) * 64),
      batchSize: run.batch_size ?? Math.max(512, ids.length),
      sequences: 1,
      threads: {ideal: threads, min: threads},
      ...(run.lora ? {lora: {adapters: run.lora.map((filePath) => ({filePath, scale: 1}))}} : {}),
    });
    try {
      const sequence = context.getSequence();
      const out = [];
      let eog = null;
      const t0 = performance.now();
      let tFirst = t0, tLast = t0;
      if (maxTokens > 0) {
        const it = sequence.evaluate(ids, {temperature: 0, topK: 0, topP: 1, minP: 0, yieldEogToken: true});
        for await (const token of it) {
          tLast = performance.now();
          if (out.length === 0) tFirst = tLast;
          if (!run.ignore_eog && model.isEogToken(token)) {
            eog = token;
            break;
          }
          out.push(token);
          if (out.length >= maxTokens) break;
        }
      }
      const prefill = (tFirst - t0) / 1000, decode = (tLast - tFirst) / 1000;
      const decoded = Math.max(0, out.length + (eog != null ? 1 : 0) - 1);
      return {
        model: run.model,
        prompt_ids: ids,
        token_ids: out,
        text: model.detokenize(out, false),
        finish_reason: eog != null ? "stop" : "length",
        eog_token: eog,
        chat_prompt: chat,
        chat_wrapper_prompt: run.messages ? wrap_chat(model, run.messages) : null,
        model_add_bos: model.tokens.shouldPrependBosToken,
        threads: context.currentThreads,
        prefill_seconds: prefill,
        prefill_tokens_per_s: prefill > 0 ? ids.length / prefill : 0,
        decode_seconds: decode,
        decode_tokens_per_s: decode > 0 ? decoded / decode : 0,
      };
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

const results = [];
for (const run of runs) results.push(await generate(run));
process.stdout.write(JSON.stringify(Array.isArray(request) ? results : results[0]) + "\n");
await llama.dispose();
