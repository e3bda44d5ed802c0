// console_drive.js -- drives Debian's headless Chromium through its
// DevTools protocol on a pipe (--remote-debugging-pipe: fd 3 in, fd 4 out,
// messages separated by NUL), with no npm package and no network.
//
//   node console_drive.js CHROMIUM USER_DATA_DIR STEP...
//
// Steps, in order:
//   nav:URL          load URL and wait until the document is complete
//   wait:EXPR        poll the JavaScript expression until truthy (15 s max)
//   eval:EXPR        evaluate (promises awaited), print the value as JSON
//   do:EXPR          evaluate, print nothing (clicks, typing)
//   shot:FILE        save a full-page PNG screenshot
//   size:W,H[,m]     set the viewport (m: a phone, touch and mobile UA metrics)
//   media:TYPE       emulate a CSS media type ("print"; "" for the screen again)
//   run:CMD          run a shell command (sh -c, 20 s max) and wait for it: the
//                    test changes the world while the page stays open
// Exit 0; 2 when a wait times out or an evaluation throws; 3 when the page
// logged errors (uncaught exceptions, console.error/warn, CSP or other
// browser errors). Failed HTTP requests (Chromium's "Failed to load
// resource" network entries) are listed on stderr but are not errors: the
// page meets 403 and 404 answers on purpose.
"use strict";
const { spawn, execSync } = require("child_process");
const fs = require("fs");

const [chrome, userDir, ...steps] = process.argv.slice(2);
const ch = spawn(chrome, ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
  "--no-default-browser-check", `--user-data-dir=${userDir}`, "--remote-debugging-pipe",
  "--window-size=1100,1400", "about:blank"], { stdio: ["ignore", "ignore", "ignore", "pipe", "pipe"] });
const out = ch.stdio[3], inp = ch.stdio[4];
const pending = new Map();
const errors = [];
let nextId = 1, buf = Buffer.alloc(0), session = null;

const killer = setTimeout(() => { console.error("console_drive: overall timeout (120 s)"); ch.kill("SIGKILL"); process.exit(2); }, 120000);

function send(method, params, sid) {
  const id = nextId++;
  const msg = { id, method, params: params || {} };
  if (sid) msg.sessionId = sid;
  out.write(JSON.stringify(msg) + "\0");
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject, method }));
}

function onEvent(m) {
  if (m.method === "Runtime.exceptionThrown") {
    const d = m.params.exceptionDetails;
    errors.push(`exception: ${(d.exception && d.exception.description) || d.text}`);
  } else if (m.method === "Runtime.consoleAPICalled" && (m.params.type === "error" || m.params.type === "warning")) {
    errors.push(`console.${m.params.type}: ${m.params.args.map((a) => a.value ?? a.description).join(" ")}`);
  } else if (m.method === "Log.entryAdded") {
    const e = m.params.entry;
    if (e.level === "error" || e.level === "warning") {
      if (e.source === "network") console.error(`  (network) ${e.text} ${e.url || ""}`);
      else errors.push(`${e.source} ${e.level}: ${e.text} ${e.url || ""}`);
    }
  }
}

inp.on("data", (chunk) => {
  buf = Buffer.concat([buf, chunk]);
  let i;
  while ((i = buf.indexOf(0)) >= 0) {
    const m = JSON.parse(buf.subarray(0, i).toString("utf8"));
    buf = buf.subarray(i + 1);
    if (m.id && pending.has(m.id)) {
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (m.error) p.reject(new Error(`${p.method}: ${m.error.message}`)); else p.resolve(m.result);
    } else if (m.method) {
      onEvent(m);
    }
  }
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function evaluate(expr) {
  const r = await send("Runtime.evaluate", { expression: expr, returnByValue: true, awaitPromise: true }, session);
  if (r.exceptionDetails)
    throw new Error(`${expr}: ${(r.exceptionDetails.exception && r.exceptionDetails.exception.description) || r.exceptionDetails.text}`);
  return r.result.value;
}

async function waitFor(expr, seconds) {
  for (let t = 0; t < seconds * 5; t++) {
    if (await evaluate(expr)) return;
    await sleep(200);
  }
  throw new Error(`timed out after ${seconds} s waiting for: ${expr}`);
}

async function main() {
  const { targetId } = await send("Target.createTarget", { url: "about:blank" });
  ({ sessionId: session } = await send("Target.attachToTarget", { targetId, flatten: true }));
  await send("Runtime.enable", {}, session);
  await send("Log.enable", {}, session);
  await send("Page.enable", {}, session);
  for (const step of steps) {
    const c = step.indexOf(":"), op = step.slice(0, c), arg = step.slice(c + 1);
    if (op === "nav") {
      await send("Page.navigate", { url: arg }, session);
      await sleep(100);
      await waitFor("document.readyState === 'complete'", 15);
    } else if (op === "wait") {
      await waitFor(arg, 15);
    } else if (op === "eval") {
      console.log(JSON.stringify(await evaluate(arg)));
    } else if (op === "do") {
      await evaluate(arg);
    } else if (op === "shot") {
      const r = await send("Page.captureScreenshot", { format: "png", captureBeyondViewport: true }, session);
      fs.writeFileSync(arg, Buffer.from(r.data, "base64"));
    } else if (op === "size") {
      const [w, h, m] = arg.split(",");
      await send("Emulation.setDeviceMetricsOverride", { width: +w, height: +h, deviceScaleFactor: 1, mobile: m === "m" }, session);
    } else if (op === "media") {
      await send("Emulation.setEmulatedMedia", { media: arg }, session);
    } else if (op === "run") {
      execSync(arg, { stdio: ["ignore", "ignore", "inherit"], timeout: 20000, shell: "/bin/sh" });
    } else {
      throw new Error(`unknown step '${step}'`);
    }
  }
}

main().then(async () => {
  await sleep(300);   // late console messages
  clearTimeout(killer);
  send("Browser.close").catch(() => {});
  setTimeout(() => ch.kill("SIGKILL"), 2000).unref();
  if (errors.length) {
    console.error("page errors:\n  " + errors.join("\n  "));
    process.exit(3);
  }
  process.exit(0);
}, (e) => {
  console.error("console_drive: " + e.message);
  if (errors.length) console.error("page errors:\n  " + errors.join("\n  "));
  ch.kill("SIGKILL");
  process.exit(2);
});
