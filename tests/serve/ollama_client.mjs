// End to end with the official `ollama` npm package (pinned with its one dependency, whatwg-fetch, in
// scripts/fetch_test_assets.sh): starts `hearth serve` with an API key file on a free 127.0.0.1 port and checks
// list, show, chat and generate (streamed and not), embed, version and the client's errors, against
// `hearth --json generate` (greedy) and the server's own /v1/embeddings as the references.
//
//   NODE_PATH=build/test-assets/node_modules node tests/serve/ollama_client.mjs HEARTH_BINARY MODEL_DIR
// Prints one line per check and "N passed, M failed"; exits 1 on any failure.
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assetsRequire, assert, check, deadline, equal, finish, startServer } from "./harness.mjs";

const [hearth, modelDir] = process.argv.slice(2);
const require = assetsRequire();
const { Ollama } = require("ollama");

const owner = "sk-test-owner-1", scoped = "sk-test-kids-only";
const dir = mkdtempSync(join(tmpdir(), "hearth-ollama-"));
writeFileSync(join(dir, "keys.txt"), `${owner}\n${scoped} kids\n`);
deadline(120_000);
const { server, port } = await startServer(hearth, modelDir, ["--api-keys", join(dir, "keys.txt")]);

const host = `http://127.0.0.1:${port}`;
const client = (key) => new Ollama({ host, headers: { Authorization: `Bearer ${key}` } });
const ollama = client(owner);
const model = "stories260K";
function generate(args) {
  return JSON.parse(execFileSync(hearth, ["--json", "generate", "--model", modelDir, "--temperature", "0", ...args],
    { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }));
}

// References first (see openai_client.mjs: a slow `hearth generate` between requests can outlast keep-alive).
// Greedy in Ollama's terms is temperature 0 with repeat_penalty 1 (Ollama's default penalty is 1.1).
const greedy = { temperature: 0, repeat_penalty: 1, num_predict: 24 };
const chatRef = generate(["--chat", "--prompt", "Tell me a story.", "--max-tokens", "24"]);
const systemRef = generate(["--chat", "--system", "You tell stories.", "--prompt", "A dog", "--max-tokens", "24"]);
const textRef = generate(["--prompt", "Once upon a time", "--max-tokens", "24"]);
const stopRef = generate(["--prompt", "Once upon a time", "--max-tokens", "64", "--stop", "Lily"]);
const penaltyRef = generate(["--prompt", "Once upon a time", "--max-tokens", "64", "--repeat-penalty", "1.3"]);
const plainRef = generate(["--prompt", "Once upon a time", "--max-tokens", "64"]);
const messages = [{ role: "user", content: "Tell me a story." }];

await check("list: the base model, named as Ollama names models, with its details", async () => {
  const r = await ollama.list();
  equal(r.models.map((m) => m.name), [`${model}:latest`], "names");
  const m = r.models[0];
  equal(m.model, `${model}:latest`, "model");
  equal([m.details.format, m.details.family, m.details.parameter_size, m.details.quantization_level],
    ["safetensors", "llama", "260K", "F32"], "details");
  assert(/^[0-9a-f]{64}$/.test(m.digest), `digest ${m.digest}`);
  assert(m.size > 1_000_000 && !Number.isNaN(Date.parse(m.modified_at)), `size ${m.size}, modified_at ${m.modified_at}`);
});
await check("show: model_info gives the served context, and the ChatML template the model is served with", async () => {
  const r = await ollama.show({ model });
  equal(r.model_info["llama.context_length"], 512, "context_length");
  equal(r.model_info["llama.embedding_length"], 64, "embedding_length");
  equal(r.capabilities, ["completion", "embedding"], "capabilities");
  assert(r.template.includes("<|im_start|>"), `template ${r.template}`);
  assert(r.modelfile.startsWith(`FROM ${model}\n`), `modelfile ${r.modelfile}`);
});
await check("chat: equals hearth generate --chat, with Ollama's counts", async () => {
  const r = await ollama.chat({ model, messages, options: greedy });
  equal(r.message, { role: "assistant", content: chatRef.text }, "message");
  equal([r.done, r.done_reason], [true, chatRef.finish_reason], "done");
  equal([r.prompt_eval_count, r.eval_count], [chatRef.prompt_tokens, chatRef.completion_tokens], "counts");
  assert(r.total_duration >= r.eval_duration && r.eval_duration > 0, `durations ${JSON.stringify(r)}`);
});
await check("chat stream: the same text in several NDJSON objects, the last one done", async () => {
  const stream = await ollama.chat({ model: `${model}:latest`, messages, options: greedy, stream: true });
  let text = "", parts = 0, last = null;
  for await (const part of stream) {
    parts++;
    text += part.message.content;
    last = part;
  }
  equal(text, chatRef.text, "text");
  equal([last.done, last.done_reason, last.eval_count], [true, chatRef.finish_reason, chatRef.completion_tokens],
    "last part");
  assert(parts >= 5, `only ${parts} parts: not streamed`);
});
await check("generate: the prompt and system through the chat template, as hearth generate --chat --system",
  async () => {
    const r = await ollama.generate({ model, prompt: "A dog", system: "You tell stories.", options: greedy });
    equal(r.response, systemRef.text, "response");
    equal(r.prompt_eval_count, systemRef.prompt_tokens, "prompt_eval_count");
  });
await check("generate raw stream: the prompt as it is, as hearth generate", async () => {
  const stream = await ollama.generate({ model, prompt: "Once upon a time", raw: true, options: greedy, stream: true });
  let text = "", last = null;
  for await (const part of stream) {
    text += part.response;
    last = part;
  }
  equal(text, textRef.text, "text");
  equal([last.done_reason, last.eval_count], ["length", 24], "last part");
});
await check("options: stop strings end the reply (done_reason stop)", async () => {
  const r = await ollama.generate({ model, prompt: "Once upon a time", raw: true,
    options: { ...greedy, num_predict: 64, stop: ["Lily"] } });
  equal([r.response, r.done_reason], [stopRef.text, "stop"], "response, done_reason");
});
await check("options: repeat_penalty reaches the sampler", async () => {
  assert(penaltyRef.text !== plainRef.text, "the reference penalty changes nothing: pick another prompt");
  const r = await ollama.generate({ model, prompt: "Once upon a time", raw: true,
    options: { ...greedy, num_predict: 64, repeat_penalty: 1.3 } });
  equal(r.response, penaltyRef.text, "response");
});
await check("options: the same seed gives the same sampled text", async () => {
  const req = { model, prompt: "Once upon a time", raw: true, options: { seed: 7, temperature: 1, num_predict: 16 } };
  const a = await ollama.generate(req), b = await ollama.generate(req);
  equal(a.response, b.response, "same seed");
});
await check("embed: unit vectors, the same as /v1/embeddings gives", async () => {
  const r = await ollama.embed({ model, input: ["The dog ran", "Once upon a time"] });
  equal([r.model, r.embeddings.length, r.embeddings[0].length], [model, 2, 64], "shape");
  const norm = Math.hypot(...r.embeddings[1]);
  assert(Math.abs(norm - 1) < 1e-5, `norm ${norm}`);
  const v1 = await fetch(`${host}/v1/embeddings`, {
    method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${owner}` },
    body: JSON.stringify({ model, input: "Once upon a time" }) }).then((x) => x.json());
  equal(r.embeddings[1], v1.data[0].embedding, "vector");
  equal(r.prompt_eval_count, v1.usage.prompt_tokens + (await ollama.embed({ model, input: "The dog ran" }))
    .prompt_eval_count, "prompt_eval_count");
});
await check("version: a release number", async () => {
  const r = await ollama.version();
  assert(/^\d+\.\d+\.\d+$/.test(r.version), `version ${r.version}`);
});
async function expectError(status, fn, text) {
  try {
    await fn();
  } catch (e) {
    equal([e.name, e.status_code], ["ResponseError", status], "error");
    assert(e.error.includes(text), `message ${JSON.stringify(e.error)} lacks ${JSON.stringify(text)}`);
    return;
  }
  throw new Error("no error");
}
await check("an option hearth does not support: 400 naming it", () =>
  expectError(400, () => ollama.chat({ model, messages, options: { mirostat: 1 } }), "options.mirostat"));
await check("format json and a schema: replies parse and validate (ajv)", async () => {
  const Ajv2020 = require("ajv/dist/2020").default;
  const schema = { type: "object", properties: { name: { type: "string", maxLength: 16 }, n: { type: "integer" } },
    required: ["name", "n"], additionalProperties: false };
  const validate = new Ajv2020().compile(schema);
  let finished = 0;
  for (const seed of [1, 2, 3]) {
    const r = await ollama.generate({ model, prompt: "Hi", format: schema, options: { seed, num_predict: 200 } });
    if (r.done_reason !== "stop") continue;
    finished++;
    assert(validate(JSON.parse(r.response)), `${r.response}: ${JSON.stringify(validate.errors)}`);
    const c = await ollama.chat({ model, messages, format: "json", options: { seed, num_predict: 200 } });
    if (c.done_reason === "stop") assert(typeof JSON.parse(c.message.content) === "object", c.message.content);
  }
  assert(finished > 0, "no reply finished");
});
await check("format: a schema keyword hearth cannot enforce is a 400", () =>
  expectError(400, () => ollama.generate({ model, prompt: "Hi", format: { type: "string", pattern: "a+" } }),
    "keyword 'pattern' is not supported"));
await check("unknown model: 404", () => expectError(404, () => ollama.chat({ model: "llama3", messages }),
  "model 'llama3' not found"));
await check("wrong key: 401", () => expectError(401, () => client("sk-not-a-key").list(), "Incorrect API key"));
await check("a key scoped to other models lists nothing and may not chat: 403", async () => {
  equal((await client(scoped).list()).models, [], "models");
  await expectError(403, () => client(scoped).chat({ model, messages }), "may not use the model");
});

server.kill("SIGTERM");
const code = await new Promise((resolve) => server.on("exit", (c) => resolve(c)));
await check("SIGTERM: exit code 0", async () => equal(code, 0, "exit code"));
rmSync(dir, { recursive: true, force: true });
finish();
