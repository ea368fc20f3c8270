#include "serve/chat_page.h"

namespace hearth::serve {

// The page is one string: no build step, nothing fetched from elsewhere (no CDN, fonts or images). Model output is
// only ever put into the page as text (text nodes, textContent), never parsed as HTML.
const std::string& chat_page_html() {
  static const std::string page = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hearth chat</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; display: flex; flex-direction: column; height: 100vh; }
  header { padding: .3em .5em; background: #f3efe9; }
  header .row { display: flex; gap: .5em; align-items: center; padding: .2em 0; flex-wrap: wrap; }
  header label { font-size: .9em; }
  /* one line whatever it says, so that the rows below never move when it changes (a click would miss) */
  #status { font-size: .9em; color: #8a1c1c; flex: 1 1 0; min-width: 0; white-space: nowrap; overflow: hidden;
            text-overflow: ellipsis; }
  #key { font-family: ui-monospace, "DejaVu Sans Mono", monospace; min-width: 24ch; max-width: 100%;
         box-sizing: content-box; }
  #system { flex: 1; min-width: 20em; font: inherit; resize: vertical; }
  #log { flex: 1; overflow-y: auto; padding: 1em; }
  .msg { white-space: pre-wrap; margin: .4em 0; padding: .5em .7em; border-radius: .5em; max-width: 48em; }
  .user { background: #dbe9ff; margin-left: auto; }
  .assistant { background: #eee; }
  .error { background: #ffd9d9; }
  .msg pre { background: #1e1e1e; color: #f0f0f0; padding: .6em .8em; border-radius: .3em; margin: .4em 0;
             overflow-x: auto; white-space: pre; }
  .msg code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .9em; }
  .thinking .status { color: #666; font-style: italic; }
  .thinking .status span { animation: blink 1.2s infinite; }
  .thinking .status span:nth-child(2) { animation-delay: .2s; }
  .thinking .status span:nth-child(3) { animation-delay: .4s; }
  @keyframes blink { 0%, 100% { opacity: .2; } 50% { opacity: 1; } }
  .note { display: inline-block; margin-top: .4em; padding: .1em .5em; border-radius: .3em; font-size: .85em;
          white-space: normal; }
  .note.length { background: #ffe08a; color: #5c4400; }
  .note.stopped { background: #d6d6d6; color: #333; }
  form { display: flex; gap: .5em; padding: .5em; border-top: 1px solid #ddd; }
  #input { flex: 1; min-height: 3em; font: inherit; }
  #send, #stop { padding: 0 1.5em; font: inherit; }
  #stop { display: none; background: #c62828; color: #fff; border: 1px solid #8e0000; border-radius: .3em; }
  body.busy #stop { display: block; }
</style>
</head>
<body>
<header>
  <div class="row">
    <strong>hearth</strong>
    <label>Model <select id="model"></select></label>
    <label>Temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="0.7" style="width:4em"></label>
    <label>Max tokens <input id="max_tokens" type="number" min="1" value="256" style="width:5em"></label>
    <button id="clear" type="button">New chat</button>
    <span id="status" role="status"></span>
  </div>
  <div class="row">
    <label for="key">API key</label>
    <input id="key" type="password" placeholder="only if the server needs one" autocomplete="off" spellcheck="false">
    <button id="key_show" type="button" aria-pressed="false" title="Show or hide the key">Show</button>
  </div>
  <div class="row">
    <label for="system">System prompt</label>
    <textarea id="system" rows="1"
              placeholder="optional: sent first in every request, as the system message"></textarea>
  </div>
</header>
<div id="log"></div>
<form id="form">
  <textarea id="input" placeholder="Say something… (Enter sends, Shift+Enter for a new line)"></textarea>
  <button id="send" type="submit">Send</button>
  <button id="stop" type="button" title="Stop the reply (what came so far stays)">Stop</button>
</form>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const history = [];
let controller = null;  // the AbortController of the reply being streamed
let chat = 0;           // which conversation: New chat starts another, which a stopped reply must not join

// The key input is as wide as the key (monospace: one ch per character), so all of it can be read.
function keyFit() { $("key").style.width = Math.max(24, $("key").value.length + 2) + "ch"; }
$("key").value = localStorage.getItem("hearth_key") || "";
$("system").value = localStorage.getItem("hearth_system") || "";
keyFit();
$("key").addEventListener("input", keyFit);
$("key").addEventListener("change", () => { localStorage.setItem("hearth_key", $("key").value); loadModels(); });
$("key_show").addEventListener("click", () => {
  const show = $("key").type === "password";
  $("key").type = show ? "text" : "password";
  $("key_show").textContent = show ? "Hide" : "Show";
  $("key_show").setAttribute("aria-pressed", String(show));
});
$("system").addEventListener("change", () => localStorage.setItem("hearth_system", $("system").value));
$("clear").addEventListener("click", () => {
  if (controller) controller.abort();
  ++chat;
  history.length = 0;
  $("log").textContent = "";
});
$("stop").addEventListener("click", () => { if (controller) controller.abort(); });

function headers() {
  const h = { "Content-Type": "application/json" };
  if ($("key").value) h["Authorization"] = "Bearer " + $("key").value;
  return h;
}

// Fills `el` with `text`: ``` fenced blocks (an optional language after the opening fence) as <pre><code>, the
// rest as text. An unclosed fence (a reply still streaming) runs to the end. Text nodes and textContent only.
function render(el, text) {
  el.textContent = "";
  const parts = text.split("```");
  parts.forEach((part, i) => {
    if (i % 2 === 0) {
      if (i > 0) part = part.replace(/^\n/, "");                 // the closing fence's line end
      if (i < parts.length - 1) part = part.replace(/\n$/, "");  // the opening fence's line start
      if (part) el.appendChild(document.createTextNode(part));
      return;
    }
    const code = document.createElement("code");
    const nl = part.indexOf("\n");
    const lang = nl >= 0 ? part.slice(0, nl).trim() : "";
    if (nl >= 0 && /^[\w+#.-]*$/.test(lang)) {
      if (lang) code.dataset.lang = lang;
      part = part.slice(nl + 1);
    }
    code.textContent = part.replace(/\n$/, "");
    const pre = document.createElement("pre");
    pre.appendChild(code);
    el.appendChild(pre);
  });
}

function scrollDown() { $("log").scrollTop = $("log").scrollHeight; }

// A message: .msg.ROLE holding a .body (its text, rendered) and, later, .note markers. The text as received is
// the element's `rawText`.
function bubble(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  const body = document.createElement("div");
  body.className = "body";
  div.appendChild(body);
  div.rawText = text;
  render(body, text);
  $("log").appendChild(div);
  scrollDown();
  return div;
}

function note(div, kind, text) {
  const n = document.createElement("div");
  n.className = "note " + kind;
  n.textContent = text;
  div.appendChild(n);
}

async function loadModels() {
  const sel = $("model");
  try {
    const r = await fetch("/v1/models", { headers: headers() });
    const j = await r.json();
    if (!r.ok) throw new Error(j.error ? j.error.message : r.statusText);
    const keep = sel.value;
    sel.textContent = "";
    for (const m of j.data) {
      const o = document.createElement("option");
      o.value = o.textContent = m.id;
      if (m.parent) o.textContent += " (adapter)";
      sel.appendChild(o);
    }
    if (keep) sel.value = keep;
    sel.dataset.loaded = "1";
    $("status").textContent = $("status").title = "";
  } catch (e) {
    $("status").textContent = $("status").title = "Could not list models: " + e.message;
  }
}

// Reads an SSE body, calling onData with each parsed "data:" JSON until [DONE].
async function readEvents(body, onData) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const event = buf.slice(0, i);
      buf = buf.slice(i + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        onData(JSON.parse(data));
      }
    }
  }
}

// The assistant's bubble while it waits for its first token: "Thinking…" (class "thinking").
function thinking(out, on) {
  out.classList.toggle("thinking", on);
  const s = out.querySelector(".status");
  if (on && !s) {
    const status = document.createElement("div");
    status.className = "status";
    status.textContent = "Thinking";
    for (let i = 0; i < 3; ++i) status.appendChild(document.createElement("span")).textContent = ".";
    out.appendChild(status);
  } else if (!on && s) {
    s.remove();
  }
}

function requestBody() {
  const messages = [];
  if ($("system").value.trim()) messages.push({ role: "system", content: $("system").value });
  return JSON.stringify({ model: $("model").value, messages: messages.concat(history), stream: true,
                          temperature: Number($("temperature").value), max_tokens: Number($("max_tokens").value) });
}

async function send() {
  const text = $("input").value;
  if (!text.trim() || controller) return;
  $("input").value = "";
  history.push({ role: "user", content: text });
  bubble("user", text);
  const out = bubble("assistant", "");
  const body = out.querySelector(".body");
  const mine = controller = new AbortController();
  const conversation = chat;
  $("send").disabled = true;
  document.body.classList.add("busy");
  thinking(out, true);
  try {
    const r = await fetch("/v1/chat/completions", { method: "POST", headers: headers(), body: requestBody(),
                                                    signal: mine.signal });
    if (!r.ok) {
      const j = await r.json().catch(() => ({}));
      throw new Error(j.error ? j.error.message : r.statusText);
    }
    await readEvents(r.body, (j) => {
      if (j.error) throw new Error(j.error.message);
      const c = j.choices && j.choices[0];
      if (c && c.delta && c.delta.content) {
        thinking(out, false);
        out.rawText += c.delta.content;
        render(body, out.rawText);
      }
      if (c && c.finish_reason) out.dataset.finish = c.finish_reason;
      scrollDown();
    });
    if (conversation === chat) history.push({ role: "assistant", content: out.rawText });
    if (out.dataset.finish === "length")
      note(out, "length", "Cut off: the reply reached the token limit (Max tokens).");
  } catch (e) {
    if (e.name === "AbortError") {  // Stop (or New chat): what came so far stays, and is part of the conversation
      out.dataset.stopped = "1";
      note(out, "stopped", "Stopped.");
      if (conversation !== chat) return;
      if (out.rawText) history.push({ role: "assistant", content: out.rawText });
      else history.pop();
    } else {
      out.className = "msg error";
      out.rawText += (out.rawText ? "\n" : "") + "Error: " + e.message;
      render(body, out.rawText);
      if (conversation === chat) history.pop();
    }
  } finally {
    thinking(out, false);
    if (controller === mine) controller = null;
    out.dataset.done = "1";
    $("send").disabled = false;
    document.body.classList.remove("busy");
    scrollDown();
    $("input").focus();
  }
}

$("form").addEventListener("submit", (e) => { e.preventDefault(); send(); });
$("input").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(); }
});
loadModels();
</script>
</body>
</html>
)HTML";
  return page;
}

}  // namespace hearth::serve
