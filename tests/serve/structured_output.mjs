// Structured output end to end: `hearth serve` with response_format json_schema / json_object, called through
// the official `openai` npm client, every output validated by ajv (an independent JSON Schema validator; both
// pinned in scripts/fetch_test_assets.sh). The model is the tiny stories260K, sampled at temperature 1 with
// several seeds, so the outputs are varied and only the constraint makes them valid JSON. Also
// `hearth generate --json-schema`, refusals (a keyword hearth cannot enforce is a 400 naming it), and tool
// calls: tool_choice "required" / a named function give calls whose arguments validate against the tool's
// parameters, whole and streamed, with the model's own template (copies of stories260K given the Qwen2.5,
// Llama 3.1 and Mistral v0.3 fixture templates) and with hearth's fallback; a call and its result go back in.
//
//   NODE_PATH=build/test-assets/node_modules node tests/serve/structured_output.mjs HEARTH_BINARY MODEL_DIR
// Prints one line per check and "N passed, M failed"; exits 1 on any failure.
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync, cpSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assetsRequire, check, deadline, finish, startServer } from "./harness.mjs";

const [hearth, modelDir] = process.argv.slice(2);
const require = assetsRequire();
const OpenAI = require("openai");
const Ajv2020 = require("ajv/dist/2020").default;

const dir = mkdtempSync(join(tmpdir(), "hearth-structured-"));
deadline(280_000);
// An openai client of a new server for `model`.
async function serverClient(model) {
  const { port } = await startServer(hearth, model);
  return new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "none", maxRetries: 0 });
}
const client = await serverClient(modelDir);


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

// --- tool calls ---
// Small tools: stories260K has a 512-token context and its vocabulary spells JSON out nearly byte by byte.
const tools = [
  { type: "function", function: { name: "weather",
    parameters: { type: "object", properties: { city: { type: "string", maxLength: 12 }, unit: { enum: ["c", "f"] } },
      required: ["city", "unit"], additionalProperties: false } } },
  { type: "function", function: { name: "add",
    parameters: { type: "object", properties: { a: { type: "integer" }, b: { type: "integer" } },
      required: ["a", "b"], additionalProperties: false } } },
];
const validators = Object.fromEntries(tools.map((t) => [t.function.name, ajv.compile(t.function.parameters)]));
function checkCalls(calls, only) {
  if (!Array.isArray(calls) || calls.length === 0) throw new Error(`no tool calls: ${JSON.stringify(calls)}`);
  for (const c of calls) {
    if (c.type !== "function" || typeof c.id !== "string" || !c.id) throw new Error(`bad call ${JSON.stringify(c)}`);
    if (only && c.function.name !== only) throw new Error(`called ${c.function.name}, not ${only}`);
    const validate = validators[c.function.name];
    if (!validate) throw new Error(`unknown function ${c.function.name}`);
    if (!validate(JSON.parse(c.function.arguments)))
      throw new Error(`${c.function.arguments}: ${ajv.errorsText(validate.errors)}`);
  }
}
const question = [{ role: "user", content: "Weather in Paris?" }];

// A copy of stories260K whose tokenizer_config.json carries a fixture chat template (none: hearth's fallback),
// with a 4096-token context: the templates' tool instructions outgrow its 512 tokens, and RoPE runs at any
// position (the replies are no better for it; only the grammar makes them calls).
function withTemplate(name) {
  const copy = join(dir, name ?? "fallback", "stories260K");  // the folder's name is the model's name in the API
  cpSync(modelDir, copy, { recursive: true });
  const tc = JSON.parse(readFileSync(join(copy, "tokenizer_config.json"), "utf8"));
  if (name) tc.chat_template = readFileSync(join(modelDir, "..", "..", "tests", "fixtures", "chat_templates", name), "utf8");
  writeFileSync(join(copy, "tokenizer_config.json"), JSON.stringify(tc));
  const config = JSON.parse(readFileSync(join(copy, "config.json"), "utf8"));
  config.max_position_embeddings = 4096;
  writeFileSync(join(copy, "config.json"), JSON.stringify(config));
  return copy;
}

const variants = [];
for (const t of [null, "qwen25.jinja", "llama31_tools.jinja", "mistral_v03.jinja"])
  variants.push([t ?? "fallback (no template)", await serverClient(withTemplate(t))]);
const fallback = variants[0][1];
for (const [name, c] of variants) {
  await check(`${name}: tool_choice required gives calls whose arguments validate`, async () => {
    for (const seed of [1, 2]) {
      const r = await c.chat.completions.create({ model: "stories260K", messages: question, tools,
        tool_choice: "required", parallel_tool_calls: false, temperature: 1, seed, max_tokens: 300 });
      const ch = r.choices[0];
      if (ch.finish_reason !== "tool_calls") throw new Error(`finish ${ch.finish_reason}: ${JSON.stringify(ch.message)}`);
      checkCalls(ch.message.tool_calls);
    }
  });
  await check(`${name}: a named function, streamed: deltas assemble into its call`, async () => {
    const stream = await c.chat.completions.create({ model: "stories260K", messages: question, tools,
      tool_choice: { type: "function", function: { name: "add" } }, parallel_tool_calls: false,
      temperature: 1, seed: 3, max_tokens: 300, stream: true });
    const calls = [];
    let content = "", finish = null;
    for await (const chunk of stream) {
      const d = chunk.choices[0]?.delta ?? {};
      content += d.content ?? "";
      for (const t of d.tool_calls ?? []) {
        calls[t.index] ??= { id: "", type: "function", function: { name: "", arguments: "" } };
        if (t.id) calls[t.index].id = t.id;
        calls[t.index].function.name += t.function?.name ?? "";
        calls[t.index].function.arguments += t.function?.arguments ?? "";
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    if (finish !== "tool_calls") throw new Error(`finish ${finish}, content ${JSON.stringify(content)}`);
    if (content.includes("<tool_call") || content.includes("TOOL_CALLS")) throw new Error(`call text leaked: ${content}`);
    if (calls.length !== 1) throw new Error(`${calls.length} calls with parallel_tool_calls false`);
    checkCalls(calls, "add");
  });
  await check(`${name}: the call and its result go back into the conversation`, async () => {
    const first = await c.chat.completions.create({ model: "stories260K", messages: question, tools,
      tool_choice: "required", parallel_tool_calls: false, temperature: 0, max_tokens: 300 });
    const msg = first.choices[0].message;
    checkCalls(msg.tool_calls);
    const messages = [...question, msg, { role: "tool", tool_call_id: msg.tool_calls[0].id, content: "Sunny, 21 C" }];
    const r = await c.chat.completions.create({ model: "stories260K", messages, tools, max_tokens: 8, temperature: 0 });
    if (!r.choices[0].finish_reason) throw new Error("no reply");
  });
}

await check("parallel calls: every finished reply's calls validate", async () => {
  let finished = 0;
  for (const seed of [4, 5, 6]) {
    const r = await variants[1][1].chat.completions.create({ model: "stories260K", messages: question, tools,
      tool_choice: "required", temperature: 1, seed, max_tokens: 400 });
    if (r.choices[0].finish_reason === "length") continue;  // a random model may go on calling
    finished++;
    checkCalls(r.choices[0].message.tool_calls);
  }
  if (finished === 0) throw new Error("no reply finished");
});

await check("tool_choice auto: a reply is text or well-formed calls, never half of each", async () => {
  for (const seed of [1, 2, 3]) {
    const r = await fallback.chat.completions.create({ model: "stories260K", messages: question, tools,
      temperature: 1, seed, max_tokens: 40 });
    const m = r.choices[0].message;
    if (m.tool_calls) checkCalls(m.tool_calls);
    else if (typeof m.content !== "string") throw new Error(JSON.stringify(m));
  }
});

await check("a tool whose parameters use an unsupported keyword is a 400 naming it (required)", async () => {
  try {
    await fallback.chat.completions.create({ model: "stories260K", messages: question, tool_choice: "required",
      tools: [{ type: "function", function: { name: "f", parameters: { type: "object",
        properties: { n: { type: "integer", minimum: 1 } } } } }] });
    throw new Error("accepted");
  } catch (e) {
    if (!(e instanceof OpenAI.BadRequestError)) throw e;
    if (e.param !== "tools[0].function.parameters/properties/n/minimum") throw new Error(`param ${e.param}`);
  }
});

rmSync(dir, { recursive: true, force: true });
finish();
