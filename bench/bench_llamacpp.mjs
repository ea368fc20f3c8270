#!/usr/bin/env node
// bench_llamacpp: hearth's decode and prefill speed next to llama.cpp's, on the same GGUF files, with the
// memory-bandwidth floor. A benchmark, not a test: it prints a table (bench/README.md has one).
//
//   scripts/build.sh && scripts/fetch_test_assets.sh build/test-assets     # hearth, make_random_model, llama.cpp
//   node bench/bench_llamacpp.mjs [--models smollm2-135m,llama-3.2-1b] [--threads 1,2] [--repeats 2]
//                                 [--prompt-tokens 128] [--tokens 64] [--work DIR]
//
// For each model shape (random weights from build/bench/make_random_model, bench/model_presets.h) it writes GGUFs
// with `hearth quantize` (f32, q8_0, q4_0, q4_k_m for the 135M shape; q8_0, q4_0, q4_k_m for the 1B), then for each
// file and thread count runs, each in its own process and `--repeats` times alternating (best run kept):
// - llama.cpp: scripts/llamacpp_ref/generate.mjs (node-llama-cpp 3.21.1's prebuilt CPU llama.cpp, from
//   build/test-assets): the prompt in one batch, then greedy decode through end-of-generation tokens;
// - hearth: `hearth --json --threads N generate --temperature 0` (prefill_tokens_per_s, decode_tokens_per_s).
// Decode rates are per decode step: llama.cpp's as generate.mjs measures it, hearth's reported rate (n tokens over
// the n − 1 steps after the prefill's token) times (n − 1)/n. Prefill: hearth's forward over the prompt; llama.cpp's
// prompt batch plus one greedy sample.
//
// Tokenizers (llama.cpp needs one in the file; its vocabulary must match the model's): Llama 3's tokenizer.json
// (128256 ids, from build/test-assets/llama3) for the 1B; for the 135M shape, whose real SmolLM2 tokenizer is not in
// the repository, GPT-2's (tests/fixtures/tokenizer-tests/gpt2) cut to its first 49151 ids plus <|endoftext|> as
// id 49151 (GPT-2's merge of rank r makes id 256 + r, so the first 48895 merges are kept whole). The prompt is
// "The" + " the" × k, k chosen so that it is --prompt-tokens ids (BOS included when the tokenizer adds one).
//
// Floor: ../shared/tools/stream.c (built here with gcc -O3 -march=native -fopenmp when present; no license, so
// not copied into the project) measures read bandwidth per thread count; floor tok/s = best GB/s over its two page
// modes ÷ the file's tensor bytes (every weight is read once per token; the heads are tied, so the embedding
// matrix is read whole as the head). Without stream.c the floor columns read "—". "load": the 1-minute load
// average when the row finished — on a 2-core machine shared with other work, llama.cpp's spinning thread pool
// loses far more than hearth when a second thread competes for a core, so read 2-thread rows with it.
import {execFileSync, spawnSync} from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {fileURLToPath} from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const build = path.resolve(process.env.HEARTH_BUILD_DIR ?? path.join(root, "build"));
const hearth = path.join(build, "apps", "hearth");
const makeRandom = path.join(build, "bench", "make_random_model");
const assets = path.join(build, "test-assets");
const streamSource = path.resolve(root, "..", "shared", "tools", "stream.c");

// ---- options ----
const opts = {models: "smollm2-135m,llama-3.2-1b", threads: "1,2", repeats: "2", "prompt-tokens": "128", tokens: "64",
              work: path.join(os.tmpdir(), "hearth-bench-llamacpp")};
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, "");
  if (!(key in opts) || process.argv[i + 1] === undefined) {
    console.error(`bench_llamacpp: unknown option or missing value: ${process.argv[i]}\n` +
                  "usage: node bench/bench_llamacpp.mjs [--models a,b] [--threads 1,2] [--repeats 2] " +
                  "[--prompt-tokens 128] [--tokens 64] [--work DIR]");
    process.exit(2);
  }
  opts[key] = process.argv[i + 1];
}
const models = opts.models.split(",");
const threadCounts = opts.threads.split(",").map(Number);
const repeats = Number(opts.repeats), promptTokens = Number(opts["prompt-tokens"]), genTokens = Number(opts.tokens);
const work = path.resolve(opts.work);
fs.mkdirSync(work, {recursive: true});

const TYPES = {"smollm2-135m": ["f32", "q8_0", "q4_0", "q4_k_m"], "llama-3.2-1b": ["q8_0", "q4_0", "q4_k_m"]};
const LABEL = {"smollm2-135m": "SmolLM2-135M shape", "llama-3.2-1b": "Llama-3.2-1B shape"};

for (const [what, file] of [["hearth", hearth], ["make_random_model", makeRandom]])
  if (!fs.existsSync(file)) fail(`${what} not found at ${file}; build first (scripts/build.sh)`);
if (!fs.existsSync(path.join(assets, "llamacpp-ref", "node_modules", "node-llama-cpp")))
  fail(`llama.cpp reference not in ${assets}; run scripts/fetch_test_assets.sh ${assets} (Linux x86-64 only)`);
for (const m of models) if (!TYPES[m]) fail(`unknown model '${m}'; expected ${Object.keys(TYPES).join(" or ")}`);

function fail(message) {
  console.error(`bench_llamacpp: ${message}`);
  process.exit(1);
}
const log = (s) => process.stderr.write(`bench_llamacpp: ${s}\n`);
const run = (cmd, args, env) => execFileSync(cmd, args, {encoding: "utf8", maxBuffer: 1 << 28,
                                                          env: {...process.env, ...env}, stdio: ["ignore", "pipe", "pipe"]});
const hearthJson = (args) => JSON.parse(run(hearth, ["--json", ...args]));
const loadavg = () => os.loadavg().map((x) => x.toFixed(2)).join(" ");

// ---- the floor: read bandwidth per thread count ----
function bandwidth() {
  if (!fs.existsSync(streamSource)) {
    log(`${streamSource} not found: no floor`);
    return null;
  }
  const exe = path.join(work, "stream");
  run("gcc", ["-O3", "-march=native", "-fopenmp", "-o", exe, streamSource]);
  const maxT = Math.max(...threadCounts), minT = Math.min(...threadCounts);
  const out = run(exe, ["1", "7", String(maxT), String(minT)]);
  const best = {};  // threads -> best GB/s over both page modes
  const lines = [];
  for (const line of out.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 4 && (f[0] === "thp" || f[0] === "4k")) {
      const t = Number(f[1]), gbs = Number(f[2]);
      best[t] = Math.max(best[t] ?? 0, gbs);
      lines.push(`${f[0]} ${t} thread(s): best ${f[2]} GB/s, median ${f[3]} GB/s`);
    }
  }
  return {best, lines};
}

// ---- tokenizers and models ----
// GPT-2's tokenizer cut to n ids: ids < n − 1 as in GPT-2, merges that make them, <|endoftext|> as id n − 1.
function gpt2Tokenizer(n) {
  const dir = path.join(work, `tokenizer-gpt2-${n}`);
  if (fs.existsSync(path.join(dir, "tokenizer.json"))) return dir;
  const src = path.join(root, "tests", "fixtures", "tokenizer-tests", "gpt2");
  const t = JSON.parse(fs.readFileSync(path.join(src, "tokenizer.json"), "utf8"));
  const eot = "<|endoftext|>", last = n - 1;
  const vocab = {};
  for (const [piece, id] of Object.entries(t.model.vocab)) if (id < last) vocab[piece] = id;
  vocab[eot] = last;
  const merges = t.model.merges.slice(0, last - 256);
  merges.forEach((m, r) => {
    const [a, b] = Array.isArray(m) ? m : m.split(" ");
    if (vocab[a + b] !== 256 + r) fail(`GPT-2 merge ${r} (${a} ${b}) does not make id ${256 + r}`);
  });
  t.model.vocab = vocab;
  t.model.merges = merges;
  for (const a of t.added_tokens) if (a.content === eot) a.id = last;
  const config = JSON.parse(fs.readFileSync(path.join(src, "tokenizer_config.json"), "utf8"));
  config.added_tokens_decoder = {[String(last)]: config.added_tokens_decoder["50256"]};
  fs.mkdirSync(dir, {recursive: true});
  fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(t));
  fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(config, null, 2));
  return dir;
}

function randomModel(preset) {
  const dir = path.join(work, preset);
  if (fs.existsSync(path.join(dir, "config.json")) && fs.existsSync(path.join(dir, "tokenizer.json"))) return dir;
  const tokenizer = preset === "llama-3.2-1b" ? path.join(assets, "llama3") : gpt2Tokenizer(49152);
  log(`writing ${dir} (random weights, float32)`);
  run(makeRandom, [dir, "--preset", preset, "--tokenizer", tokenizer]);
  if (preset === "smollm2-135m") {  // the preset's BOS/EOS ids (1, 2) are ordinary GPT-2 tokens; use <|endoftext|>
    const c = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8"));
    c.bos_token_id = c.eos_token_id = 49151;
    fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(c, null, 2));
  }
  return dir;
}

function quantize(dir, type) {
  const out = path.join(work, `${path.basename(dir)}-${type}.gguf`);
  const summary = path.join(out + ".json");
  if (fs.existsSync(out) && fs.existsSync(summary)) return JSON.parse(fs.readFileSync(summary, "utf8"));
  log(`quantizing ${path.basename(dir)} to ${type}`);
  const j = hearthJson(["--threads", "2", "quantize", "--model", dir, "--type", type, "--out", out]);
  fs.writeFileSync(summary, JSON.stringify(j));
  return j;
}

// "The" + " the" × k: k such that hearth's tokenizer (BOS as the file says) gives `n` ids.
function promptFor(gguf, n) {
  const count = (k) => hearthJson(["tokenize", "--model", gguf, "--text", "The" + " the".repeat(k)]).length;
  let k = n - 1;
  while (k > 0 && count(k) > n) --k;
  if (count(k) !== n) fail(`no prompt of ${n} tokens for ${gguf}`);
  return "The" + " the".repeat(k);
}

// ---- the two engines ----
function llamacpp(gguf, prompt, threads) {
  const request = path.join(work, "request.json");
  fs.writeFileSync(request, JSON.stringify({model: gguf, prompt, max_tokens: genTokens, ignore_eog: true, threads}));
  const r = JSON.parse(run("node", [path.join(root, "scripts", "llamacpp_ref", "generate.mjs"), assets, request]));
  if (r.threads !== threads) log(`llama.cpp used ${r.threads} threads, asked ${threads}`);
  return {prefill: r.prefill_tokens_per_s, decode: r.decode_tokens_per_s, prompt: r.prompt_ids.length,
          tokens: r.token_ids.length};
}

function hearthRun(gguf, prompt, threads) {
  const j = hearthJson(["--threads", String(threads), "generate", "--model", gguf, "--temperature", "0",
                        "--max-tokens", String(genTokens), "--prompt", prompt]);
  const n = j.completion_tokens + (j.finish_reason === "stop" ? 1 : 0);  // accepted tokens, a stop id included
  return {prefill: j.prefill_tokens_per_s, decode: n > 1 ? j.decode_tokens_per_s * (n - 1) / n : 0,
          prompt: j.prompt_tokens, tokens: j.completion_tokens};
}

const best = (runs, key) => Math.max(...runs.map((r) => r[key]));

// ---- main ----
const started = new Date();
const loadBefore = loadavg();
const bw = bandwidth();
const rows = [];
for (const preset of models) {
  const dir = randomModel(preset);
  for (const type of TYPES[preset]) {
    const q = quantize(dir, type);
    const gguf = q.out;
    const prompt = promptFor(gguf, promptTokens);
    for (const threads of threadCounts) {
      const l = [], h = [];
      for (let r = 0; r < repeats; ++r) {
        l.push(llamacpp(gguf, prompt, threads));
        h.push(hearthRun(gguf, prompt, threads));
      }
      const floor = bw?.best[threads] ? (bw.best[threads] * 1e9) / q.tensor_bytes : null;
      const row = {model: LABEL[preset], type, threads, tensor_mib: q.tensor_bytes / 2 ** 20,
                   llamacpp_decode: best(l, "decode"), hearth_decode: best(h, "decode"),
                   llamacpp_prefill: best(l, "prefill"), hearth_prefill: best(h, "prefill"), floor,
                   prompt_tokens: [l[0].prompt, h[0].prompt], generated: [l[0].tokens, h[0].tokens], runs: {l, h},
                   load: os.loadavg()[0]};
      rows.push(row);
      log(`${row.model} ${type} ${threads}t: llama.cpp ${row.llamacpp_decode.toFixed(1)} / hearth ` +
          `${row.hearth_decode.toFixed(1)} tok/s decode (load ${loadavg()})`);
    }
  }
}
const loadAfter = loadavg();

// ---- the table ----
const fmt = (x, d = 1) => (x == null ? "—" : x >= 1000 ? Math.round(x).toLocaleString("en-US") : x.toFixed(d));
const pct = (x, floor) => (floor ? `${Math.round((100 * x) / floor)}%` : "—");
const cpu = (fs.readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.*)/) ?? [, os.cpus()[0]?.model])[1];
const out = [];
out.push(`${started.toISOString().slice(0, 10)}, ${os.hostname()}: ${cpu}, ${os.cpus().length} CPUs, ` +
         `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; load average (1/5/15 min) ${loadBefore} before, ${loadAfter} after`);
out.push(`prompt ${promptTokens} tokens, ${genTokens} generated, best of ${repeats} runs each; llama.cpp = node-llama-cpp 3.21.1 ` +
         "(prebuilt CPU build), hearth = this checkout");
if (bw) out.push("read bandwidth (stream.c): " + bw.lines.join("; "));
out.push("");
out.push("| model | type | MiB | threads | llama.cpp decode tok/s | hearth decode tok/s | hearth / llama.cpp | " +
         "llama.cpp prefill tok/s | hearth prefill tok/s | floor tok/s | llama.cpp % of floor | hearth % of floor | load |");
out.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
for (const r of rows) {
  out.push(`| ${r.model} | ${r.type} | ${fmt(r.tensor_mib, 0)} | ${r.threads} | ${fmt(r.llamacpp_decode)} | ` +
           `${fmt(r.hearth_decode)} | ${(r.hearth_decode / r.llamacpp_decode).toFixed(2)}× | ${fmt(r.llamacpp_prefill)} | ` +
           `${fmt(r.hearth_prefill)} | ${fmt(r.floor)} | ${pct(r.llamacpp_decode, r.floor)} | ${pct(r.hearth_decode, r.floor)} | ` +
           `${r.load.toFixed(1)} |`);
}
const short = rows.filter((r) => r.generated[1] < genTokens);
if (short.length) out.push(`\nhearth stopped early (an EOS) on: ${short.map((r) => `${r.model} ${r.type} ${r.threads}t ` +
                                                                                 `(${r.generated[1]} tokens)`).join(", ")}`);
const mismatch = rows.filter((r) => r.prompt_tokens[0] !== r.prompt_tokens[1]);
if (mismatch.length) out.push(`\nprompt lengths differ (llama.cpp, hearth): ${mismatch.map((r) => `${r.model} ${r.type}: ` +
                                                                                             r.prompt_tokens.join(", ")).join("; ")}`);
console.log(out.join("\n"));
fs.writeFileSync(path.join(work, "results.json"), JSON.stringify({started, loadBefore, loadAfter, bandwidth: bw, rows}, null, 1));
log(`results in ${path.join(work, "results.json")}`);
