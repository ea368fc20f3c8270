// Drives hearth serve's chat page (GET /) in headless Chromium over the DevTools protocol (cdp.mjs), with real
// input events, as a user would, on a server that needs an API key:
//   1. the key typed into its field and shown (Show): the whole key drawn inside the field;
//   2. model (an adapter), greedy, a short reply and a system prompt set; a message typed and sent while the
//      request is held back by the DevTools Fetch domain: "Thinking…" on screen and the Stop button up; the
//      request's body (its first message the system prompt); then the reply streamed, cut by the token limit and
//      marked so;
//   3. New chat, a long reply slowed down by DevTools network throttling: a screenshot mid-generation, a click on
//      Stop, the request cancelled, the partial reply kept and marked, nothing more arriving;
//   4. New chat, a reply with ``` fenced code and HTML in it, served by the Fetch domain: code in <pre><code>,
//      monospace, and the HTML shown as text (no element made, no script run).
// Checks on the page's DOM and on the screenshots' pixels go into "checks" (name -> true when it held); the
// texts go out as well, for tests/serve/test_serve.cpp to compare with the API's replies. Prints one JSON object.
//
//   node --experimental-websocket chat_page_click.mjs URL MODEL MESSAGE KEY SYSTEM SHOT_DIR
// Needs Debian's `chromium`. Contacts only 127.0.0.1.
import { join } from "node:path";
import { browserOpen, colorNear, luminance, pixelAt, pixelsWhere } from "./cdp.mjs";

const [url, model, message, key, system, shots] = process.argv.slice(2);
const b = await browserOpen();
const checks = {}, out = { checks };
const check = (name, ok) => { checks[name] = Boolean(ok); };
const LAST = "#log > .msg:last-child";  // the newest bubble: the reply once one was sent
const lastReply = `document.querySelector(${JSON.stringify(LAST)})`;
const replyDone = `(() => { const a = ${lastReply}; return a && a.dataset.done === "1"; })()`;
const RED = [0xc6, 0x28, 0x28], AMBER = [0xff, 0xe0, 0x8a], GREY = [0xd6, 0xd6, 0xd6], CODE_BG = [0x1e, 0x1e, 0x1e];

// The Stop button is on screen (its red, beside the text in its padding) and Send is disabled, or neither.
async function stopShown(img) {
  const r = await b.rect("#stop");
  const visible = await b.evaluate(`getComputedStyle(document.getElementById("stop")).display !== "none"`);
  const red = r && r.width > 0 && colorNear(pixelAt(img, r.x + 5, r.y + r.height / 2), RED);
  const sendOff = await b.evaluate(`document.getElementById("send").disabled`);
  return visible && red && sendOff;
}

async function keyStep() {
  await b.page("Page.navigate", { url });
  await b.waitFor(`document.getElementById("status") && document.getElementById("status").textContent !== ""`,
    "the page to say it needs a key");
  check("key_asked", await b.evaluate(`document.getElementById("model").dataset.loaded !== "1"`));
  await b.click("#key");
  await b.type(key);
  await b.click("#key_show");  // also leaves the field: its change event lists the models with the key
  await b.waitFor(`document.getElementById("model").dataset.loaded === "1"`, "the model list");
  out.models = await b.evaluate(`[...document.querySelectorAll("#model option")].map((o) => o.value)`);
  const k = await b.evaluate(`(() => { const e = document.getElementById("key"), r = e.getBoundingClientRect();
    const c = document.createElement("canvas").getContext("2d"), s = getComputedStyle(e);
    c.font = s.font;
    return { type: e.type, value: e.value, scroll: e.scrollWidth, client: e.clientWidth, right: r.right,
             viewport: innerWidth, textLeft: r.x + parseFloat(s.paddingLeft) + parseFloat(s.borderLeftWidth),
             textWidth: c.measureText(e.value).width }; })()`);
  check("key_shown_as_text", k.type === "text" && k.value === key);
  check("key_fits_field", k.scroll <= k.client && k.right <= k.viewport);
  // The key's last character is drawn: dark pixels reach the end of the text, and stay inside the field.
  const img = await b.screenshot(join(shots, "chat_page_key.png"));
  const ink = pixelsWhere(img, await b.rect("#key"), (p) => luminance(p) < 120, 3);
  out.key_ink = { ...k, inkRight: ink.right };
  check("key_drawn_whole", ink.right >= k.textLeft + k.textWidth - 8 && ink.right <= k.right - 2);
}

async function replyStep() {
  await b.evaluate(`(() => { const s = document.getElementById("model"); s.value = ${JSON.stringify(model)};
    s.dispatchEvent(new Event("change")); document.getElementById("temperature").value = "0";
    document.getElementById("max_tokens").value = "24"; })()`);
  await b.click("#system");
  await b.type(system);
  await b.page("Fetch.enable", { patterns: [{ urlPattern: "*/v1/chat/completions", requestStage: "Request" }] });
  const paused = b.next("Fetch.requestPaused");
  await b.click("#input");
  await b.type(message);
  await b.click("#send");
  const held = await paused;  // the request waits here: nothing can have come back
  out.sent = JSON.parse(held.request.postData);
  const img = await b.screenshot(join(shots, "chat_page_thinking.png"));
  const status = await b.rect(`${LAST} .status`);
  check("thinking_dom", await b.evaluate(`(() => { const a = ${lastReply};
    return a.classList.contains("thinking") && a.querySelector(".status").textContent.startsWith("Thinking") &&
           a.rawText === ""; })()`));
  check("thinking_drawn", status && pixelsWhere(img, status, (p) => luminance(p) < 170).count > 20);
  check("stop_up_while_waiting", await stopShown(img));
  await b.page("Fetch.continueRequest", { requestId: held.requestId });
  await b.page("Fetch.disable");
  await b.waitFor(replyDone, "the reply");
  Object.assign(out, await b.evaluate(`(() => { const a = ${lastReply};
    return { user: document.querySelector(".msg.user").rawText, reply: a.rawText, finish: a.dataset.finish || "",
             error: a.classList.contains("error"), notes: [...a.querySelectorAll(".note")].map((n) => n.className),
             thinking_after: a.classList.contains("thinking") || !!a.querySelector(".status") }; })()`));
  const done = await b.screenshot(join(shots, "chat_page.png"));
  const note = await b.rect(`${LAST} .note.length`);
  check("length_note_drawn", note && colorNear(pixelAt(done, note.x + 3, note.y + note.height / 2), AMBER));
  check("stop_gone_after", !(await stopShown(done)) &&
    (await b.evaluate(`getComputedStyle(document.getElementById("stop")).display`)) === "none");
}

async function stopStep() {
  await b.click("#clear");
  await b.evaluate(`document.getElementById("max_tokens").value = "400"`);
  await b.page("Network.enable");
  // ~1.5 KB/s: a few streamed tokens a second, so that Stop lands mid-reply
  await b.page("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: 1500,
    uploadThroughput: -1 });
  const sent = b.next("Network.requestWillBeSent", (p) => p.request.url.endsWith("/v1/chat/completions"));
  await b.click("#input");
  await b.type(message);
  await b.click("#send");
  const { requestId } = await sent;
  const failed = b.next("Network.loadingFailed", (p) => p.requestId === requestId);
  let finished = false;
  b.on("Network.loadingFinished", (p) => { if (p.requestId === requestId) finished = true; });
  await b.waitFor(`(() => { const a = ${lastReply}; return a.rawText.length > 0 || a.dataset.done === "1"; })()`,
    "the first tokens");
  const mid = await b.screenshot(join(shots, "chat_page_mid.png"));
  const body = await b.rect(`${LAST} .body`);
  check("mid_text_drawn", body && pixelsWhere(mid, body, (p) => luminance(p) < 120).count > 10);
  check("mid_not_thinking", await b.evaluate(`!${lastReply}.classList.contains("thinking")`));
  check("stop_up_mid_reply", await stopShown(mid));
  await b.click("#stop");
  const f = await Promise.race([failed, b.sleep(10_000).then(() => null)]);
  check("request_cancelled", f && f.canceled && !finished);
  await b.waitFor(replyDone, "the stopped reply");
  const partial = await b.evaluate(`${lastReply}.rawText`);
  await b.sleep(800);
  const later = await b.evaluate(`(() => { const a = ${lastReply};
    return { text: a.rawText, stopped: a.dataset.stopped === "1", finish: a.dataset.finish || "",
             notes: [...a.querySelectorAll(".note")].map((n) => n.className) }; })()`);
  out.stop = { partial, ...later };
  check("partial_kept", partial.length > 0 && later.text === partial && later.stopped && !later.finish);
  const after = await b.screenshot(join(shots, "chat_page_stopped.png"));
  const note = await b.rect(`${LAST} .note.stopped`);
  check("stopped_note_drawn", note && colorNear(pixelAt(after, note.x + 3, note.y + note.height / 2), GREY));
  check("partial_still_drawn", pixelsWhere(after, await b.rect(`${LAST} .body`), (p) => luminance(p) < 120).count > 10);
  check("stop_gone_after_stop", !(await stopShown(after)) &&
    !(await b.evaluate(`document.getElementById("send").disabled`)));
  await b.page("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1,
    uploadThroughput: -1 });
}

// A reply with fenced code and HTML, as the server would stream it (the fence split across chunks).
const CODE = `const s = "<img src=x onerror=window.__pwned=1>";\nif (a < b && c > d) { s.length; }`;
function codeStream() {
  const pieces = ["Here is <b>bold</b> code:\n``", "`js\n" + CODE.slice(0, 20), CODE.slice(20) + "\n```\n",
    "Done. <img src=x onerror=window.__pwned=2>"];
  const chunk = (delta, finish = null) => "data: " + JSON.stringify({ id: "chatcmpl-x", object: "chat.completion.chunk",
    created: 0, model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] }) + "\n\n";
  return chunk({ role: "assistant", content: "" }) + pieces.map((p) => chunk({ content: p })).join("") +
    chunk({}, "stop") + "data: [DONE]\n\n";
}

async function codeStep() {
  await b.click("#clear");
  await b.page("Fetch.enable", { patterns: [{ urlPattern: "*/v1/chat/completions", requestStage: "Request" }] });
  const paused = b.next("Fetch.requestPaused");
  await b.click("#input");
  await b.type("Show me some code.");
  await b.click("#send");
  const held = await paused;
  await b.page("Fetch.fulfillRequest", { requestId: held.requestId, responseCode: 200,
    responseHeaders: [{ name: "Content-Type", value: "text/event-stream" }],
    body: Buffer.from(codeStream()).toString("base64") });
  await b.page("Fetch.disable");
  await b.waitFor(replyDone, "the code reply");
  const c = await b.evaluate(`(() => { const a = ${lastReply}, code = a.querySelector(".body pre > code");
    const c = document.createElement("canvas").getContext("2d");
    const s = code && getComputedStyle(code);
    if (s) c.font = s.font;
    return { code: code ? code.textContent : null, lang: code ? code.dataset.lang : null,
             blocks: a.querySelectorAll("pre").length, family: s ? s.fontFamily : "",
             narrow: c.measureText("iiiiiiii").width, wide: c.measureText("MMMMMMMM").width,
             text: a.querySelector(".body").textContent, elements: document.querySelectorAll("#log img, #log b").length,
             pwned: window.__pwned === undefined ? null : window.__pwned }; })()`);
  out.code = c;
  check("code_block", c.blocks === 1 && c.code === CODE && c.lang === "js");
  check("code_monospace", /monospace/.test(c.family) && Math.abs(c.narrow - c.wide) < 0.5);
  check("html_as_text", c.elements === 0 && c.pwned === null && c.text.includes("<b>bold</b>") &&
    c.text.includes("Done. <img src=x onerror=window.__pwned=2>"));
  const img = await b.screenshot(join(shots, "chat_page_code.png"));
  const pre = await b.rect(`${LAST} pre`);
  check("code_drawn", pre && colorNear(pixelAt(img, pre.x + 3, pre.y + 3), CODE_BG) &&
    pixelsWhere(img, pre, (p) => luminance(p) > 180, 6).count > 50);
}

await b.page("Page.enable");
await b.page("Runtime.enable");
await keyStep();
await replyStep();
await stopStep();
await codeStep();
console.log(JSON.stringify(out));
await b.close();
process.exit(0);
