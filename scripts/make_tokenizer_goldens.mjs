#!/usr/bin/env node
// Writes tests/golden/tokenizer/<vocab>.json: token ids for a varied corpus, made with @lenml/tokenizers
// (a fork of transformers.js: an implementation independent of HF tokenizers and of hearth).
//
//   scripts/fetch_test_assets.sh build/test-assets
//   node scripts/make_tokenizer_goldens.mjs build/test-assets
//
// Vocabularies: llama3 and qwen3 (fetched) and stories260K (bundled). For every text the golden holds
//   ids:                 add_special_tokens=false
//   ids_with_special:    add_special_tokens=true (the tokenizer's post-processor)
//   ids_no_parse_special: add_special_tokens=false, special tokens in the text read as plain text
//                        (made by dropping the special entries of added_tokens, which is what HF
//                        tokenizers' encode_special_tokens does)
// tests/tokenizer/test_tokenizer_vectors.cpp compares hearth's ids with these exactly.
// The corpus avoids the few characters where transformers.js's JavaScript regexes knowingly differ from
// HF's Oniguruma ones (U+0085, U+FEFF, U+017F, U+212A).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const assets = path.resolve(process.argv[2] ?? "build/test-assets");
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { TokenizerLoader } = await import(
  path.join(assets, "node_modules/@lenml/tokenizers/dist/main.mjs"));
const pkg = JSON.parse(fs.readFileSync(path.join(assets, "node_modules/@lenml/tokenizers/package.json")));

const readJson = (p) => JSON.parse(fs.readFileSync(p, "utf8"));

// A deterministic pseudo-random generator, so that the corpus is the same on every run.
let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const randomString = (alphabet, n) => {
  const chars = Array.from(alphabet);  // code points, not UTF-16 units
  return Array.from({ length: n }, () => chars[Math.floor(rand() * chars.length)]).join("");
};

const common = [
  "",
  " ",
  "   ",
  "\n",
  "\n\n\n",
  " \n \n\t\t  \r\n x",
  "Hello world",
  " Hello world",
  "Hello   world  !  ",
  "trailing spaces    ",
  "tabs\tand\ttabs\t\t\tend",
  "line one\nline two\r\nline three\n\n\nline six",
  "1 12 123 1234 12345 123456 1234567 3.14159 1,000,000 2024-06-01 0x1F",
  "Digits glued: abc123def 9876543210",
  "你好，世界！我想在apple工作1314151天～",
  "日本語のテキスト、カタカナ、ひらがな。",
  "한국어 텍스트입니다",
  "Emoji: 🦙🚀 😶‍🌫️ 👩🏽‍💻 ✅ 🇫🇷 (flags) ❤️",
  "Accents: café naïve résumé Ångström São Paulo Cửa Việt",
  "Decomposed: cafe\u0301 nai\u0308ve A\u030angstro\u0308m",
  "Hangul jamo: \u1100\u1161\u11a8 \u1112\u1161\u11ab",
  "Mixed scripts: нещо на Български, Ελληνικά, עברית, العربية, हिन्दी",
  "def foo(x):\n    return x ** 2  # square\n\nclass Bar:\n    pass\n",
  "for (int i = 0; i < n; ++i) { sum += a[i]; }  // C++",
  "<html><body><p class=\"x\">Hi &amp; bye</p></body></html>",
  "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
  "I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL",
  "'s 't 're 've 'm 'll 'd 'S 'T 'RE 'VE 'M 'LL 'D",
  "!!!!!! ...... ?????? ------====== ''''''```````\"\"\"\"",
  "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
  "look-alikes: <|im_start |> < |im_end|> <|im_start <|endoftext|>< s> <s> </s> <unk>",
  "<|endoftext|>",
  "special at end <|im_end|>",
  "a".repeat(1000),
  "supercalifragilisticexpialidocious".repeat(20),
  "1234567890".repeat(30),
  " ".repeat(200) + "x" + "\n".repeat(50),
  randomString("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 800),
  randomString("abc ü日本🦙\n\t.,'-0123", 600),
];

const stories = [
  "Once upon a time, there was a little girl named Lily.",
  "She loved to play outside in the park. One day, she saw a big, red ball.",
  "  two leading spaces and trailing  ",
  "Byte fallback: héllo wörld 你好 🦙 ñ",
  "<s>Hello</s> <unk> text with <s> inside",
  "numbers 123 456 and punctuation!?",
  "new\nlines\n\nand\ttabs",
  "",
  " ",
  "x".repeat(500),
];

function loadTokenizer(dir, dropSpecial) {
  const tokenizerJSON = readJson(path.join(dir, "tokenizer.json"));
  const tokenizerConfig = fs.existsSync(path.join(dir, "tokenizer_config.json"))
    ? readJson(path.join(dir, "tokenizer_config.json")) : {};
  if (dropSpecial) tokenizerJSON.added_tokens = tokenizerJSON.added_tokens.filter((t) => !t.special);
  return TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
}

function golden(name, dir, texts) {
  const tok = loadTokenizer(dir, false);
  const plain = loadTokenizer(dir, true);
  const cases = texts.map((text) => ({
    text,
    ids: tok.encode(text, { add_special_tokens: false }),
    ids_with_special: tok.encode(text, { add_special_tokens: true }),
    ids_no_parse_special: plain.encode(text, { add_special_tokens: false }),
  }));
  const out = {
    about: `Token ids from ${pkg.name}@${pkg.version} (transformers.js) for the ${name} tokenizer. ` +
      "Made by scripts/make_tokenizer_goldens.mjs; do not edit. Compared exactly.",
    tokenizer: name,
    cases,
  };
  const file = path.join(root, "tests/golden/tokenizer", `${name}.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(out, null, 1) + "\n");
  console.log(`wrote ${file} (${cases.length} cases)`);
}

golden("llama3", path.join(assets, "llama3"), common);
golden("qwen3", path.join(assets, "qwen3"), common);
golden("stories260K", path.join(root, "models/stories260K"), stories.concat(common.slice(0, 30)));
