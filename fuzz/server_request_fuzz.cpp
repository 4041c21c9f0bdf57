// Fuzzes the request parser/validator of `hearth serve`: any body, for any of the four
// generation APIs (chosen by the first byte), must either parse or throw RequestError with a
// 4xx status — never crash, hang or throw anything else. Accepted requests are checked for the
// invariants the server relies on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hearth::server;
  if (size == 0) return 0;
  const Api apis[] = {Api::kChat, Api::kCompletion, Api::kOllamaChat, Api::kOllamaGenerate};
  const Api api = apis[data[0] % 4];
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    const ApiRequest r = ParseRequest(api, body);
    const bool chat = api == Api::kChat || api == Api::kOllamaChat;
    if (chat && (!r.gen.messages.is_array() || r.gen.messages.empty())) std::abort();
    if (r.gen.max_tokens < 0) std::abort();
    if (r.gen.num_ctx < 0) std::abort();
    if (!r.gen.tools.is_array()) std::abort();
    for (const auto& m : r.gen.messages) {
      if (!m.is_object() || !m.contains("role")) std::abort();
    }
    (void)r.gen.messages.dump();  // valid UTF-8 throughout (dump throws otherwise)
    if (r.gen.format) {
      // The compiled constraint must take any bytes without crashing: feed it the body.
      hearth::engine::JsonAcceptor a(r.gen.format);
      for (char c : body) {
        (void)a.MinBytesToComplete();
        if (!a.Push(static_cast<uint8_t>(c))) break;
      }
    }
  } catch (const RequestError& e) {
    if (e.status < 400 || e.status > 499) std::abort();
    (void)ErrorBody(e);
  }
  return 0;
}
