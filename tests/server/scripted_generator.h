// A Generator for tests of the HTTP mechanics only: it plays back a script of deltas (content,
// reasoning, tool calls) with an optional delay between them, so streaming shapes, tool-call
// round trips, queueing and cancellation can be checked exactly, independently of any model.
// Never used by the product (the real generator is server::MakeEngineGenerator).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "base/error.h"
#include "server/generator.h"

namespace hearth::server::testing {

class ScriptedGenerator : public Generator {
 public:
  struct Call {
    GenerationRequest request;
    int slot = -1;
    std::chrono::steady_clock::time_point start, end;
    bool cancelled = false;
  };

  explicit ScriptedGenerator(int slots = 1) : slots_(slots) {
    info_.name = "scripted";
    info_.parameter_size = "1M";
    info_.quantization = "F32";
    info_.size_bytes = 1234;
    info_.context_length = 1000;
    info_.slot_context = 1000;
    info_.digest = "0123456789abcdef";
  }

  // The deltas the next generations emit, and the finish reason when they all went out.
  std::vector<text::ParseDelta> script;
  FinishReason finish = FinishReason::kStop;
  std::chrono::milliseconds delay{0};
  // When set, replaces `script` and `finish`: the deltas for this request (a finish of
  // kToolCalls is reported when they contain a tool call).
  std::function<std::vector<text::ParseDelta>(const GenerationRequest&)> responder;
  // When set, the delay between deltas for this request (instead of `delay`).
  std::function<std::chrono::milliseconds(const GenerationRequest&)> delay_for;
  // When set, called by Prepare: it may throw hearth::Error to refuse the request before a slot
  // is taken (as the real generator refuses media without a projector).
  std::function<void(const GenerationRequest&)> check;
  // Generations that have started; while `hold` is set, a started generation waits before its
  // first delta (tests that need one generation to be running, whatever the machine's load).
  std::atomic<int> started{0};
  std::atomic<bool> hold{false};

  const ModelInfo& info() const override { return info_; }
  int n_slots() const override { return slots_; }

  // One "token" per 4 bytes of the rendered request, the bytes of media parts (image_url,
  // input_audio) left out; more than 1000 does not fit.
  PreparedPrompt Prepare(const GenerationRequest& r) const override {
    if (check) check(r);
    PreparedPrompt p;
    const size_t bytes = r.raw ? r.prompt.size() : WithoutMediaBytes(r.messages).dump().size();
    p.tokens.assign(bytes / 4 + 1, 7);
    p.context_limit = r.num_ctx > 0 ? r.num_ctx : 1000;
    if (r.num_ctx > 1000) {
      throw Error(ErrorClass::kResource, "options.num_ctx is larger than the server's context");
    }
    if (static_cast<int>(p.tokens.size()) >= p.context_limit) {
      throw Error(ErrorClass::kResource, "the prompt does not fit in the context");
    }
    return p;
  }
  int CachedPrefix(int, const PreparedPrompt&) const override { return 0; }

  GenerationResult Generate(int slot, const GenerationRequest& r, const PreparedPrompt& p,
                            const std::function<void(const text::ParseDelta&)>& on_delta,
                            const std::atomic<bool>& cancel) override {
    Call call;
    call.request = r;
    call.slot = slot;
    call.start = std::chrono::steady_clock::now();
    GenerationResult result;
    result.prompt_tokens = static_cast<int>(p.tokens.size());
    std::vector<text::ParseDelta> deltas = script;
    FinishReason end = finish;
    if (responder) {
      deltas = responder(r);
      end = FinishReason::kStop;
      for (const auto& d : deltas) {
        if (!d.tool_calls.empty()) end = FinishReason::kToolCalls;
      }
    }
    const std::chrono::milliseconds pause = delay_for ? delay_for(r) : delay;
    ++started;
    while (hold && !cancel) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    for (const auto& d : deltas) {
      if (pause.count() > 0) std::this_thread::sleep_for(pause);
      if (cancel) {
        result.finish = FinishReason::kCancelled;
        break;
      }
      on_delta(d);
      ++result.completion_tokens;
      result.content += d.content;
      result.reasoning += d.reasoning;
      for (const auto& tc : d.tool_calls) {
        if (tc.index >= result.tool_calls.size()) result.tool_calls.resize(tc.index + 1);
        auto& call_out = result.tool_calls[tc.index];
        if (!tc.name.empty()) call_out.name = tc.name;
        call_out.arguments += tc.arguments;
        call_out.complete = true;
      }
    }
    if (result.finish != FinishReason::kCancelled) result.finish = end;
    call.end = std::chrono::steady_clock::now();
    call.cancelled = result.finish == FinishReason::kCancelled;
    std::lock_guard lock(mu_);
    calls_.push_back(call);
    return result;
  }

  std::vector<Call> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  // The messages with the payload of each media part emptied (a real model spends a fixed
  // number of tokens per image, not one per byte of its base64).
  static nlohmann::ordered_json WithoutMediaBytes(nlohmann::ordered_json messages) {
    for (auto& m : messages) {
      if (!m.is_object() || !m.contains("content") || !m["content"].is_array()) continue;
      for (auto& part : m["content"]) {
        if (!part.is_object()) continue;
        if (part.contains("image_url") && part["image_url"].is_object()) {
          part["image_url"]["url"] = "";
        }
        if (part.contains("input_audio") && part["input_audio"].is_object()) {
          part["input_audio"]["data"] = "";
        }
      }
    }
    return messages;
  }

  int slots_;
  ModelInfo info_;
  mutable std::mutex mu_;
  std::vector<Call> calls_;
};

}  // namespace hearth::server::testing
