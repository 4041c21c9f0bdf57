// The official `openai` and `ollama` npm clients against hearth: chat, streaming and model
// listing with `hearth serve` and the tiny fixture model (random weights: shapes, not meaning),
// and a tool-call round trip against the scripted test server (the real HTTP layer over a
// scripted generator that calls a tool). Usage:
//   node clients.test.mjs HEARTH_BINARY MODEL.gguf SCRIPTED_SERVER
import assert from "node:assert/strict";
import { createReadStream, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { requirePackages, startServer } from "./serve_helper.mjs";

requirePackages(["openai", "ollama"]);
const { default: OpenAI } = await import("openai");
const { Ollama } = await import("ollama");

const [hearth, model, scripted] = process.argv.slice(2);
const tools = [{
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather of a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
}];

async function withServer(command, args, fn) {
  const s = await startServer(command, args);
  try { await fn(s.url); } finally { s.stop(); }
}

let passed = 0;
async function test(name, fn) {
  await fn();
  console.log("ok -", name);
  ++passed;
}

await withServer(hearth, ["serve", "-m", model, "--port", "0", "-c", "512", "--api-key", "k1"],
  async (url) => {
    const openai = new OpenAI({ baseURL: url + "/v1", apiKey: "k1", maxRetries: 0 });
    await test("openai: models.list", async () => {
      const page = await openai.models.list();
      assert.equal(page.data.length, 1);
      assert.equal(page.data[0].id, "tiny-e.q8_0");
    });
    await test("openai: chat (non-streaming)", async () => {
      const r = await openai.chat.completions.create({
        model: "tiny-e", messages: [{ role: "user", content: "Hello!" }],
        max_tokens: 8, temperature: 0,
      });
      assert.equal(r.object, "chat.completion");
      assert.equal(r.choices[0].message.role, "assistant");
      assert.ok(r.usage.completion_tokens <= 8);
      assert.ok(["stop", "length", "tool_calls"].includes(r.choices[0].finish_reason));
    });
    await test("openai: chat (streaming)", async () => {
      const stream = await openai.chat.completions.create({
        model: "tiny-e", messages: [{ role: "user", content: "Stream to me" }],
        max_tokens: 8, temperature: 0, stream: true, stream_options: { include_usage: true },
      });
      let chunks = 0, finish = null, usage = null;
      for await (const chunk of stream) {
        ++chunks;
        if (chunk.usage) usage = chunk.usage;
        if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
      }
      assert.ok(chunks >= 2, "chunks: " + chunks);
      assert.ok(finish !== null);
      assert.ok(usage.completion_tokens <= 8);
    });
    await test("openai: a wrong API key is refused", async () => {
      const bad = new OpenAI({ baseURL: url + "/v1", apiKey: "nope", maxRetries: 0 });
      await assert.rejects(bad.models.list(), (e) => e.status === 401);
    });
    await test("openai: an invalid request is a 400 with the field", async () => {
      await assert.rejects(
        openai.chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }],
                                         temperature: 7 }),
        (e) => e.status === 400 && e.error?.param === "temperature");
    });
    const ollama = new Ollama({ host: url, headers: { Authorization: "Bearer k1" } });
    await test("ollama: list and show", async () => {
      const list = await ollama.list();
      assert.equal(list.models[0].name, "tiny-e.q8_0");
      const show = await ollama.show({ model: "tiny-e.q8_0" });
      assert.equal(show.details.family, "gemma4");
    });
    await test("ollama: chat (non-streaming)", async () => {
      const r = await ollama.chat({
        model: "tiny-e.q8_0", messages: [{ role: "user", content: "Hi" }],
        options: { num_predict: 6, temperature: 0, num_ctx: 256 },
      });
      assert.equal(r.done, true);
      assert.equal(r.message.role, "assistant");
      assert.ok(r.eval_count <= 6);
    });
    await test("ollama: chat (streaming) and generate", async () => {
      const stream = await ollama.chat({
        model: "tiny-e.q8_0", messages: [{ role: "user", content: "Hi" }], stream: true,
        options: { num_predict: 6, temperature: 0 },
      });
      let parts = 0, done = false;
      for await (const part of stream) { ++parts; done = done || part.done; }
      assert.ok(done && parts >= 1);
      const g = await ollama.generate({ model: "tiny-e.q8_0", prompt: "Once", raw: true,
                                        options: { num_predict: 4, temperature: 0 } });
      assert.equal(g.done, true);
      assert.ok(g.eval_count <= 4);
    });
  });

await withServer(scripted, ["--port", "0"], async (url) => {
  const openai = new OpenAI({ baseURL: url + "/v1", apiKey: "unused", maxRetries: 0 });
  await test("openai: tool-call round trip", async () => {
    const messages = [{ role: "user", content: "Weather in Paris?" }];
    const first = await openai.chat.completions.create({ model: "m", messages, tools });
    const msg = first.choices[0].message;
    assert.equal(first.choices[0].finish_reason, "tool_calls");
    assert.equal(msg.tool_calls.length, 1);
    const call = msg.tool_calls[0];
    assert.match(call.id, /^call_/);
    assert.equal(call.function.name, "get_weather");
    assert.deepEqual(JSON.parse(call.function.arguments), { city: "Paris" });
    messages.push(msg, { role: "tool", tool_call_id: call.id, content: "sunny" });
    const second = await openai.chat.completions.create({ model: "m", messages, tools });
    assert.equal(second.choices[0].message.content, "The weather in Paris is sunny.");
  });
  await test("openai: streamed tool call (the SDK's stream helper assembles it)", async () => {
    const runner = openai.chat.completions.stream({
      model: "m", messages: [{ role: "user", content: "Weather?" }], tools });
    const final = await runner.finalChatCompletion();
    const call = final.choices[0].message.tool_calls[0];
    assert.equal(call.function.name, "get_weather");
    assert.deepEqual(JSON.parse(call.function.arguments), { city: "Paris" });
  });
  await test("openai: reasoning_content streams separately", async () => {
    const stream = await openai.chat.completions.create({
      model: "m", messages: [{ role: "user", content: "Hi" }], stream: true,
      reasoning_effort: "high" });
    let content = "", reasoning = "";
    for await (const c of stream) {
      content += c.choices[0]?.delta?.content ?? "";
      reasoning += c.choices[0]?.delta?.reasoning_content ?? "";
    }
    assert.equal(content, "Hello from the scripted generator.");
    assert.equal(reasoning, "The user greets me.");
  });
  const ollama = new Ollama({ host: url });
  await test("ollama: tool-call round trip", async () => {
    const messages = [{ role: "user", content: "Weather in Paris?" }];
    const first = await ollama.chat({ model: "m", messages, tools, stream: false });
    const calls = first.message.tool_calls;
    assert.equal(calls.length, 1);
    assert.equal(calls[0].function.name, "get_weather");
    assert.deepEqual(calls[0].function.arguments, { city: "Paris" });
    messages.push(first.message, { role: "tool", content: "rainy", tool_name: "get_weather" });
    const second = await ollama.chat({ model: "m", messages, tools, stream: false });
    assert.equal(second.message.content, "The weather in Paris is rainy.");
  });
  await test("ollama: streamed chat with thinking", async () => {
    const stream = await ollama.chat({ model: "m", messages: [{ role: "user", content: "Hi" }],
                                       stream: true, think: true });
    let content = "", thinking = "";
    for await (const part of stream) {
      content += part.message.content;
      thinking += part.message.thinking ?? "";
    }
    assert.equal(content, "Hello from the scripted generator.");
    assert.equal(thinking, "The user greets me.");
  });
});

// Audio (issue 17): the openai client's audio.transcriptions.create (multipart upload) and an
// input_audio content part, against hearth serve with the tiny model that has the audio marker
// tokens and its projector (../../../../shared/fixtures/multimodal, found beside the text models).
const mm = join(dirname(model), "..", "multimodal");
await withServer(hearth, ["serve", "-m", join(mm, "models", "tiny-mm.F32.gguf"), "--mmproj",
                          join(mm, "models", "tiny-mm.mmproj.F32.gguf"), "--port", "0", "-c", "1024"],
  async (url) => {
    const openai = new OpenAI({ baseURL: url + "/v1", apiKey: "none", maxRetries: 0 });
    await test("openai: audio.transcriptions.create (json, verbose_json, srt)", async () => {
      const wav = join(mm, "media", "chirp-1.5s.wav");
      const plain = await openai.audio.transcriptions.create({
        file: createReadStream(wav), model: "whisper-1" });
      assert.equal(typeof plain.text, "string");
      const verbose = await openai.audio.transcriptions.create({
        file: createReadStream(wav), model: "whisper-1", response_format: "verbose_json" });
      assert.equal(verbose.segments.length, 1);
      assert.equal(verbose.segments[0].start, 0);
      assert.equal(verbose.segments[0].end, 1.5);
      const srt = await openai.audio.transcriptions.create({
        file: createReadStream(wav), model: "whisper-1", response_format: "srt" });
      assert.ok(String(srt).startsWith("1\n00:00:00,000 --> 00:00:01,500\n"));
    });
    await test("openai: chat with an input_audio part", async () => {
      const data = readFileSync(join(mm, "media", "chirp-1.5s.wav")).toString("base64");
      const r = await openai.chat.completions.create({
        model: "tiny-mm", max_tokens: 4, temperature: 0,
        messages: [{ role: "user", content: [
          { type: "input_audio", input_audio: { data, format: "wav" } },
          { type: "text", text: "Transcribe this audio." }] }],
      });
      assert.equal(r.usage.prompt_tokens, 92);  // llama.cpp's layout of this prompt (fixtures)
    });
    await test("openai: chat with an image_url part (data: URL)", async () => {
      const png = readFileSync(join(mm, "media", "img-37x91.png")).toString("base64");
      const r = await openai.chat.completions.create({
        model: "tiny-mm", max_tokens: 4, temperature: 0,
        messages: [{ role: "user", content: [
          { type: "image_url", image_url: { url: "data:image/png;base64," + png } },
          { type: "text", text: "Describe this image." }] }],
      });
      // llama.cpp's layout of this prompt: 136 positions, 84 of them the image's rows (fixtures
      // refs/summary.json, tiny-mm.mmproj.F32/img-37x91).
      assert.equal(r.usage.prompt_tokens, 136);
      // An http(s) image URL is refused: hearth fetches nothing.
      await assert.rejects(openai.chat.completions.create({
        model: "tiny-mm", max_tokens: 4,
        messages: [{ role: "user", content: [
          { type: "image_url", image_url: { url: "https://example.com/a.png" } },
          { type: "text", text: "Describe this image." }] }],
      }), (e) => e.status === 400);
    });
  });

console.log(`${passed} client checks passed`);
