// What the node end-to-end scripts of `hearth serve` share (openai_client.mjs, ollama_client.mjs,
// structured_output.mjs): loading the pinned npm packages, starting servers on free ports, and the check/report
// loop ("ok NAME" / "FAIL NAME: why" lines, then "N passed, M failed" and exit 1 on any failure).
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";

// require() for the packages scripts/fetch_test_assets.sh unpacked under NODE_PATH (ESM ignores NODE_PATH).
export function assetsRequire() {
  if (!process.env.NODE_PATH) throw new Error("set NODE_PATH to build/test-assets/node_modules");
  return createRequire(join(process.env.NODE_PATH, "noop.js"));
}

const servers = [];
let killer = null;

// Kills every server and exits 1 when the script is still running after `ms`.
export function deadline(ms) {
  killer = setTimeout(() => {
    for (const s of servers) s.kill("SIGKILL");
    console.error("timed out");
    process.exit(1);
  }, ms);
}

// Starts `hearth serve --model MODEL --port 0 ...extra` and resolves to {server, port} once it listens (the whole
// "listening on" line: a chunk may end mid-port).
export async function startServer(hearth, model, extra = []) {
  const server = spawn(hearth, ["serve", "--model", model, "--port", "0", ...extra], { stdio: ["ignore", "ignore", "pipe"] });
  servers.push(server);
  const port = await new Promise((resolve, reject) => {
    let err = "";
    server.stderr.on("data", (d) => {
      err += d;
      const m = err.match(/listening on http:\/\/127\.0\.0\.1:(\d+)[ \n]/);
      if (m) resolve(Number(m[1]));
    });
    server.on("exit", (code) => reject(new Error(`hearth serve exited ${code}: ${err}`)));
  });
  return { server, port };
}

let passed = 0, failed = 0;
export async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log("ok   " + name);
  } catch (e) {
    failed++;
    console.log("FAIL " + name + ": " + (e.stack || e));
  }
}

export function equal(got, want, what) {
  if (JSON.stringify(got) !== JSON.stringify(want))
    throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

export function assert(cond, what) {
  if (!cond) throw new Error(what);
}

// Ends the script: SIGTERM to the servers still running, the summary line, exit 1 on any failure.
export function finish() {
  if (killer) clearTimeout(killer);
  for (const s of servers) if (s.exitCode === null) s.kill("SIGTERM");
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
