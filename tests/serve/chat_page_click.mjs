// Drives hearth serve's chat page (GET /) in headless Chromium over the DevTools protocol, with real input
// events: a mouse click into the text box, typed text, a mouse click on Send. Picks the model/adapter in the
// page's <select>, waits for the streamed reply to finish, saves a screenshot, and prints
// {"user", "reply", "finish", "models"} as JSON on stdout. Run by tests/serve/test_serve.cpp.
//
//   node --experimental-websocket chat_page_click.mjs URL MODEL MESSAGE SCREENSHOT.png
// Needs Debian's `chromium`. Contacts only 127.0.0.1 (the server and Chromium's own debugging port).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [url, model, message, screenshot] = process.argv.slice(2);
const deadline = Date.now() + 90_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const profile = mkdtempSync(join(tmpdir(), "hearth-chromium-"));
const chrome = spawn("chromium", ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
  "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", `--user-data-dir=${profile}`,
  "--window-size=1000,700", "about:blank"], { stdio: ["ignore", "ignore", "pipe"] });

function fail(msg) {
  console.error("chat_page_click: " + msg);
  chrome.kill("SIGKILL");
  rmSync(profile, { recursive: true, force: true });
  process.exit(1);
}
setTimeout(() => fail("timed out"), 90_000).unref();

const wsUrl = await new Promise((resolve) => {
  let err = "";
  chrome.stderr.on("data", (d) => {
    err += d;
    const m = err.match(/DevTools listening on (ws:\/\/127\.0\.0\.1:\d+\/\S+)/);
    if (m) resolve(m[1]);
  });
  chrome.on("exit", (code) => fail(`chromium exited (${code}): ${err.slice(-500)}`));
});

const ws = new WebSocket(wsUrl);
await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
let nextId = 1;
const pending = new Map();
ws.onmessage = (e) => {
  const msg = JSON.parse(e.data);
  if (msg.id && pending.has(msg.id)) {
    const { resolve, reject } = pending.get(msg.id);
    pending.delete(msg.id);
    msg.error ? reject(new Error(JSON.stringify(msg.error))) : resolve(msg.result);
  }
};
const send = (method, params = {}, sessionId) => new Promise((resolve, reject) => {
  const id = nextId++;
  pending.set(id, { resolve, reject });
  ws.send(JSON.stringify({ id, method, params, sessionId }));
});

const { targetId } = await send("Target.createTarget", { url: "about:blank" });
const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
const page = (method, params) => send(method, params, sessionId);
const evaluate = async (expression) =>
  (await page("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true })).result.value;
async function waitFor(expression, what) {
  while (Date.now() < deadline) {
    if (await evaluate(expression)) return;
    await sleep(100);
  }
  fail("gave up waiting for " + what);
}
async function click(selector) {
  const r = await evaluate(`(() => { const b = document.querySelector(${JSON.stringify(selector)}).getBoundingClientRect();
    return { x: b.left + b.width / 2, y: b.top + b.height / 2 }; })()`);
  await page("Input.dispatchMouseEvent", { type: "mouseMoved", x: r.x, y: r.y });
  await page("Input.dispatchMouseEvent", { type: "mousePressed", x: r.x, y: r.y, button: "left", clickCount: 1 });
  await page("Input.dispatchMouseEvent", { type: "mouseReleased", x: r.x, y: r.y, button: "left", clickCount: 1 });
}

await page("Page.enable");
await page("Runtime.enable");
await page("Page.navigate", { url });
await waitFor(`document.getElementById("model") && document.getElementById("model").dataset.loaded === "1"`, "the model list");
const models = await evaluate(`[...document.querySelectorAll("#model option")].map((o) => o.value)`);
if (!models.includes(model)) fail(`model ${model} not offered; the page lists ${models}`);
// Settings: the adapter in the <select> (a native popup cannot be clicked headless), greedy, short reply.
await evaluate(`(() => { const s = document.getElementById("model"); s.value = ${JSON.stringify(model)};
  s.dispatchEvent(new Event("change")); document.getElementById("temperature").value = "0";
  document.getElementById("max_tokens").value = "24"; })()`);
await click("#input");
await page("Input.insertText", { text: message });
await click("#send");
await waitFor(`(() => { const a = document.querySelector(".msg.assistant, .msg.error"); return a && a.dataset.done === "1"; })()`,
  "the reply");
const result = await evaluate(`(() => { const a = document.querySelector("#log .msg:last-child");
  return { user: document.querySelector(".msg.user").textContent, reply: a.textContent, finish: a.dataset.finish || "",
           error: a.classList.contains("error") }; })()`);
const shot = await page("Page.captureScreenshot", { format: "png" });
writeFileSync(screenshot, Buffer.from(shot.data, "base64"));
console.log(JSON.stringify({ ...result, models }));
ws.close();
chrome.removeAllListeners("exit");
chrome.kill("SIGTERM");
await sleep(200);
rmSync(profile, { recursive: true, force: true });
process.exit(0);
