// Structured output end to end: `hearth serve` with response_format json_schema / json_object, called through
// the official `openai` npm client, every output validated by ajv (an independent JSON Schema validator; both
// pinned in scripts/fetch_test_assets.sh). The model is the tiny stories260K, sampled at temperature 1 with
// several seeds, so the outputs are varied and only the constraint makes them valid JSON. Also
// `hearth generate --json-schema`, and refusals (a keyword hearth cannot enforce is a 400 naming it).
//
//   NODE_PATH=build/test-assets/node_modules node tests/serve/structured_output.mjs HEARTH_BINARY MODEL_DIR
// Prints one line per check and "N passed, M failed"; exits 1 on any failure.
import { spawn, execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [hearth, modelDir] = process.argv.slice(2);
if (!process.env.NODE_PATH) throw new Error("set NODE_PATH to build/test-assets/node_modules");
const require = createRequire(join(process.env.NODE_PATH, "noop.js"));  // ESM ignores NODE_PATH
const OpenAI = require("openai");
const Ajv2020 = require("ajv/dist/2020").default;

const dir = mkdtempSync(join(tmpdir(), "hearth-structured-"));
const server = spawn(hearth, ["serve", "--model", modelDir, "--port", "0"], { stdio: ["ignore", "ignore", "pipe"] });
const killer = setTimeout(() => { server.kill("SIGKILL"); console.error("timed out"); process.exit(1); }, 240_000);
const port = await new Promise((resolve, reject) => {
  let err = "";
  server.stderr.on("data", (d) => {
    err += d;
    const m = err.match(/listening on http:\/\/127\.0\.0\.1:(\d+)[ \n]/);
    if (m) resolve(Number(m[1]));
  });
  server.on("exit", (code) => reject(new Error(`hearth serve exited ${code}: ${err}`)));
});
const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "none", maxRetries: 0 });

let passed = 0, failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log("ok   " + name);
  } catch (e) {
    failed++;
    console.log("FAIL " + name + ": " + (e.stack || e));
  }
}

const schemas = {
  person: {
    type: "object",
    properties: {
      name: { type: "string", maxLength: 24 },
      age: { type: "integer" },
      height: { type: "number" },
      pets: { type: "array", items: { enum: ["cat", "dog", "bird"] }, maxItems: 3 },
      happy: { type: "boolean" },
      nick: { anyOf: [{ type: "string", minLength: 1, maxLength: 6 }, { type: "null" }] },
    },
    required: ["name", "age", "pets", "happy"],
    additionalProperties: false,
  },
  tree: {
    $defs: {
      node: {
        type: "object",
        properties: { v: { type: "integer" }, kids: { type: "array", items: { $ref: "#/$defs/node" }, maxItems: 2 } },
        required: ["v"],
        additionalProperties: false,
      },
    },
    $ref: "#/$defs/node",
  },
  list: { type: "array", items: { type: "object", properties: { k: { const: "x" }, n: { type: ["integer", "null"] } },
    required: ["k", "n"], additionalProperties: false }, minItems: 1, maxItems: 3 },
};

const ajv = new Ajv2020({ strict: true });
// Each schema: 3 seeds × n = 2 at temperature 1. A reply cut by max_tokens ("length") cannot be complete JSON;
// every "stop" reply must parse and validate, and most replies must be "stop".
for (const [name, schema] of Object.entries(schemas)) {
  await check(`json_schema '${name}': every finished reply validates`, async () => {
    const validate = ajv.compile(schema);
    let stops = 0, total = 0;
    for (const seed of [1, 2, 3]) {
      const r = await client.chat.completions.create({
        model: "stories260K", messages: [{ role: "user", content: "Describe a person as JSON." }],
        temperature: 1, seed, n: 2, max_tokens: 400,
        response_format: { type: "json_schema", json_schema: { name, schema, strict: true } },
      });
      for (const c of r.choices) {
        total++;
        if (c.finish_reason !== "stop") continue;
        stops++;
        const value = JSON.parse(c.message.content);
        if (!validate(value))
          throw new Error(`${JSON.stringify(c.message.content)} fails: ${ajv.errorsText(validate.errors)}`);
      }
    }
    if (stops < total / 2) throw new Error(`only ${stops} of ${total} replies finished`);
  });
}

await check("json_object: streamed replies are JSON objects", async () => {
  for (const seed of [4, 5]) {
    const stream = await client.chat.completions.create({
      model: "stories260K", messages: [{ role: "user", content: "JSON please" }], temperature: 1, seed,
      max_tokens: 300, stream: true, response_format: { type: "json_object" },
    });
    let text = "", finish = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    if (finish !== "stop") continue;
    const v = JSON.parse(text);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`not an object: ${text}`);
  }
});

await check("completions endpoint: json_schema works there too, greedy is deterministic", async () => {
  const body = { model: "stories260K", prompt: "Once upon a time", temperature: 0, max_tokens: 200,
    response_format: { type: "json_schema", json_schema: { name: "list", schema: schemas.list } } };
  const a = await client.completions.create(body);
  const b = await client.completions.create(body);
  if (a.choices[0].text !== b.choices[0].text) throw new Error("greedy outputs differ");
  if (a.choices[0].finish_reason === "stop" && !ajv.validate(schemas.list, JSON.parse(a.choices[0].text)))
    throw new Error(`invalid: ${a.choices[0].text}`);
});

await check("a keyword hearth cannot enforce is a 400 naming it", async () => {
  try {
    await client.chat.completions.create({
      model: "stories260K", messages: [{ role: "user", content: "x" }],
      response_format: { type: "json_schema", json_schema: { name: "n",
        schema: { type: "object", properties: { s: { type: "string", pattern: "^a+$" } } } } },
    });
    throw new Error("accepted");
  } catch (e) {
    if (!(e instanceof OpenAI.BadRequestError)) throw e;
    if (e.param !== "response_format.json_schema.schema/properties/s/pattern") throw new Error(`param ${e.param}`);
  }
});

await check("hearth generate --json-schema: outputs validate", async () => {
  const file = join(dir, "person.json");
  writeFileSync(file, JSON.stringify(schemas.person));
  const validate = ajv.compile(schemas.person);
  let stops = 0;
  for (const seed of ["7", "8", "9"]) {
    const out = JSON.parse(execFileSync(hearth, ["--json", "generate", "--model", modelDir, "--prompt", "Once",
      "--json-schema", file, "--temperature", "1", "--seed", seed, "--max-tokens", "400"],
      { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }));
    if (out.finish_reason !== "stop") continue;
    stops++;
    if (!validate(JSON.parse(out.text))) throw new Error(`${out.text}: ${ajv.errorsText(validate.errors)}`);
  }
  if (stops === 0) throw new Error("no run finished");
});

clearTimeout(killer);
server.kill("SIGTERM");
rmSync(dir, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
