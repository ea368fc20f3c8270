#!/usr/bin/env node
// Writes tests/golden/chat/chat_templates.json: chat templates rendered by an independent Jinja
// implementation, for tests/chat/test_chat_template.cpp to compare hearth's renderer against.
//
//   scripts/fetch_test_assets.sh build/test-assets
//   node scripts/make_chat_goldens.mjs build/test-assets [tests/golden/chat/chat_templates.json]
//
// Reference: @huggingface/jinja 0.5.11 (the Jinja of transformers.js), from ASSETS/node_modules. Templates: the
// real chat_template of ASSETS/llama3 and ASSETS/qwen3 tokenizer_config.json (read at run time, not copied)
// and tests/fixtures/chat_templates/*.jinja (written for the tests). Every template x conversation x
// add_generation_prompt gives one case: the expected string, or the error the template raises.
//
// transformers renders with Python jinja2, and @huggingface/jinja differs from it in places (tojson of
// floats: 3.0 -> "3"; strftime_now; trim of some Unicode spaces; undefined attribute access). So when
// python3 with jinja2 is available, every case is also rendered by Python jinja2 configured as transformers
// configures it, and a case is kept only when both agree; disagreements are listed under "excluded".
// strftime_now is fixed to 2024-07-26 12:00 in both, and the C++ test fixes hearth's clock to the same.
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const assets = resolve(process.argv[2] ?? join(root, "build", "test-assets"));
const outPath = resolve(process.argv[3] ?? join(root, "tests", "golden", "chat", "chat_templates.json"));
const jinjaPath = join(assets, "node_modules", "@huggingface", "jinja", "dist", "index.js");
const { Template, Environment } = await import(pathToFileURL(jinjaPath).href);
const jinjaVersion = JSON.parse(readFileSync(join(assets, "node_modules", "@huggingface", "jinja", "package.json"), "utf8")).version;

const FIXED_NOW = new Date(2024, 6, 26, 12, 0, 0); // local time, like Python's datetime.now()
const strftime = (fmt) =>
  fmt.replace(/%[dbYmHM%]/g, (t) => ({
    "%d": String(FIXED_NOW.getDate()).padStart(2, "0"),
    "%b": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][FIXED_NOW.getMonth()],
    "%Y": String(FIXED_NOW.getFullYear()),
    "%m": String(FIXED_NOW.getMonth() + 1).padStart(2, "0"),
    "%H": String(FIXED_NOW.getHours()).padStart(2, "0"),
    "%M": String(FIXED_NOW.getMinutes()).padStart(2, "0"),
    "%%": "%",
  })[t]);

// ---- templates ----
// config: tokenizer_config.json under ASSETS (variables as hearth's chat_template_apply builds them);
// file: a fixture under tests/fixtures/chat_templates with the special tokens given here.
const templates = {
  llama3: { config: "llama3/tokenizer_config.json", tools: false },
  qwen3: { config: "qwen3/tokenizer_config.json", tools: true },
  llama2_inst: { file: "llama2_inst.jinja", tokens: { bos_token: "<s>", eos_token: "</s>" }, tools: false },
  chatml: { file: "chatml.jinja", tokens: { bos_token: "<|im_start|>", eos_token: "<|im_end|>" }, tools: false },
  gemma: { file: "gemma.jinja", tokens: { bos_token: "<bos>", eos_token: "<eos>" }, tools: false },
  llama31_tools: {
    file: "llama31_tools.jinja",
    tokens: { bos_token: "<|begin_of_text|>", eos_token: "<|eot_id|>" },
    tools: true,
  },
  syntax_tour: { file: "syntax_tour.jinja", tokens: { bos_token: "<s>", eos_token: "</s>" }, tools: true },
};

const tokenText = (t) => (typeof t === "string" ? t : t && typeof t.content === "string" ? t.content : null);

// The variables hearth's chat_template_apply passes: special tokens, messages, tools, documents, flag.
function configVariables(config) {
  const vars = {};
  for (const key of ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]) {
    const text = tokenText(config[key]);
    if (text !== null) vars[key] = text;
  }
  if (Array.isArray(config.additional_special_tokens)) {
    vars.additional_special_tokens = config.additional_special_tokens.map(tokenText).filter((t) => t !== null);
  }
  return vars;
}

// ---- conversations ----
const weatherTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Get the current weather in a city",
    parameters: {
      type: "object",
      properties: {
        location: { type: "string", description: "City name, e.g. Paris" },
        unit: { type: "string", enum: ["celsius", "fahrenheit"] },
      },
      required: ["location"],
    },
  },
};
const conversations = {
  system_user: { messages: [
    { role: "system", content: "You are a helpful assistant." },
    { role: "user", content: "What is the capital of France?" },
  ] },
  user_only: { messages: [{ role: "user", content: "Hello!" }] },
  multi_turn: { messages: [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Hi there" },
    { role: "assistant", content: "Hello! How can I help?" },
    { role: "user", content: "  Tell me a joke.\n" },
  ] },
  assistant_last: { messages: [
    { role: "user", content: "Say hi" },
    { role: "assistant", content: "Hi!" },
  ] },
  empty_content: { messages: [{ role: "user", content: "" }] },
  unicode: { messages: [
    { role: "user", content: "Grüße aus Köln — 你好，世界 🙂👍🏽 «ok» ½" },
    { role: "assistant", content: "Привет! 😀 Ça va ? ✓" },
    { role: "user", content: "naïve café\ttab\nnewline" },
  ] },
  thinking: { messages: [
    { role: "user", content: "What is 2+2?" },
    { role: "assistant", content: "<think>\nSimple arithmetic.\n</think>\n\n4" },
    { role: "user", content: "And 3+3?" },
  ] },
  consecutive_users: { messages: [
    { role: "user", content: "one" },
    { role: "user", content: "two" },
  ] },
  tool_call: {
    tools: [weatherTool],
    messages: [
      { role: "system", content: "You can check the weather." },
      { role: "user", content: "Weather in Paris?" },
      { role: "assistant", content: "", tool_calls: [
        { type: "function", function: { name: "get_weather", arguments: { location: "Paris", unit: "celsius" } } },
      ] },
      { role: "tool", content: "{\"temperature\": 22, \"sky\": \"clear\"}" },
    ],
  },
  tool_after: {
    tools: [weatherTool],
    messages: [
      { role: "user", content: "Weather in Oslo?" },
      { role: "assistant", content: "", tool_calls: [
        { type: "function", function: { name: "get_weather", arguments: { location: "Oslo" } } },
      ] },
      { role: "tool", content: "-3 and snowing" },
      { role: "assistant", content: "It is -3 °C and snowing in Oslo." },
      { role: "user", content: "Thanks!" },
    ],
  },
};

// ---- Python jinja2 cross-check (transformers' environment) ----
const PYTHON = String.raw`
import json, sys, datetime
import jinja2, jinja2.ext, jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
class AssistantTracker(jinja2.ext.Extension):
    tags = {"generation"}
    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)
    def _render(self, caller): return caller()
def raise_exception(message): raise jinja2.exceptions.TemplateError(message)
def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker, jinja2.ext.loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda f: datetime.datetime(2024, 7, 26, 12, 0, 0).strftime(f)
out = []
for case in json.load(sys.stdin):
    try: out.append({"expected": env.from_string(case["source"]).render(**case["variables"])})
    except jinja2.exceptions.TemplateError as e: out.append({"error": str(e)})
json.dump(out, sys.stdout)
`;

// Template.render() declares its own strftime_now (the real clock) and refuses redeclaration, so let the
// caller's strftime_now (the fixed clock) replace it.
const declareVariable = Environment.prototype.declareVariable;
Environment.prototype.declareVariable = function (name, value) {
  if (name === "strftime_now" && this.variables.has(name)) {
    this.variables.set(name, value);
    return value;
  }
  return declareVariable.call(this, name, value);
};

function renderJs(source, variables) {
  try {
    return { expected: new Template(source).render({ ...variables, strftime_now: strftime }) };
  } catch (e) {
    return { error: String(e.message ?? e) };
  }
}

function renderPython(jobs) {
  const r = spawnSync("python3", ["-c", PYTHON], { input: JSON.stringify(jobs), encoding: "utf8", maxBuffer: 1 << 28 });
  if (r.status !== 0) {
    console.warn(`make_chat_goldens: no Python jinja2 cross-check (${(r.stderr || r.error || "").toString().trim().split("\n").pop()})`);
    return null;
  }
  return JSON.parse(r.stdout);
}

// ---- main ----
const jobs = [];
for (const [name, t] of Object.entries(templates)) {
  let source, base;
  if (t.config) {
    const config = JSON.parse(readFileSync(join(assets, t.config), "utf8"));
    source = config.chat_template;
    base = configVariables(config);
  } else {
    source = readFileSync(join(root, "tests", "fixtures", "chat_templates", t.file), "utf8");
    base = { ...t.tokens };
  }
  for (const [conv, c] of Object.entries(conversations)) {
    if (c.tools && !t.tools) continue;
    for (const add_generation_prompt of [false, true]) {
      const variables = { ...base, messages: c.messages, tools: c.tools ?? null, documents: null, add_generation_prompt };
      jobs.push({ template: name, conversation: conv, add_generation_prompt, source, variables });
    }
  }
}
const python = renderPython(jobs.map(({ source, variables }) => ({ source, variables })));
const cases = [];
const excluded = [];
jobs.forEach((job, i) => {
  const js = renderJs(job.source, job.variables);
  const key = { template: job.template, conversation: job.conversation, add_generation_prompt: job.add_generation_prompt };
  const py = python?.[i];
  const agree = !py || ("error" in js && "error" in py) || (js.expected !== undefined && js.expected === py.expected);
  if (!agree) {
    excluded.push({ ...key, javascript: js, python: py });
    return;
  }
  // Errors keep the template's message (Python's when available: it is what transformers shows).
  cases.push({ ...key, ...(js.error !== undefined ? { error: py?.error ?? js.error } : { expected: js.expected }) });
});

const golden = {
  generator: "scripts/make_chat_goldens.mjs",
  reference: `@huggingface/jinja ${jinjaVersion}` + (python ? ", cross-checked with Python jinja2 (transformers' environment)" : ""),
  strftime_now: "2024-07-26T12:00:00 local time",
  templates: Object.fromEntries(Object.entries(templates).map(([k, t]) =>
    [k, t.config ? { config: t.config } : { file: `tests/fixtures/chat_templates/${t.file}`, tokens: t.tokens }])),
  conversations,
  cases,
  excluded,
};
mkdirSync(dirname(outPath), { recursive: true });
writeFileSync(outPath, JSON.stringify(golden, null, 1) + "\n");
console.log(`make_chat_goldens: ${cases.length} cases (${cases.filter((c) => c.error).length} errors), ` +
  `${excluded.length} excluded -> ${outPath}`);
for (const e of excluded) console.log(`  excluded ${e.template}/${e.conversation}/${e.add_generation_prompt}`);
