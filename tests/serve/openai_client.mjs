// End to end with the official `openai` npm package (pinned in scripts/fetch_test_assets.sh): starts
// `hearth serve` with an API key file on a free 127.0.0.1 port and checks chat and completions, streamed and
// not, plus the SDK's error classes, against `hearth --json generate` (greedy) as the reference.
//
//   NODE_PATH=build/test-assets/node_modules node tests/serve/openai_client.mjs HEARTH_BINARY MODEL_DIR
// Prints one line per check and "N passed, M failed"; exits 1 on any failure.
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assetsRequire, assert, check, deadline, equal, finish, startServer } from "./harness.mjs";

const [hearth, modelDir] = process.argv.slice(2);
const require = assetsRequire();
const OpenAI = require("openai");

const dir = mkdtempSync(join(tmpdir(), "hearth-openai-"));
writeFileSync(join(dir, "keys.txt"), "sk-test-owner-1\n");
deadline(120_000);
const { server, port } = await startServer(hearth, modelDir, ["--api-keys", join(dir, "keys.txt")]);

const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "sk-test-owner-1", maxRetries: 0 });
const model = "stories260K";
function generate(args) {
  return JSON.parse(execFileSync(hearth, ["--json", "generate", "--model", modelDir, "--temperature", "0", ...args],
    { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }));
}

// The references are all computed here, before the first request: a `hearth generate` between two requests
// can outlast the server's 5 s keep-alive on a slow machine (a sanitizer build), and the SDK would then reuse
// a connection the server is closing, a client-side race this test is not about.
const chatRef = generate(["--chat", "--prompt", "Tell me a story.", "--max-tokens", "24"]);
const textRef = generate(["--prompt", "Once upon a time", "--max-tokens", "24"]);
const stopRef = generate(["--prompt", "Once upon a time", "--max-tokens", "64", "--stop", "Lily"]);
const messages = [{ role: "user", content: "Tell me a story." }];

await check("models.list has the base model", async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  equal(ids, [model], "ids");
});
await check("chat.completions.create equals hearth generate --chat", async () => {
  const r = await client.chat.completions.create({ model, messages, temperature: 0, max_tokens: 24 });
  equal(r.object, "chat.completion", "object");
  equal(r.choices[0].message.content, chatRef.text, "content");
  equal(r.choices[0].finish_reason, chatRef.finish_reason, "finish_reason");
  equal(r.usage.prompt_tokens, chatRef.prompt_tokens, "usage.prompt_tokens");
  equal(r.usage.completion_tokens, chatRef.completion_tokens, "usage.completion_tokens");
});
await check("chat.completions.create stream equals it too, with usage last", async () => {
  const stream = await client.chat.completions.create({ model, messages, temperature: 0, max_completion_tokens: 24,
    stream: true, stream_options: { include_usage: true } });
  let text = "", finish = null, usage = null, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    const c = chunk.choices[0];
    if (!c) continue;
    text += c.delta.content || "";
    if (c.finish_reason) finish = c.finish_reason;
  }
  equal(text, chatRef.text, "text");
  equal(finish, chatRef.finish_reason, "finish_reason");
  equal(usage.completion_tokens, chatRef.completion_tokens, "usage");
  if (chunks < 5) throw new Error(`only ${chunks} chunks: not streamed`);
});
await check("completions.create equals hearth generate", async () => {
  const r = await client.completions.create({ model, prompt: "Once upon a time", temperature: 0, max_tokens: 24 });
  equal(r.choices[0].text, textRef.text, "text");
  equal(r.usage.total_tokens, textRef.prompt_tokens + textRef.completion_tokens, "usage.total_tokens");
});
await check("completions.create stream equals it too", async () => {
  const stream = await client.completions.create({ model, prompt: "Once upon a time", temperature: 0, max_tokens: 24,
    stream: true });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.text || "";
  equal(text, textRef.text, "text");
});
await check("n = 2 with a seed gives two reproducible choices", async () => {
  const req = { model, messages, n: 2, seed: 7, temperature: 1, max_tokens: 12 };
  const a = await client.chat.completions.create(req), b = await client.chat.completions.create(req);
  equal(a.choices.length, 2, "choices");
  equal(a.choices.map((c) => c.message.content), b.choices.map((c) => c.message.content), "same seed");
});
await check("stop strings", async () => {
  const r = await client.completions.create({ model, prompt: "Once upon a time", temperature: 0, max_tokens: 64,
    stop: ["Lily"] });
  equal(r.choices[0].text, stopRef.text, "text");
  equal(r.choices[0].finish_reason, "stop", "finish_reason");
});
await check("models.retrieve names the base model", async () => {
  const m = await client.models.retrieve(model);
  equal(m.id, model, "id");
});
await check("embeddings.create: unit vectors of the hidden size, batched like single, the SDK's base64 decoded",
  async () => {
    // The SDK asks for base64 unless told otherwise and decodes it itself: the same floats as "float".
    const r = await client.embeddings.create({ model, input: ["The dog ran", "Once upon a time"] });
    equal(r.data.length, 2, "data");
    equal(r.data[0].embedding.length, 64, "dimensions");
    const norm = Math.hypot(...r.data[1].embedding);
    if (Math.abs(norm - 1) > 1e-5) throw new Error(`norm ${norm}`);
    const one = await client.embeddings.create({ model, input: "Once upon a time", encoding_format: "float" });
    equal(one.data[0].embedding, r.data[1].embedding, "same vector");
    if (!(r.usage.prompt_tokens > 0)) throw new Error("no usage");
  });
await check("a field hearth does not implement yet is a 400 naming it", async () => {
  const e = await expectError(OpenAI.BadRequestError, 400,
    () => client.chat.completions.create({ model, messages, logit_bias: { "5": -100 } }));
  equal(e.param, "logit_bias", "param");
  equal(e.code, "unsupported_parameter", "code");
});
await check("logprobs: chat top_logprobs and completions logprobs, one entry per token", async () => {
  const r = await client.chat.completions.create({ model, messages, temperature: 0, max_tokens: 24, logprobs: true,
    top_logprobs: 3 });
  const content = r.choices[0].logprobs.content;
  equal(content.length, r.usage.completion_tokens, "entries");
  equal(content.map((t) => t.token).join(""), r.choices[0].message.content, "tokens' text");
  for (const t of content) {
    equal(t.top_logprobs.length, 3, "top_logprobs");
    equal(t.top_logprobs[0].logprob, t.logprob, "greedy picks the most likely");
    if (!(t.logprob <= 0)) throw new Error(`logprob ${t.logprob} > 0`);
  }
  const c = await client.completions.create({ model, prompt: "Once upon a time", temperature: 0, max_tokens: 24,
    logprobs: 2 });
  const lp = c.choices[0].logprobs;
  equal(lp.tokens.join(""), textRef.text, "tokens' text");
  equal(lp.token_logprobs.length, lp.tokens.length, "token_logprobs");
  equal(lp.top_logprobs.map((d) => Object.keys(d).length <= 2), lp.tokens.map(() => true), "top_logprobs");
});
await check("completions echo: the prompt comes first, its first token's logprob null; max_tokens 0 is the prompt",
  async () => {
    const prompt = "Once upon a time";
    const r = await client.completions.create({ model, prompt, temperature: 0, max_tokens: 24, echo: true,
      logprobs: 1 });
    equal(r.choices[0].text, prompt + textRef.text, "text");
    const lp = r.choices[0].logprobs;
    equal(lp.tokens.length, textRef.prompt_tokens + textRef.completion_tokens, "entries");
    equal([lp.token_logprobs[0], lp.top_logprobs[0]], [null, null], "the first token's");
    if (!lp.token_logprobs.slice(1).every((v) => v <= 0)) throw new Error("a logprob > 0");
    const only = await client.completions.create({ model, prompt, max_tokens: 0, echo: true });
    equal([only.choices[0].text, only.usage.completion_tokens], [prompt, 0], "max_tokens 0");
  });
async function expectError(cls, status, fn) {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof cls)) throw new Error(`expected ${cls.name}, got ${e.constructor.name}: ${e.message}`);
    equal(e.status, status, "status");
    if (!e.error || typeof e.error.message !== "string") throw new Error("no OpenAI error body");
    return e;
  }
  throw new Error("no error");
}
await check("unknown model: NotFoundError 404", async () => {
  const e = await expectError(OpenAI.NotFoundError, 404,
    () => client.chat.completions.create({ model: "gpt-4o", messages }));
  equal(e.code, "model_not_found", "code");
});
await check("invalid temperature: BadRequestError 400", async () => {
  const e = await expectError(OpenAI.BadRequestError, 400,
    () => client.chat.completions.create({ model, messages, temperature: 7 }));
  equal(e.param, "temperature", "param");
});
await check("wrong key: AuthenticationError 401", async () => {
  const bad = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "sk-not-a-key", maxRetries: 0 });
  await expectError(OpenAI.AuthenticationError, 401, () => bad.models.list());
});

server.kill("SIGTERM");
const code = await new Promise((resolve) => server.on("exit", (c) => resolve(c)));
await check("SIGTERM: exit code 0", async () => equal(code, 0, "exit code"));
rmSync(dir, { recursive: true, force: true });
finish();
