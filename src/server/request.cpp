#include "server/request.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <memory>
#include <set>

#include "base/error.h"

namespace hearth::server {
namespace {

using Json = nlohmann::ordered_json;

[[noreturn]] void Bad(const std::string& message, const std::string& param,
                      const std::string& code = "invalid_value") {
  throw RequestError(400, message, param, code);
}

const char* TypeName(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::object:
      return "an object";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "an integer";
    case Json::value_t::number_float:
      return "a number";
    default:
      return "an unsupported value";
  }
}

[[noreturn]] void WrongType(const std::string& param, const char* want, const Json& v) {
  Bad("'" + param + "' must be " + want + ", not " + TypeName(v), param, "invalid_type");
}

// Fields each API accepts; anything else is refused so that a typo or an unsupported feature is
// never silently ignored. "ignored" fields are accepted and have no effect (documented).
void CheckFields(const Json& obj, const std::string& where,
                 std::initializer_list<const char*> known) {
  for (const auto& [key, value] : obj.items()) {
    bool ok = false;
    for (const char* k : known) ok = ok || key == k;
    if (!ok) {
      const std::string param = where.empty() ? key : where + "." + key;
      Bad("unknown or unsupported field '" + param + "'", param, "unknown_field");
    }
  }
}

const Json* Find(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

bool GetBool(const Json& obj, const char* key, const std::string& param, bool fallback) {
  const Json* v = Find(obj, key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) WrongType(param, "a boolean", *v);
  return v->get<bool>();
}

double GetNumber(const Json& v, const std::string& param, double lo, double hi) {
  if (!v.is_number()) WrongType(param, "a number", v);
  const double d = v.get<double>();
  if (!std::isfinite(d) || d < lo || d > hi) {
    Bad("'" + param + "' must be between " + Json(lo).dump() + " and " + Json(hi).dump(), param);
  }
  return d;
}

int64_t GetInt(const Json& v, const std::string& param, int64_t lo, int64_t hi) {
  if (!v.is_number_integer() && !v.is_number_unsigned()) {
    // 5.0 is accepted as 5 (JavaScript clients cannot tell them apart).
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (std::isfinite(d) && d == std::floor(d) && d >= static_cast<double>(lo) &&
          d <= static_cast<double>(hi)) {
        return static_cast<int64_t>(d);
      }
    }
    WrongType(param, "an integer", v);
  }
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi)) {
    Bad("'" + param + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi),
        param);
  }
  const int64_t i =
      v.is_number_unsigned() ? static_cast<int64_t>(v.get<uint64_t>()) : v.get<int64_t>();
  if (i < lo || i > hi) {
    Bad("'" + param + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi),
        param);
  }
  return i;
}

const std::string& GetString(const Json& v, const std::string& param) {
  if (!v.is_string()) WrongType(param, "a string", v);
  return v.get_ref<const std::string&>();
}

void ParseStop(const Json& v, const std::string& param, std::vector<std::string>& out) {
  if (v.is_string()) {
    if (!v.get_ref<const std::string&>().empty()) out.push_back(v.get<std::string>());
    return;
  }
  if (!v.is_array()) WrongType(param, "a string or an array of strings", v);
  if (v.size() > 16) Bad("'" + param + "' may hold at most 16 strings", param);
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string& s = GetString(v[i], param + "[" + std::to_string(i) + "]");
    if (!s.empty()) out.push_back(s);
  }
}

// Message content: a string, or a list of text parts, OpenAI `input_audio` parts
// ({"input_audio": {"data": BASE64, "format": "wav"|"mp3"|…}}) and `image_url` parts with a
// data: URL ({"image_url": {"url": "data:image/png;base64,…", "detail": "low"|"high"|"auto"}});
// the engine decodes and encodes them with the model's projector; `video_url` parts likewise
// ({"video_url": {"url": "data:video/mp4;base64,…"}}: hearth's extension, sampled as frames).
// http(s) image and video URLs are refused: the server fetches nothing (zero egress).
void CheckContent(const Json& content, const std::string& param) {
  if (content.is_null() || content.is_string()) return;
  if (!content.is_array()) WrongType(param, "a string or an array of content parts", content);
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string p = param + "[" + std::to_string(i) + "]";
    const Json& part = content[i];
    if (!part.is_object()) WrongType(p, "an object", part);
    const Json* type = Find(part, "type");
    if (type == nullptr || !type->is_string())
      Bad("'" + p + ".type' must be a string", p + ".type");
    if (*type == "input_audio") {
      const Json* audio = Find(part, "input_audio");
      if (audio == nullptr || !audio->is_object()) WrongType(p + ".input_audio", "an object", part);
      const Json* data = Find(*audio, "data");
      if (data == nullptr || !data->is_string() || data->get_ref<const std::string&>().empty()) {
        Bad("'" + p + ".input_audio.data' must be the base64 audio", p + ".input_audio.data");
      }
      const Json* format = Find(*audio, "format");
      if (format != nullptr && !format->is_string()) {
        WrongType(p + ".input_audio.format", "a string", *format);
      }
      continue;
    }
    if (*type == "image_url" || *type == "video_url") {
      const bool is_video = *type == "video_url";
      const std::string key = is_video ? "video_url" : "image_url";
      const std::string what = is_video ? "video" : "image";
      const std::string example = is_video ? "data:video/mp4;base64,…" : "data:image/png;base64,…";
      const Json* image = Find(part, key.c_str());
      const Json* url = image == nullptr     ? nullptr
                        : image->is_string() ? image
                        : image->is_object() ? Find(*image, "url")
                                             : nullptr;
      if (url == nullptr || !url->is_string()) {
        Bad("'" + p + "." + key + ".url' must be a data: URL string", p + "." + key + ".url");
      }
      const std::string& u = url->get_ref<const std::string&>();
      if (u.starts_with("http://") || u.starts_with("https://")) {
        Bad(what + " URLs are not fetched (hearth makes no network requests); send the " + what +
                " inline as a data: URL (" + example + ")",
            p + "." + key + ".url", "unsupported_content");
      }
      if (!u.starts_with("data:")) {
        Bad("'" + p + "." + key + ".url' must be a data: URL (" + example + ")",
            p + "." + key + ".url");
      }
      if (is_video) {
        const Json* fps = Find(part, "video_fps");
        if (fps != nullptr &&
            !(fps->is_number() && fps->get<double>() > 0 && fps->get<double>() <= 4)) {
          Bad("'" + p + ".video_fps' must be a number of frames per second, at most 4",
              p + ".video_fps");
        }
        continue;
      }
      if (image->is_object()) {
        const Json* detail = Find(*image, "detail");
        if (detail != nullptr && !(detail->is_string() &&
                                   (*detail == "low" || *detail == "high" || *detail == "auto"))) {
          Bad("'" + p + ".image_url.detail' must be \"low\", \"high\" or \"auto\"",
              p + ".image_url.detail");
        }
      }
      continue;
    }
    if (*type != "text") {
      Bad("content part type '" + type->get<std::string>() +
              "' is not supported (text, image_url, input_audio and video_url are)",
          p + ".type", "unsupported_content");
    }
    const Json* text = Find(part, "text");
    if (text == nullptr || !text->is_string())
      Bad("'" + p + ".text' must be a string", p + ".text");
  }
}

void CheckToolCalls(const Json& calls, const std::string& param, bool ollama) {
  if (!calls.is_array()) WrongType(param, "an array", calls);
  for (size_t i = 0; i < calls.size(); ++i) {
    const std::string p = param + "[" + std::to_string(i) + "]";
    const Json& c = calls[i];
    if (!c.is_object()) WrongType(p, "an object", c);
    const Json* fn = Find(c, "function");
    if (fn == nullptr || !fn->is_object())
      Bad("'" + p + ".function' must be an object", p + ".function");
    const Json* name = Find(*fn, "name");
    if (name == nullptr || !name->is_string()) {
      Bad("'" + p + ".function.name' must be a string", p + ".function.name");
    }
    const Json* args = Find(*fn, "arguments");
    if (args != nullptr && !args->is_string() && !args->is_object()) {
      WrongType(p + ".function.arguments", ollama ? "an object" : "a JSON string", *args);
    }
    if (const Json* id = Find(c, "id"); id != nullptr && !id->is_string()) {
      WrongType(p + ".id", "a string", *id);
    }
  }
}

// Ollama's `images` (base64, no data: prefix) as image_url parts in front of `content` (a
// string or a part list).
Json WithImages(const Json& images, const Json& content) {
  Json parts = Json::array();
  for (const Json& b64 : images) {
    parts.push_back({{"type", "image_url"},
                     {"image_url", {{"url", "data:image/*;base64," + b64.get<std::string>()}}}});
  }
  if (content.is_string() && !content.get_ref<const std::string&>().empty()) {
    parts.push_back({{"type", "text"}, {"text", content}});
  } else if (content.is_array()) {
    for (const Json& part : content) parts.push_back(part);
  }
  return parts;
}

// Validates messages and returns them in the shape RenderChat reads (OpenAI's, with Ollama's
// `thinking` → `reasoning_content` and `tool_name` → `name`).
Json ParseMessages(const Json& v, bool ollama) {
  if (!v.is_array()) WrongType("messages", "an array", v);
  if (v.empty()) Bad("'messages' must not be empty", "messages");
  Json out = Json::array();
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string p = "messages[" + std::to_string(i) + "]";
    const Json& m = v[i];
    if (!m.is_object()) WrongType(p, "an object", m);
    const Json* role = Find(m, "role");
    if (role == nullptr || !role->is_string())
      Bad("'" + p + ".role' must be a string", p + ".role");
    const std::string& r = role->get_ref<const std::string&>();
    if (r != "system" && r != "developer" && r != "user" && r != "assistant" && r != "tool") {
      Bad("'" + p + ".role' must be system, developer, user, assistant or tool, not '" + r + "'",
          p + ".role");
    }
    Json msg = Json::object();
    msg["role"] = r == "developer" ? "system" : r;
    Json images = Json::array();
    for (const auto& [key, value] : m.items()) {
      const std::string kp = p + "." + key;
      if (key == "role") continue;
      if (key == "content") {
        CheckContent(value, kp);
        msg["content"] = value;
      } else if (key == "name" || key == "tool_call_id" || key == "tool_name") {
        if (!value.is_null() && !value.is_string()) WrongType(kp, "a string", value);
        if (!value.is_null()) msg[key == "tool_name" ? "name" : key] = value;
      } else if (key == "tool_calls") {
        if (value.is_null()) continue;
        CheckToolCalls(value, kp, ollama);
        msg["tool_calls"] = value;
      } else if (key == "reasoning_content" || key == "reasoning" || key == "thinking") {
        if (!value.is_null() && !value.is_string()) WrongType(kp, "a string", value);
        if (!value.is_null()) msg["reasoning_content"] = value;
      } else if (key == "images") {
        // Ollama: base64 images beside a string content; they become image_url parts in front
        // of the text (after the loop).
        if (value.is_null()) continue;
        if (!value.is_array()) WrongType(kp, "an array of base64 strings", value);
        for (size_t j = 0; j < value.size(); ++j) {
          if (!value[j].is_string() || value[j].get_ref<const std::string&>().empty()) {
            WrongType(kp + "[" + std::to_string(j) + "]", "a base64 string", value[j]);
          }
        }
        images = value;
      } else if (key == "refusal" || key == "audio" || key == "annotations") {
        if (!value.is_null()) Bad("'" + kp + "' is not supported", kp, "unknown_field");
      } else {
        Bad("unknown or unsupported field '" + kp + "'", kp, "unknown_field");
      }
    }
    if (!images.empty()) msg["content"] = WithImages(images, msg.value("content", Json()));
    if (!msg.contains("content") && !msg.contains("tool_calls")) {
      Bad("'" + p + ".content' is required", p + ".content");
    }
    out.push_back(std::move(msg));
  }
  return out;
}

Json ParseTools(const Json& v) {
  if (!v.is_array()) WrongType("tools", "an array", v);
  if (v.size() > 128) Bad("'tools' may hold at most 128 tools", "tools");
  Json out = Json::array();
  std::set<std::string> names;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string p = "tools[" + std::to_string(i) + "]";
    const Json& t = v[i];
    if (!t.is_object()) WrongType(p, "an object", t);
    const Json* type = Find(t, "type");
    if (type == nullptr || *type != "function") {
      Bad("'" + p + ".type' must be \"function\"", p + ".type");
    }
    const Json* fn = Find(t, "function");
    if (fn == nullptr || !fn->is_object())
      Bad("'" + p + ".function' must be an object", p + ".function");
    const Json* name = Find(*fn, "name");
    if (name == nullptr || !name->is_string() || name->get_ref<const std::string&>().empty()) {
      Bad("'" + p + ".function.name' must be a non-empty string", p + ".function.name");
    }
    for (char c : name->get_ref<const std::string&>()) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) {
        Bad("'" + p + ".function.name' may only contain letters, digits, '_', '-' and '.'",
            p + ".function.name");
      }
    }
    if (!names.insert(name->get<std::string>()).second) {
      Bad("tool '" + name->get<std::string>() + "' is declared twice", p + ".function.name");
    }
    if (const Json* d = Find(*fn, "description"); d != nullptr && !d->is_string()) {
      WrongType(p + ".function.description", "a string", *d);
    }
    if (const Json* ps = Find(*fn, "parameters"); ps != nullptr && !ps->is_object()) {
      WrongType(p + ".function.parameters", "an object (a JSON Schema)", *ps);
    }
    Json tool = Json::object();
    tool["type"] = "function";
    tool["function"] = Json::object();
    for (const auto& [key, value] : fn->items()) {
      if (key == "strict") continue;  // accepted: no schema enforcement either way (docs)
      tool["function"][key] = value;
    }
    out.push_back(std::move(tool));
  }
  return out;
}

// tool_choice: "none" | "auto" | "required" | {"type":"function","function":{"name":N}}. A named
// choice keeps only that tool and requires a call (the output parser then accepts only it).
void ParseToolChoice(const Json& v, GenerationRequest& gen) {
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s == "none") {
      gen.tool_choice = text::ToolChoice::kNone;
    } else if (s == "auto") {
      gen.tool_choice = text::ToolChoice::kAuto;
    } else if (s == "required") {
      gen.tool_choice = text::ToolChoice::kRequired;
    } else {
      Bad("'tool_choice' must be \"none\", \"auto\", \"required\" or a named function",
          "tool_choice");
    }
  } else if (v.is_object()) {
    const Json* type = Find(v, "type");
    const Json* fn = Find(v, "function");
    const Json* name = fn != nullptr && fn->is_object() ? Find(*fn, "name") : nullptr;
    if (type == nullptr || *type != "function" || name == nullptr || !name->is_string()) {
      Bad("'tool_choice' object must be {\"type\":\"function\",\"function\":{\"name\":...}}",
          "tool_choice");
    }
    Json kept = Json::array();
    for (const Json& t : gen.tools) {
      if (t["function"]["name"] == *name) kept.push_back(t);
    }
    if (kept.empty()) {
      Bad("'tool_choice' names '" + name->get<std::string>() + "', which is not in 'tools'",
          "tool_choice");
    }
    gen.tools = std::move(kept);
    gen.tool_choice = text::ToolChoice::kRequired;
  } else {
    WrongType("tool_choice", "a string or an object", v);
  }
  if (gen.tool_choice == text::ToolChoice::kRequired && gen.tools.empty()) {
    Bad("'tool_choice' requires a tool call but 'tools' is empty", "tool_choice");
  }
}

// A schema compiled for constrained decoding; an unsupported keyword is refused, naming it.
std::shared_ptr<const engine::JsonConstraint> CompileSchema(const Json& schema,
                                                            const std::string& param) {
  if (!schema.is_object() && !schema.is_boolean())
    WrongType(param, "an object (a JSON schema)", schema);
  try {
    return std::make_shared<const engine::JsonConstraint>(
        engine::JsonConstraint::ForSchema(nlohmann::json::parse(schema.dump())));
  } catch (const Error& e) {
    Bad(std::string(e.what()) + " in '" + param + "' (" + e.hint() + ")", param,
        "unsupported_parameter");
  }
}

// response_format (OpenAI: {"type":"text"|"json_object"|"json_schema", "json_schema":{...}}) and
// Ollama's format ("json" or a JSON schema): decoding is then constrained to JSON (engine
// json_constraint.h).
void ParseResponseFormat(const Json& v, const std::string& param, GenerationRequest& gen) {
  if (param == "format") {
    if (v.is_string()) {
      const std::string& s = v.get_ref<const std::string&>();
      if (s.empty()) return;
      if (s != "json") Bad("'format' must be \"json\" or a JSON schema object", param);
      gen.format =
          std::make_shared<const engine::JsonConstraint>(engine::JsonConstraint::AnyObject());
      return;
    }
    if (!v.is_object()) WrongType(param, "\"json\" or a JSON schema object", v);
    gen.format = CompileSchema(v, param);
    return;
  }
  if (!v.is_object()) WrongType(param, "an object", v);
  CheckFields(v, param, {"type", "json_schema"});
  const Json* type = Find(v, "type");
  if (type == nullptr || !type->is_string())
    Bad("'" + param + ".type' must be a string", param + ".type");
  const std::string& t = type->get_ref<const std::string&>();
  if (t == "text") return;
  if (t == "json_object") {
    gen.format =
        std::make_shared<const engine::JsonConstraint>(engine::JsonConstraint::AnyObject());
    return;
  }
  if (t == "json_schema") {
    const Json* js = Find(v, "json_schema");
    if (js == nullptr || !js->is_object()) {
      Bad("'" + param + ".json_schema' must be an object with a 'schema'", param + ".json_schema");
    }
    CheckFields(*js, param + ".json_schema", {"name", "schema", "strict", "description"});
    const Json* schema = Find(*js, "schema");
    if (schema == nullptr) {
      Bad("'" + param + ".json_schema.schema' is required", param + ".json_schema.schema",
          "missing");
    }
    gen.format = CompileSchema(*schema, param + ".json_schema.schema");
    return;
  }
  Bad("'" + param + ".type' must be \"text\", \"json_object\" or \"json_schema\"", param + ".type");
}

// JSON output and thinking do not mix: the constraint covers the whole output, so the thought
// channel must be off; JSON output and a forced tool call contradict each other.
void CheckFormatCombination(const GenerationRequest& gen, const std::string& param) {
  if (!gen.format) return;
  if (gen.think) {
    Bad("'" + param + "' (JSON output) cannot be combined with thinking; turn thinking off", param,
        "unsupported_parameter");
  }
  if (gen.tool_choice == text::ToolChoice::kRequired) {
    Bad("'" + param + "' (JSON output) cannot be combined with a required tool call", param,
        "unsupported_parameter");
  }
}

void ParseSeed(const Json& v, const std::string& param, GenerationRequest& gen) {
  const int64_t seed =
      GetInt(v, param, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
  gen.sampling.seed = static_cast<uint64_t>(seed);
  gen.seed_given = true;
}

void ParseMaxTokens(const Json& v, const std::string& param, GenerationRequest& gen) {
  gen.max_tokens = static_cast<int>(GetInt(v, param, 1, 1 << 24));
}

// llama-server's adapter list, [{"id": N, "scale": S}, ...] (the `lora` request field and the
// POST /lora-adapters body). Whether an id is loaded is the generator's to check.
std::vector<std::pair<int, float>> ParseLoraList(const Json& v, const std::string& param) {
  if (!v.is_array()) WrongType(param, "an array of {\"id\", \"scale\"} objects", v);
  std::vector<std::pair<int, float>> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string p = param + "[" + std::to_string(i) + "]";
    const Json& e = v[i];
    if (!e.is_object()) WrongType(p, "an object", e);
    CheckFields(e, p, {"id", "scale"});
    const Json* id = Find(e, "id");
    const Json* scale = Find(e, "scale");
    if (id == nullptr) Bad("'" + p + ".id' is required", p + ".id", "missing");
    if (scale == nullptr) Bad("'" + p + ".scale' is required", p + ".scale", "missing");
    const int n = static_cast<int>(GetInt(*id, p + ".id", 0, 1 << 20));
    for (const auto& [seen, s] : out) {
      if (seen == n) Bad("adapter id " + std::to_string(n) + " is given twice", p + ".id");
    }
    out.emplace_back(n, static_cast<float>(GetNumber(*scale, p + ".scale", -100, 100)));
  }
  return out;
}

// OpenAI /v1/chat/completions and /v1/completions.
// Longer than 150 lines on purpose: one short block per request field, in the order of the
// OpenAI API reference, each naming the field in its error; splitting it would only scatter them.
void ParseOpenAI(const Json& body, ApiRequest& req) {
  const bool chat = req.api == Api::kChat;
  GenerationRequest& gen = req.gen;
  if (chat) {
    CheckFields(body, "",
                {"model",
                 "messages",
                 "stream",
                 "stream_options",
                 "max_tokens",
                 "max_completion_tokens",
                 "temperature",
                 "top_p",
                 "top_k",
                 "min_p",
                 "stop",
                 "seed",
                 "tools",
                 "tool_choice",
                 "parallel_tool_calls",
                 "response_format",
                 "n",
                 "frequency_penalty",
                 "presence_penalty",
                 "repeat_penalty",
                 "user",
                 "logprobs",
                 "logit_bias",
                 "reasoning_effort",
                 "chat_template_kwargs",
                 "metadata",
                 "store",
                 "service_tier",
                 "lora"});
  } else {
    CheckFields(body, "",
                {"model",
                 "prompt",
                 "stream",
                 "stream_options",
                 "max_tokens",
                 "temperature",
                 "top_p",
                 "top_k",
                 "min_p",
                 "stop",
                 "seed",
                 "n",
                 "best_of",
                 "echo",
                 "suffix",
                 "frequency_penalty",
                 "presence_penalty",
                 "repeat_penalty",
                 "user",
                 "logprobs",
                 "logit_bias",
                 "lora"});
    gen.max_tokens = 16;  // OpenAI's documented default for completions
  }
  for (const auto& [key, v] : body.items()) {
    if (v.is_null()) continue;
    if (key == "model") {
      req.model = GetString(v, key);
    } else if (key == "messages") {
      gen.messages = ParseMessages(v, false);
    } else if (key == "prompt") {
      if (v.is_string()) {
        gen.prompt = v.get<std::string>();
      } else if (v.is_array() && v.size() == 1 && v[0].is_string()) {
        gen.prompt = v[0].get<std::string>();
      } else {
        Bad("'prompt' must be a string (or an array of exactly one string)", "prompt");
      }
      gen.raw = true;
    } else if (key == "stream") {
      req.stream = GetBool(body, "stream", key, false);
    } else if (key == "stream_options") {
      if (!v.is_object()) WrongType(key, "an object", v);
      CheckFields(v, key, {"include_usage"});
      req.include_usage = GetBool(v, "include_usage", "stream_options.include_usage", false);
    } else if (key == "max_tokens" || key == "max_completion_tokens") {
      ParseMaxTokens(v, key, gen);
    } else if (key == "temperature") {
      gen.sampling.temperature = static_cast<float>(GetNumber(v, key, 0, 2));
    } else if (key == "top_p") {
      gen.sampling.top_p = static_cast<float>(GetNumber(v, key, 0, 1));
    } else if (key == "top_k") {
      gen.sampling.top_k = static_cast<int>(GetInt(v, key, 0, 1 << 20));
    } else if (key == "min_p") {
      gen.sampling.min_p = static_cast<float>(GetNumber(v, key, 0, 1));
    } else if (key == "stop") {
      ParseStop(v, key, gen.stop);
    } else if (key == "seed") {
      ParseSeed(v, key, gen);
    } else if (key == "tools") {
      gen.tools = ParseTools(v);
    } else if (key == "parallel_tool_calls") {
      gen.parallel_tool_calls = GetBool(body, "parallel_tool_calls", key, true);
    } else if (key == "response_format") {
      ParseResponseFormat(v, key, gen);
    } else if (key == "n" || key == "best_of") {
      if (GetInt(v, key, 1, 1 << 20) != 1) {
        Bad("'" + key + "' must be 1 (hearth returns one choice)", key, "unsupported_parameter");
      }
    } else if (key == "frequency_penalty") {
      gen.sampling.frequency_penalty = static_cast<float>(GetNumber(v, key, -2, 2));
    } else if (key == "presence_penalty") {
      gen.sampling.presence_penalty = static_cast<float>(GetNumber(v, key, -2, 2));
    } else if (key == "repeat_penalty") {
      gen.sampling.repeat_penalty = static_cast<float>(GetNumber(v, key, 0, 10));
    } else if (key == "user" || key == "service_tier") {
      GetString(v, key);
    } else if (key == "metadata") {
      if (!v.is_object()) WrongType(key, "an object", v);
    } else if (key == "store") {
      GetBool(body, "store", key, false);
    } else if (key == "logprobs") {
      if ((v.is_boolean() && v.get<bool>()) || (!v.is_boolean() && !v.is_number())) {
        Bad("'logprobs' is not supported", key, "unsupported_parameter");
      }
      if (v.is_number() && GetInt(v, key, 0, 20) != 0) {
        Bad("'logprobs' is not supported", key, "unsupported_parameter");
      }
    } else if (key == "logit_bias") {
      if (!v.is_object()) WrongType(key, "an object", v);
      if (!v.empty()) Bad("'logit_bias' is not supported", key, "unsupported_parameter");
    } else if (key == "echo") {
      if (GetBool(body, "echo", key, false)) {
        Bad("'echo' is not supported", key, "unsupported_parameter");
      }
    } else if (key == "suffix") {
      if (!GetString(v, key).empty()) {
        Bad("'suffix' (fill-in-the-middle) is not supported", key, "unsupported_parameter");
      }
    } else if (key == "reasoning_effort") {
      const std::string& e = GetString(v, key);
      if (e != "none" && e != "minimal" && e != "low" && e != "medium" && e != "high") {
        Bad("'reasoning_effort' must be none, minimal, low, medium or high", key);
      }
      // Gemma 4 thinks or does not; any effort above "none"/"minimal" turns thinking on.
      gen.think = e != "none" && e != "minimal";
    } else if (key == "lora") {
      gen.lora = ParseLoraList(v, key);
    } else if (key == "chat_template_kwargs") {
      if (!v.is_object()) WrongType(key, "an object", v);
      CheckFields(v, key, {"enable_thinking"});
      gen.think = GetBool(v, "enable_thinking", "chat_template_kwargs.enable_thinking", gen.think);
    }
  }
  if (chat && !body.contains("messages")) Bad("'messages' is required", "messages", "missing");
  if (!chat && !gen.raw) Bad("'prompt' is required", "prompt", "missing");
  if (body.contains("tool_choice") && !body["tool_choice"].is_null()) {
    ParseToolChoice(body["tool_choice"], gen);
  }
  CheckFormatCombination(gen, "response_format");
}

void ParseOllamaOptions(const Json& v, GenerationRequest& gen) {
  if (!v.is_object()) WrongType("options", "an object", v);
  // Options that only tune Ollama's runtime (GPU layers, batch, mmap...) are accepted and have
  // no effect; the ones that change the output are honoured; anything else is refused.
  CheckFields(v, "options",
              {"num_ctx",
               "temperature",
               "top_p",
               "top_k",
               "min_p",
               "seed",
               "num_predict",
               "stop",
               "repeat_penalty",
               "presence_penalty",
               "frequency_penalty",
               "repeat_last_n",
               "num_thread",
               "num_gpu",
               "num_batch",
               "main_gpu",
               "use_mmap",
               "use_mlock",
               "num_keep",
               "low_vram",
               "numa"});
  for (const auto& [key, x] : v.items()) {
    if (x.is_null()) continue;
    const std::string p = "options." + key;
    if (key == "num_ctx") {
      gen.num_ctx = static_cast<int>(GetInt(x, p, 1, 1 << 24));
    } else if (key == "temperature") {
      gen.sampling.temperature = static_cast<float>(GetNumber(x, p, 0, 100));
    } else if (key == "top_p") {
      gen.sampling.top_p = static_cast<float>(GetNumber(x, p, 0, 1));
    } else if (key == "top_k") {
      gen.sampling.top_k = static_cast<int>(GetInt(x, p, 0, 1 << 20));
    } else if (key == "min_p") {
      gen.sampling.min_p = static_cast<float>(GetNumber(x, p, 0, 1));
    } else if (key == "seed") {
      ParseSeed(x, p, gen);
    } else if (key == "num_predict") {
      // Ollama: -1 = no limit, -2 = fill the context.
      const int64_t n = GetInt(x, p, -2, 1 << 24);
      gen.max_tokens = n <= 0 ? 0 : static_cast<int>(n);
    } else if (key == "stop") {
      ParseStop(x, p, gen.stop);
    } else if (key == "repeat_penalty") {
      gen.sampling.repeat_penalty = static_cast<float>(GetNumber(x, p, 0, 10));
    } else if (key == "presence_penalty") {
      gen.sampling.presence_penalty = static_cast<float>(GetNumber(x, p, -2, 2));
    } else if (key == "frequency_penalty") {
      gen.sampling.frequency_penalty = static_cast<float>(GetNumber(x, p, -2, 2));
    } else if (key == "repeat_last_n") {
      gen.sampling.penalty_last_n = static_cast<int>(GetInt(x, p, 0, 1 << 20));
    }
  }
}

// Ollama /api/chat and /api/generate.
void ParseOllama(const Json& body, ApiRequest& req) {
  const bool chat = req.api == Api::kOllamaChat;
  GenerationRequest& gen = req.gen;
  req.stream = true;  // Ollama streams unless told not to
  if (chat) {
    CheckFields(
        body, "",
        {"model", "messages", "tools", "stream", "think", "format", "options", "keep_alive"});
  } else {
    CheckFields(body, "",
                {"model", "prompt", "suffix", "system", "template", "context", "raw", "stream",
                 "think", "format", "options", "keep_alive", "images"});
  }
  std::string system;
  bool raw = false;
  Json images = Json::array();
  for (const auto& [key, v] : body.items()) {
    if (v.is_null()) continue;
    if (key == "model") {
      req.model = GetString(v, key);
    } else if (key == "messages") {
      gen.messages = ParseMessages(v, true);
    } else if (key == "tools") {
      gen.tools = ParseTools(v);
    } else if (key == "stream") {
      req.stream = GetBool(body, "stream", key, true);
    } else if (key == "think") {
      // true/false, or an effort level ("low"/"medium"/"high"), as Ollama accepts.
      if (v.is_boolean()) {
        gen.think = v.get<bool>();
      } else if (v.is_string() && (v == "low" || v == "medium" || v == "high")) {
        gen.think = true;
      } else {
        WrongType(key, "a boolean (or \"low\", \"medium\", \"high\")", v);
      }
    } else if (key == "format") {
      ParseResponseFormat(v, key, gen);
    } else if (key == "options") {
      ParseOllamaOptions(v, gen);
    } else if (key == "keep_alive") {
      if (!v.is_string() && !v.is_number()) WrongType(key, "a duration", v);
    } else if (key == "prompt") {
      gen.prompt = GetString(v, key);
    } else if (key == "system") {
      system = GetString(v, key);
    } else if (key == "raw") {
      raw = GetBool(body, "raw", key, false);
    } else if (key == "suffix" || key == "template") {
      if (!GetString(v, key).empty()) {
        Bad("'" + key + "' is not supported", key, "unsupported_parameter");
      }
    } else if (key == "context") {
      if (!v.is_array()) WrongType(key, "an array", v);
      if (!v.empty()) {
        Bad("'context' is not supported (send the conversation to /api/chat instead)", key,
            "unsupported_parameter");
      }
    } else if (key == "images") {
      if (!v.is_array()) WrongType(key, "an array of base64 strings", v);
      for (size_t j = 0; j < v.size(); ++j) {
        if (!v[j].is_string() || v[j].get_ref<const std::string&>().empty()) {
          WrongType(key + "[" + std::to_string(j) + "]", "a base64 string", v[j]);
        }
      }
      images = v;
    }
  }
  if (chat) {
    if (!body.contains("messages")) Bad("'messages' is required", "messages", "missing");
  } else {
    if (!body.contains("prompt")) Bad("'prompt' is required", "prompt", "missing");
    if (raw && !images.empty()) {
      Bad("'images' need the chat template; a raw prompt cannot carry them", "images",
          "unsupported_content");
    }
    if (raw) {
      gen.raw = true;
    } else {
      if (!system.empty()) gen.messages.push_back({{"role", "system"}, {"content", system}});
      gen.messages.push_back(
          {{"role", "user"},
           {"content", images.empty() ? Json(gen.prompt) : WithImages(images, gen.prompt)}});
    }
  }
  CheckFormatCombination(gen, "format");
}

// Parameters that common clients send and that are harmless to ignore: sampling refinements
// hearth does not implement (the output stays a valid sample), llama.cpp's cache and slot hints
// (hearth reuses the prompt prefix anyway), probabilities until they are supported. Accepted with
// a warning instead of a 400; everything else unknown is still refused.
constexpr const char* kIgnoredOpenAI[] = {"cache_prompt",
                                          "typical_p",
                                          "n_probs",
                                          "top_logprobs",
                                          "tfs_z",
                                          "mirostat",
                                          "mirostat_tau",
                                          "mirostat_eta",
                                          "penalize_nl",
                                          "n_keep",
                                          "id_slot",
                                          "slot_id",
                                          "samplers",
                                          "dynatemp_range",
                                          "dynatemp_exponent",
                                          "xtc_probability",
                                          "xtc_threshold",
                                          "dry_multiplier",
                                          "dry_base",
                                          "dry_allowed_length",
                                          "dry_penalty_last_n",
                                          "dry_sequence_breakers",
                                          "timings_per_token",
                                          "return_tokens",
                                          "post_sampling_probs",
                                          "t_max_predict_ms"};
constexpr const char* kIgnoredOllama[] = {"logprobs", "top_logprobs", "truncate", "shift"};
constexpr const char* kIgnoredOllamaOptions[] = {"mirostat",
                                                 "mirostat_tau",
                                                 "mirostat_eta",
                                                 "typical_p",
                                                 "tfs_z",
                                                 "penalize_newline",
                                                 "num_gqa",
                                                 "f16_kv",
                                                 "vocab_only",
                                                 "logits_all",
                                                 "rope_frequency_base",
                                                 "rope_frequency_scale",
                                                 "embedding_only"};

// Removes the ignored parameters from `obj`, with a warning for each one that has a value.
template <size_t N>
void StripIgnored(Json& obj, const std::string& where, const char* const (&names)[N],
                  std::vector<std::string>& warnings) {
  for (const char* name : names) {
    auto it = obj.find(name);
    if (it == obj.end()) continue;
    if (!it->is_null()) {
      const std::string param = where.empty() ? name : where + "." + name;
      warnings.push_back("'" + param + "' is not supported by hearth and was ignored");
    }
    obj.erase(it);
  }
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= static_cast<size_t>(n)) return false;
    for (int k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

namespace {

// The body as JSON: UTF-8, nesting bounded, well-formed.
Json ParseBody(std::string_view body) {
  if (body.empty())
    throw RequestError(400, "the request body is empty (send a JSON object)", "", "empty_body");
  if (!IsValidUtf8(body)) {
    throw RequestError(400, "the request body is not valid UTF-8", "", "invalid_utf8");
  }
  Json json;
  try {
    // Depth is bounded by nlohmann's recursive parser only through the stack; refuse absurd
    // nesting first so a hostile body cannot overflow it.
    int depth = 0, max_depth = 0;
    bool in_string = false, escaped = false;
    for (char c : body) {
      if (in_string) {
        if (escaped)
          escaped = false;
        else if (c == '\\')
          escaped = true;
        else if (c == '"')
          in_string = false;
      } else if (c == '"') {
        in_string = true;
      } else if (c == '[' || c == '{') {
        max_depth = std::max(max_depth, ++depth);
      } else if (c == ']' || c == '}') {
        --depth;
      }
    }
    if (max_depth > 64) {
      throw RequestError(400, "the request body nests deeper than 64 levels", "", "too_deep");
    }
    json = Json::parse(body);
  } catch (const nlohmann::json::exception& e) {
    throw RequestError(400, std::string("the request body is not valid JSON: ") + e.what(), "",
                       "invalid_json");
  }
  return json;
}

}  // namespace

ApiRequest ParseRequest(Api api, std::string_view body) {
  Json json = ParseBody(body);
  if (!json.is_object()) {
    throw RequestError(400, "the request body must be a JSON object", "", "invalid_json");
  }
  ApiRequest req;
  req.api = api;
  if (api == Api::kChat || api == Api::kCompletion) {
    StripIgnored(json, "", kIgnoredOpenAI, req.warnings);
    ParseOpenAI(json, req);
  } else {
    StripIgnored(json, "", kIgnoredOllama, req.warnings);
    if (auto it = json.find("options"); it != json.end() && it->is_object()) {
      StripIgnored(*it, "options", kIgnoredOllamaOptions, req.warnings);
    }
    ParseOllama(json, req);
  }
  try {
    req.gen.sampling.Validate();
  } catch (const std::exception& e) {
    throw RequestError(400, e.what(), "", "invalid_value");
  }
  return req;
}

std::vector<std::pair<int, float>> ParseLoraScales(std::string_view body) {
  return ParseLoraList(ParseBody(body), "body");
}

std::string ErrorBody(const RequestError& e) {
  nlohmann::json err = {
      {"message", e.what()},
      {"type", e.type},
      {"param", e.param.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.param)},
      {"code", e.code.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.code)}};
  return nlohmann::json{{"error", err}}.dump(-1, ' ', false,
                                             nlohmann::json::error_handler_t::replace);
}

}  // namespace hearth::server
