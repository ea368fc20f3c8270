// Headless Chromium driven over the DevTools protocol (https://chromedevtools.github.io/devtools-protocol/), for
// the chat page tests: start it, open a page, evaluate, click and type with real input events, wait for protocol
// events, take screenshots and read their pixels (a small PNG decoder: 8-bit RGB/RGBA, not interlaced — what
// Chromium writes). Node's built-in WebSocket (node >= 22, or >= 20.10 with --experimental-websocket) and zlib;
// no packages. Contacts only 127.0.0.1 (Chromium's own debugging port, and whatever the page loads).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inflateSync } from "node:zlib";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Decodes a PNG into { width, height, rgb(x, y) -> [r, g, b] }.
export function pngDecode(buf) {
  if (buf.readUInt32BE(0) !== 0x89504e47) throw new Error("not a PNG");
  let width = 0, height = 0, type = 0;
  const idat = [];
  for (let at = 8; at < buf.length;) {
    const len = buf.readUInt32BE(at), kind = buf.toString("latin1", at + 4, at + 8);
    const data = buf.subarray(at + 8, at + 8 + len);
    if (kind === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      type = data[9];
      if (data[8] !== 8 || (type !== 2 && type !== 6) || data[12] !== 0)
        throw new Error(`PNG: only 8-bit RGB/RGBA without interlace (depth ${data[8]}, type ${type})`);
    } else if (kind === "IDAT") {
      idat.push(data);
    }
    at += 12 + len;
  }
  const bpp = type === 6 ? 4 : 3, stride = width * bpp;
  const raw = inflateSync(Buffer.concat(idat)), px = Buffer.alloc(stride * height);
  for (let y = 0; y < height; ++y) {  // undo the per-row filters (PNG spec 9.2)
    const filter = raw[y * (stride + 1)], line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; ++i) {
      const a = i >= bpp ? px[y * stride + i - bpp] : 0, b = y > 0 ? px[(y - 1) * stride + i] : 0;
      const c = i >= bpp && y > 0 ? px[(y - 1) * stride + i - bpp] : 0;
      let pred = 0;
      if (filter === 1) pred = a;
      else if (filter === 2) pred = b;
      else if (filter === 3) pred = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      px[y * stride + i] = (line[i] + pred) & 255;
    }
  }
  return { width, height, rgb: (x, y) => [0, 1, 2].map((k) => px[Math.round(y) * stride + Math.round(x) * bpp + k]) };
}

// Starts Chromium and opens one tab. `fail(msg)` prints the message, kills Chromium and exits 1.
export async function browserOpen({ width = 1000, height = 700, timeoutMs = 120_000 } = {}) {
  const profile = mkdtempSync(join(tmpdir(), "hearth-chromium-"));
  const chrome = spawn("chromium", ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", `--user-data-dir=${profile}`,
    `--window-size=${width},${height}`, "about:blank"], { stdio: ["ignore", "ignore", "pipe"] });
  const removeProfile = () => {
    try {
      rmSync(profile, { recursive: true, force: true, maxRetries: 5 });
    } catch {}  // Chromium may still be writing there as it dies; a leftover temp folder is harmless
  };
  const cleanup = () => {
    chrome.removeAllListeners("exit");
    chrome.kill("SIGKILL");
    removeProfile();
  };
  const fail = (msg) => {
    console.error("chat page: " + msg);
    cleanup();
    process.exit(1);
  };
  const deadline = Date.now() + timeoutMs;
  setTimeout(() => fail("timed out"), timeoutMs).unref();
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
  const pending = new Map(), listeners = [];
  ws.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    if (msg.id && pending.has(msg.id)) {
      const { resolve, reject } = pending.get(msg.id);
      pending.delete(msg.id);
      msg.error ? reject(new Error(JSON.stringify(msg.error))) : resolve(msg.result);
    } else if (msg.method) {
      for (const l of [...listeners]) if (l.method === msg.method) l.fn(msg.params);
    }
  };
  const send = (method, params = {}, sessionId) => new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    ws.send(JSON.stringify({ id, method, params, sessionId }));
  });
  const { targetId } = await send("Target.createTarget", { url: "about:blank" });
  const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
  const b = { fail, sleep };
  b.page = (method, params) => send(method, params, sessionId);
  // Calls fn(params) for every `method` event; returns a function that stops it.
  b.on = (method, fn) => {
    const l = { method, fn };
    listeners.push(l);
    return () => listeners.splice(listeners.indexOf(l), 1);
  };
  // The next `method` event whose params satisfy `pred` (register it before causing the event).
  b.next = (method, pred = () => true) => new Promise((resolve) => {
    const off = b.on(method, (p) => { if (pred(p)) { off(); resolve(p); } });
  });
  b.evaluate = async (expression) => {
    const r = await b.page("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
    if (r.exceptionDetails) fail(`page script failed: ${expression}\n${JSON.stringify(r.exceptionDetails)}`);
    return r.result.value;
  };
  b.waitFor = async (expression, what) => {
    while (Date.now() < deadline) {
      if (await b.evaluate(expression)) return;
      await sleep(50);
    }
    fail("gave up waiting for " + what);
  };
  // A real mouse click in the middle of the first element `selector` matches.
  b.click = async (selector) => {
    const r = await b.rect(selector);
    if (!r) fail("nothing to click: " + selector);
    const x = r.x + r.width / 2, y = r.y + r.height / 2;
    await b.page("Input.dispatchMouseEvent", { type: "mouseMoved", x, y });
    await b.page("Input.dispatchMouseEvent", { type: "mousePressed", x, y, button: "left", clickCount: 1 });
    await b.page("Input.dispatchMouseEvent", { type: "mouseReleased", x, y, button: "left", clickCount: 1 });
  };
  b.type = (text) => b.page("Input.insertText", { text });
  // The element's box in CSS pixels ({x, y, width, height}), or null.
  b.rect = (selector) => b.evaluate(`(() => { const e = document.querySelector(${JSON.stringify(selector)});
    if (!e) return null;
    const r = e.getBoundingClientRect();
    return { x: r.x, y: r.y, width: r.width, height: r.height }; })()`);
  // Saves a screenshot to `path` and returns it decoded, with `scale` (device pixels per CSS pixel).
  b.screenshot = async (path) => {
    const shot = await b.page("Page.captureScreenshot", { format: "png" });
    const buf = Buffer.from(shot.data, "base64");
    writeFileSync(path, buf);
    const img = pngDecode(buf);
    img.scale = await b.evaluate("window.devicePixelRatio");
    return img;
  };
  b.close = async () => {
    ws.close();
    chrome.removeAllListeners("exit");
    chrome.kill("SIGTERM");
    await sleep(200);
    removeProfile();
  };
  return b;
}

// Pixel helpers over a decoded screenshot, in CSS pixels.
export const colorNear = (got, want, tol = 12) => got.every((v, k) => Math.abs(v - want[k]) <= tol);
export const luminance = ([r, g, b]) => 0.299 * r + 0.587 * g + 0.114 * b;
export function pixelAt(img, x, y) { return img.rgb(x * img.scale, y * img.scale); }
// How many pixels of `rect` (inset by `inset`) satisfy pred(rgb); and the rightmost x (CSS) of one.
export function pixelsWhere(img, rect, pred, inset = 2) {
  let count = 0, right = -1;
  const s = img.scale;
  for (let y = Math.ceil((rect.y + inset) * s); y < Math.floor((rect.y + rect.height - inset) * s); ++y)
    for (let x = Math.ceil((rect.x + inset) * s); x < Math.floor((rect.x + rect.width - inset) * s); ++x)
      if (x < img.width && y < img.height && pred(img.rgb(x, y))) {
        ++count;
        right = Math.max(right, x / s);
      }
  return { count, right };
}
