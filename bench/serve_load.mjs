// Load client for `hearth serve`: CLIENTS concurrent loops of streaming chat requests for
// SECONDS on loopback, with a bounded number of requests in flight (one per client). Samples the
// server's RSS (VmRSS of PID) every second. Prints a JSON summary; exits 1 on any 5xx or
// transport error. No npm packages needed (Node's fetch).
// Usage: node serve_load.mjs URL PID SECONDS CLIENTS
// TTFT is measured to the first generated piece; the role chunk goes out before the queue.
import { readFileSync } from "node:fs";

const [url, pid, seconds = "60", clients = "8"] = process.argv.slice(2);
const deadline = Date.now() + Number(seconds) * 1000;
const stats = { requests: 0, ok: 0, status: {}, errors: 0, tokens: 0, chunks: 0,
                latency_ms: [], ttft_ms: [] };
const rss = [];

function rssKiB() {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) : 0;
}

const prompts = ["Write a haiku about the sea.", "What is a linked list?",
                 "Explain recursion briefly.", "List three colours."];

async function client(i) {
  let n = 0;
  while (Date.now() < deadline) {
    const t0 = Date.now();
    let first = 0;
    try {
      const res = await fetch(url + "/v1/chat/completions", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          messages: [{ role: "user", content: prompts[(i + n++) % prompts.length] + " #" + i }],
          max_tokens: 24, stream: true, stream_options: { include_usage: true } }),
      });
      stats.requests++;
      stats.status[res.status] = (stats.status[res.status] || 0) + 1;
      const text = await (async () => {
        let all = "";
        const decoder = new TextDecoder();
        for await (const part of res.body) {
          all += decoder.decode(part, { stream: true });
          // Time to the first generated piece (the role chunk goes out before the queue).
          if (!first && /"delta":\{"(content|reasoning_content|tool_calls)"|"finish_reason":"/.test(all)) {
            first = Date.now();
          }
        }
        return all;
      })();
      if (res.status === 200) {
        if (!text.includes("data: [DONE]")) throw new Error("stream without [DONE]");
        stats.ok++;
        for (const line of text.split("\n")) {
          if (!line.startsWith("data: {")) continue;
          stats.chunks++;
          const j = JSON.parse(line.slice(6));
          if (j.usage) stats.tokens += j.usage.completion_tokens;
        }
        stats.latency_ms.push(Date.now() - t0);
        stats.ttft_ms.push(first - t0);
      }
    } catch (e) {
      stats.errors++;
      console.error("client", i, e.message);
    }
  }
}

const sampler = setInterval(() => rss.push(rssKiB()), 1000);
const start = Date.now();
rss.push(rssKiB());
await Promise.all(Array.from({ length: Number(clients) }, (_, i) => client(i)));
clearInterval(sampler);
rss.push(rssKiB());
const elapsed = (Date.now() - start) / 1000;
const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : 0; };
const fivexx = Object.entries(stats.status).filter(([s]) => s >= 500).reduce((a, [, n]) => a + n, 0);
// RSS growth: the second half's peak against the peak of the first 10 s (after warm-up).
const warm = Math.max(...rss.slice(0, Math.min(rss.length, 11)));
const summary = {
  seconds: elapsed, clients: Number(clients), requests: stats.requests, ok: stats.ok,
  status: stats.status, transport_errors: stats.errors, five_xx: fivexx,
  completion_tokens: stats.tokens, tokens_per_second: +(stats.tokens / elapsed).toFixed(1),
  requests_per_second: +(stats.ok / elapsed).toFixed(2),
  latency_ms: { p50: pct(stats.latency_ms, 0.5), p95: pct(stats.latency_ms, 0.95), max: pct(stats.latency_ms, 1) },
  ttft_ms: { p50: pct(stats.ttft_ms, 0.5), p95: pct(stats.ttft_ms, 0.95) },
  rss_kib: { start: rss[0], after_warmup: warm, peak: Math.max(...rss), end: rss[rss.length - 1],
             every_10s: rss.filter((_, i) => i % 10 === 0) },
};
console.log(JSON.stringify(summary, null, 2));
process.exit(fivexx === 0 && stats.errors === 0 && stats.ok > 0 ? 0 : 1);
