// The web chat page in headless Chromium (Debian's chromium, driven by playwright-core): send a
// message, see the streamed reply with its collapsible thoughts, see a highlighted code block,
// stop a long answer with the stop button, and save a screenshot. Runs against the scripted test server (deterministic replies).
// Usage: node browser.test.mjs SCRIPTED_SERVER SCREENSHOT_DIR
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requirePackages, startServer } from "./serve_helper.mjs";

requirePackages(["playwright-core"]);
const chromiumPath = "/usr/bin/chromium";
if (!existsSync(chromiumPath)) {
  console.log("skipped: /usr/bin/chromium is not installed (apt-get install chromium)");
  process.exit(77);
}
const { chromium } = await import("playwright-core");
const [scripted, shotDir] = process.argv.slice(2);
mkdirSync(shotDir, { recursive: true });

const server = await startServer(scripted, ["--port", "0"]);
const profile = mkdtempSync(join(tmpdir(), "hearth-browser-"));
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = await context.newPage();
  const external = [];
  page.on("request", (req) => { if (!req.url().startsWith(server.url)) external.push(req.url()); });
  await page.goto(server.url + "/");
  await page.waitForFunction(() => document.getElementById("model").textContent === "scripted");

  // 1. A message with thinking on: thoughts in a collapsed <details>, the reply streamed.
  await page.check("#think");
  await page.fill("#input", "Hello there");
  await page.click("#send");
  const reply = page.locator(".msg.assistant").last();
  await page.waitForSelector(".msg.assistant[data-done=true]");
  assert.equal(await reply.locator(".content").textContent(), "Hello from the scripted generator.");
  assert.equal(await reply.locator("details.thoughts").isVisible(), true);
  assert.equal(await reply.locator("details.thoughts").getAttribute("open"), null);  // collapsed
  assert.equal(await reply.locator(".thinking").textContent(), "The user greets me.");

  // 2. A code block: highlighted keywords and comments.
  await page.uncheck("#think");
  await page.fill("#input", "show me code");
  await page.press("#input", "Enter");
  await page.waitForFunction(() => document.querySelectorAll(".msg.assistant[data-done=true]").length === 2);
  const code = page.locator(".msg.assistant").last().locator("pre.code");
  assert.equal(await code.getAttribute("data-lang"), "cpp");
  assert.ok((await code.locator(".tk-kw").allTextContents()).includes("return"));
  assert.equal(await code.locator(".tk-com").first().textContent(), "// done");
  assert.equal(await page.locator(".msg.error").count(), 0);
  assert.equal(await page.isDisabled("#stop"), true);  // idle again

  // 3. The stop button ends a long streamed answer early.
  await page.fill("#input", "tell me something long");
  await page.click("#send");
  await page.waitForFunction(() => {
    const c = document.querySelectorAll(".msg.assistant .content");
    return c.length === 3 && c[2].textContent.includes("word3 ");
  });
  assert.equal(await page.isDisabled("#stop"), false);
  await page.click("#stop");
  await page.waitForFunction(() => document.querySelectorAll(".msg.assistant[data-done=true]").length === 3);
  const partial = await page.locator(".msg.assistant .content").last().textContent();
  assert.ok(!partial.includes("word499"), "the answer was not stopped");
  assert.equal(await page.isDisabled("#stop"), true);
  assert.equal(await page.locator(".msg.error").count(), 0);
  // ... and the server noticed the hang-up and cancelled the generation.
  let cancelled = false;
  for (let i = 0; i < 50 && !cancelled; ++i) {
    const metrics = await (await fetch(server.url + "/metrics")).text();
    cancelled = /hearth_generations_cancelled_total 1\b/.test(metrics);
    if (!cancelled) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(cancelled, "the server did not cancel the stopped generation");

  await page.screenshot({ path: join(shotDir, "server_web_chat.png"), fullPage: true });
  assert.deepEqual(external, [], "the page loaded something from elsewhere");
  console.log("ok - web chat: streamed reply, thoughts, highlighted code, stop; screenshot in " + shotDir);
} finally {
  if (context) await context.close();
  server.stop();
  rmSync(profile, { recursive: true, force: true });
}
