#include "serve/chat_page.h"

namespace hearth::serve {

const std::string& chat_page_html() {
  static const std::string page = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hearth chat</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; display: flex; flex-direction: column; height: 100vh; }
  header { display: flex; gap: .5em; align-items: center; padding: .5em; background: #f3efe9; flex-wrap: wrap; }
  header label { font-size: .9em; }
  #log { flex: 1; overflow-y: auto; padding: 1em; }
  .msg { white-space: pre-wrap; margin: .4em 0; padding: .5em .7em; border-radius: .5em; max-width: 48em; }
  .user { background: #dbe9ff; margin-left: auto; }
  .assistant { background: #eee; }
  .error { background: #ffd9d9; }
  form { display: flex; gap: .5em; padding: .5em; border-top: 1px solid #ddd; }
  #input { flex: 1; min-height: 3em; font: inherit; }
  #send { padding: 0 1.5em; font: inherit; }
</style>
</head>
<body>
<header>
  <strong>hearth</strong>
  <label>Model <select id="model"></select></label>
  <label>Temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="0.7" style="width:4em"></label>
  <label>Max tokens <input id="max_tokens" type="number" min="1" value="256" style="width:5em"></label>
  <label>API key <input id="key" type="password" placeholder="only if the server needs one" size="18"></label>
  <button id="clear" type="button">New chat</button>
</header>
<div id="log"></div>
<form id="form">
  <textarea id="input" placeholder="Say something… (Enter sends, Shift+Enter for a new line)"></textarea>
  <button id="send" type="submit">Send</button>
</form>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const history = [];
$("key").value = localStorage.getItem("hearth_key") || "";
$("key").addEventListener("change", () => { localStorage.setItem("hearth_key", $("key").value); loadModels(); });
$("clear").addEventListener("click", () => { history.length = 0; $("log").textContent = ""; });

function headers() {
  const h = { "Content-Type": "application/json" };
  if ($("key").value) h["Authorization"] = "Bearer " + $("key").value;
  return h;
}

function bubble(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.textContent = text;
  $("log").appendChild(div);
  $("log").scrollTop = $("log").scrollHeight;
  return div;
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
  } catch (e) {
    bubble("error", "Could not list models: " + e.message);
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

async function send() {
  const text = $("input").value;
  if (!text.trim() || $("send").disabled) return;
  $("input").value = "";
  $("send").disabled = true;
  history.push({ role: "user", content: text });
  bubble("user", text);
  const out = bubble("assistant", "");
  try {
    const r = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(),
      body: JSON.stringify({ model: $("model").value, messages: history, stream: true,
                             temperature: Number($("temperature").value), max_tokens: Number($("max_tokens").value) }),
    });
    if (!r.ok) {
      const j = await r.json().catch(() => ({}));
      throw new Error(j.error ? j.error.message : r.statusText);
    }
    await readEvents(r.body, (j) => {
      if (j.error) throw new Error(j.error.message);
      const c = j.choices && j.choices[0];
      if (c && c.delta && c.delta.content) out.textContent += c.delta.content;
      if (c && c.finish_reason) out.dataset.finish = c.finish_reason;
      $("log").scrollTop = $("log").scrollHeight;
    });
    history.push({ role: "assistant", content: out.textContent });
  } catch (e) {
    out.className = "msg error";
    out.textContent += (out.textContent ? "\n" : "") + "Error: " + e.message;
    history.pop();
  } finally {
    out.dataset.done = "1";
    $("send").disabled = false;
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
