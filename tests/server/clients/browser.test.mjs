// The web chat page in headless Chromium (Debian's chromium, driven by playwright-core): send a
// message, see the streamed reply with its collapsible thoughts, see a highlighted code block,
// stop a long answer with the stop button; attach images and audio (file picker, paste, drop,
// the microphone through Chromium's fake device), see their thumbnails and check the bytes that
// reached the server; see a refused request's error; and save a screenshot. Runs against the
// scripted test server (deterministic replies; given media it says what arrived).
// Usage: node browser.test.mjs SCRIPTED_SERVER SCREENSHOT_DIR
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
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
// The multimodal fixtures: ../shared from the repository root.
const media = fileURLToPath(new URL("../../../../shared/fixtures/multimodal/media/", import.meta.url));
for (const f of ["img-200x120.png", "img-160x120.jpg", "img-64x64.png", "img-37x91.png",
                 "chirp-1.5s.wav"]) {
  assert.ok(existsSync(join(media, f)), "missing fixture " + join(media, f));
}
const fixture = (f) => join(media, f);
const size = (f) => statSync(fixture(f)).size;

const server = await startServer(scripted, ["--port", "0"]);
const profile = mkdtempSync(join(tmpdir(), "hearth-browser-"));
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           // A fake microphone (a beep) that needs no permission prompt.
           "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"],
  });
  const page = await context.newPage();
  const external = [];
  const chats = [];  // the bodies the page sent to /v1/chat/completions
  page.on("request", (req) => {
    if (!req.url().startsWith(server.url)) external.push(req.url());
    if (req.url() === server.url + "/v1/chat/completions") chats.push(JSON.parse(req.postData()));
  });
  const done = (n) => page.waitForFunction(
      (n) => document.querySelectorAll(".msg.assistant[data-done=true]").length === n, n);
  const lastReply = () => page.locator(".msg.assistant .content").last().textContent();
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

  // 4. An image through the file picker: a thumbnail above the input, the message sent with it
  // (an image_url part holding the file's bytes) and shown with it.
  await page.setInputFiles("#file", fixture("img-200x120.png"));
  const thumb = page.locator("#attachments .att img");
  await thumb.waitFor();
  assert.equal(await thumb.evaluate((img) => img.naturalWidth + "x" + img.naturalHeight), "200x120");
  await page.fill("#input", "what is in this picture?");
  await page.click("#send");
  await done(4);
  assert.equal(await lastReply(),
               `I got 1 image(s) and 0 audio clip(s): image/png ${size("img-200x120.png")} bytes.`);
  const sent = chats.at(-1).messages.at(-1).content;
  assert.deepEqual(sent.map((p) => p.type), ["image_url", "text"]);
  assert.equal(sent[0].image_url.url, "data:image/png;base64," +
               readFileSync(fixture("img-200x120.png")).toString("base64"));
  assert.equal(sent[1].text, "what is in this picture?");
  const userMsg = page.locator(".msg.user").last();
  assert.equal(await userMsg.locator(".media img").evaluate((img) => img.naturalWidth), 200);
  assert.ok((await userMsg.textContent()).includes("what is in this picture?"));
  assert.equal(await page.isHidden("#attachments"), true);  // sent: nothing attached any more

  // 5. Two images and a WAV file; the × removes the first image before sending.
  await page.setInputFiles("#file", [fixture("img-64x64.png"), fixture("img-160x120.jpg")]);
  await page.waitForFunction(() => document.querySelectorAll("#attachments .att").length === 2);
  await page.setInputFiles("#file", fixture("chirp-1.5s.wav"));
  await page.waitForFunction(() => document.querySelectorAll("#attachments .att").length === 3);
  assert.ok((await page.textContent("#attachments .att.audio")).includes("chirp-1.5s.wav"));
  await page.click('#attachments button[aria-label="Remove img-64x64.png"]');
  assert.equal(await page.locator("#attachments .att").count(), 2);
  await page.fill("#input", "describe both");
  await page.press("#input", "Enter");
  await done(5);
  assert.equal(await lastReply(),
               `I got 1 image(s) and 1 audio clip(s): image/jpeg ${size("img-160x120.jpg")} bytes; ` +
               `audio wav ${size("chirp-1.5s.wav")} bytes, 16000 Hz, 1 ch, 16-bit.`);
  assert.equal(chats.at(-1).messages.at(-1).content[1].input_audio.data,
               readFileSync(fixture("chirp-1.5s.wav")).toString("base64"));
  assert.equal(await page.locator(".msg.user").last().locator(".media img").count(), 1);
  assert.equal(await page.locator(".msg.user").last().locator(".media .clip").count(), 1);

  // 6. An image pasted from the clipboard and one dropped on the page (the events a browser
  // fires, holding a File).
  const fire = (kind, name, b64) => page.evaluate(({ kind, name, b64 }) => {
    const dt = new DataTransfer();
    dt.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], name,
                          { type: "image/png" }));
    const init = { bubbles: true, cancelable: true };
    if (kind === "paste") {
      document.getElementById("input").dispatchEvent(
          new ClipboardEvent("paste", { ...init, clipboardData: dt }));
    } else {
      const log = document.getElementById("log");
      for (const type of ["dragenter", "dragover", "drop"]) {
        log.dispatchEvent(new DragEvent(type, { ...init, dataTransfer: dt }));
      }
    }
  }, { kind, name, b64 });
  await fire("paste", "pasted.png", readFileSync(fixture("img-64x64.png")).toString("base64"));
  await fire("drop", "dropped.png", readFileSync(fixture("img-37x91.png")).toString("base64"));
  await page.waitForFunction(() => document.querySelectorAll("#attachments .att img").length === 2);
  assert.equal(await page.evaluate(() => document.body.classList.contains("dropping")), false);
  await page.fill("#input", "compare");
  await page.click("#send");
  await done(6);
  assert.equal(await lastReply(),
               `I got 2 image(s) and 0 audio clip(s): image/png ${size("img-64x64.png")} bytes; ` +
               `image/png ${size("img-37x91.png")} bytes.`);

  // 7. The microphone (Chromium's fake device): Record, Stop recording, and the clip is attached
  // as 16 kHz mono 16-bit WAV (MediaRecorder writes WebM; the page converts it).
  await page.click("#record");
  await page.waitForFunction(() => document.getElementById("record").textContent === "Stop recording");
  await page.waitForTimeout(1500);
  await page.click("#record");
  await page.waitForSelector("#attachments .att.audio");
  assert.match(await page.textContent("#attachments .att.audio"), /recording-[\d-]+\.wav \(\d+\.\d s\)/);
  await page.fill("#input", "transcribe this");
  await page.click("#send");
  await done(7);
  const heard = (await lastReply()).match(
      /^I got 0 image\(s\) and 1 audio clip\(s\): audio wav (\d+) bytes, 16000 Hz, 1 ch, 16-bit\.$/);
  assert.ok(heard, "unexpected reply to a recording: " + (await lastReply()));
  const samples = (Number(heard[1]) - 44) / 2;
  // 1.5 s between the clicks (more on a loaded machine).
  assert.ok(samples >= 16000 && samples <= 16000 * 15, "a recording of 1.5 s has " + samples + " samples");

  // 8. An image in a format the server does not decode (SVG) goes as a PNG drawn in the page.
  await page.setInputFiles("#file", {
    name: "diagram.svg", mimeType: "image/svg+xml",
    buffer: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="30" height="20">' +
                        '<rect width="30" height="20" fill="#b44d12"/></svg>'),
  });
  await page.locator("#attachments .att img").waitFor();
  await page.fill("#input", "what does the diagram say?");
  await page.click("#send");
  await done(8);
  const png = chats.at(-1).messages.at(-1).content[0].image_url.url;
  assert.ok(png.startsWith("data:image/png;base64,"), png.slice(0, 40));
  const pngBytes = Buffer.from(png.slice(png.indexOf(",") + 1), "base64");
  assert.equal(pngBytes.subarray(12, 16).toString(), "IHDR");
  assert.deepEqual([pngBytes.readUInt32BE(16), pngBytes.readUInt32BE(20)], [30, 20]);
  assert.equal(await lastReply(),
               `I got 1 image(s) and 0 audio clip(s): image/png ${pngBytes.length} bytes.`);

  // 9. A request the server refuses (400: a model without a projector) shows its message, and
  // the refused turn is not sent again with the next message.
  await page.setInputFiles("#file", fixture("img-64x64.png"));
  await page.locator("#attachments .att img").waitFor();
  await page.fill("#input", "this model has no vision");
  await page.click("#send");
  await page.locator(".msg.error").waitFor();
  assert.match(await page.locator(".msg.error").textContent(),
               /^Error: this model has no multimodal projector, so it takes no images or audio/);
  await page.waitForFunction(() => !document.getElementById("send").disabled);
  assert.equal(await page.locator(".msg.assistant").count(), 8);  // no empty reply left behind
  await page.fill("#input", "Hello again");
  await page.click("#send");
  await done(9);
  assert.equal(await lastReply(), "Hello from the scripted generator.");
  const again = chats.at(-1).messages;
  assert.equal(again.at(-1).content, "Hello again");
  assert.ok(!JSON.stringify(again).includes("no vision"), "the refused turn was sent again");
  assert.equal(await page.locator(".msg.error").count(), 1);

  // The screenshot shows attachments waiting above the input too.
  await page.setInputFiles("#file", [fixture("img-200x120.png"), fixture("chirp-1.5s.wav")]);
  await page.waitForFunction(() => document.querySelectorAll("#attachments .att").length === 2);

  await page.screenshot({ path: join(shotDir, "server_web_chat.png"), fullPage: true });
  assert.deepEqual(external, [], "the page loaded something from elsewhere");
  console.log("ok - web chat: streamed reply, thoughts, highlighted code, stop, images and audio " +
              "(picker, paste, drop, microphone), a refused request; screenshot in " + shotDir);
} finally {
  if (context) await context.close();
  server.stop();
  rmSync(profile, { recursive: true, force: true });
}
