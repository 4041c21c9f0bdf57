// Request bodies of the OpenAI and Ollama APIs → GenerationRequest, strictly: malformed JSON,
// invalid UTF-8, wrong types, out-of-range values, unknown fields and unsupported features are
// refused with a RequestError saying which field is wrong. The exception: a short list of
// parameters that clients send by habit and that are harmless to ignore, which are accepted with
// a warning. Pure functions (fuzzed).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "server/generator.h"

namespace hearth::server {

enum class Api { kChat, kCompletion, kOllamaChat, kOllamaGenerate };

struct ApiRequest {
  Api api = Api::kChat;
  std::string model;
  bool stream = false;
  bool include_usage = false;  // OpenAI stream_options.include_usage
  GenerationRequest gen;
  // Parameters accepted but ignored (harmless ones that common clients send: llama.cpp's
  // cache_prompt, typical_p, n_probs, Ollama's options.mirostat...), one note each; the response
  // carries them as "warnings".
  std::vector<std::string> warnings;
};

// An OpenAI-style error: {"error":{"message","type","param","code"}} with an HTTP status.
struct RequestError : std::runtime_error {
  RequestError(int status_, std::string message, std::string param_ = {}, std::string code_ = {},
               std::string type_ = "invalid_request_error")
      : std::runtime_error(std::move(message)),
        status(status_),
        param(std::move(param_)),
        code(std::move(code_)),
        type(std::move(type_)) {}
  int status;
  std::string param;
  std::string code;
  std::string type;
};

// Throws RequestError (status 400) for anything it does not accept.
ApiRequest ParseRequest(Api api, std::string_view body);

// The error body for `e`.
std::string ErrorBody(const RequestError& e);

// Whether `s` is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool IsValidUtf8(std::string_view s);

}  // namespace hearth::server
