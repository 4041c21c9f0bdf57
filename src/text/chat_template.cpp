// Native rendering of the two Gemma 4 chat templates. The code follows the Jinja source closely
// (macro by macro) because the prompt must match Hugging Face's rendering byte for byte; the
// Jinja2/Python semantics it relies on (truthiness, dictsort, trim, repr) are reproduced by the
// helpers at the top.
#include "text/chat_template.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <vector>

#include "base/error.h"

namespace hearth::text {
namespace {

using Json = nlohmann::ordered_json;

constexpr std::string_view kQ = "<|\"|>";

[[noreturn]] void Bad(const std::string& what) {
  ThrowInvalidInput("chat input: " + what,
                    "send OpenAI-style messages: role system/developer/user/assistant/tool with "
                    "string or part-list content");
}

// ---- Python / Jinja2 semantics ------------------------------------------------------------

// Jinja's `x['key']`: undefined (nullptr) unless x is a mapping holding key.
const Json* Get(const Json* x, std::string_view key) {
  if (x == nullptr || !x->is_object()) return nullptr;
  auto it = x->find(key);
  return it == x->end() ? nullptr : &*it;
}
const Json* Get(const Json& x, std::string_view key) { return Get(&x, key); }

bool Truthy(const Json* x) {
  if (x == nullptr) return false;
  switch (x->type()) {
    case Json::value_t::null:
      return false;
    case Json::value_t::boolean:
      return x->get<bool>();
    case Json::value_t::number_integer:
      return x->get<int64_t>() != 0;
    case Json::value_t::number_unsigned:
      return x->get<uint64_t>() != 0;
    case Json::value_t::number_float:
      return x->get<double>() != 0.0;
    case Json::value_t::string:
      return !x->get_ref<const std::string&>().empty();
    case Json::value_t::array:
    case Json::value_t::object:
      return !x->empty();
    default:
      return false;
  }
}

// Decodes the code point at s[i] (lenient: a bad byte counts as itself), returning its length.
size_t CodePointAt(std::string_view s, size_t i, uint32_t* cp) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
  if (i + len > s.size()) len = 1;
  if (len == 1) {
    *cp = c;
    return 1;
  }
  uint32_t v = c & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) v = (v << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  *cp = v;
  return len;
}

// Python's str.isspace().
bool IsPySpace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// Python's str.strip().
std::string_view Trim(std::string_view s) {
  size_t begin = 0;
  while (begin < s.size()) {
    uint32_t cp;
    size_t len = CodePointAt(s, begin, &cp);
    if (!IsPySpace(cp)) break;
    begin += len;
  }
  size_t end = s.size();
  while (end > begin) {
    // Step back to the start of the previous code point.
    size_t start = end - 1;
    while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80 &&
           end - start < 4) {
      --start;
    }
    uint32_t cp;
    size_t len = CodePointAt(s, start, &cp);
    if (start + len != end || !IsPySpace(cp)) break;
    end = start;
  }
  return s.substr(begin, end - begin);
}

std::string AsciiUpper(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return s;
}

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string PyRepr(const Json& x);

// Python's str(x) (what `{{ x }}` prints).
std::string PyStr(const Json& x) {
  switch (x.type()) {
    case Json::value_t::null:
      return "None";
    case Json::value_t::boolean:
      return x.get<bool>() ? "True" : "False";
    case Json::value_t::number_integer:
      return std::to_string(x.get<int64_t>());
    case Json::value_t::number_unsigned:
      return std::to_string(x.get<uint64_t>());
    case Json::value_t::number_float:
      return PythonFloatRepr(x.get<double>());
    case Json::value_t::string:
      return x.get<std::string>();
    case Json::value_t::array: {
      std::string out = "[";
      for (size_t i = 0; i < x.size(); ++i) {
        if (i > 0) out += ", ";
        out += PyRepr(x[i]);
      }
      return out + "]";
    }
    case Json::value_t::object: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, v] : x.items()) {
        if (!first) out += ", ";
        first = false;
        out += PyRepr(Json(k)) + ": " + PyRepr(v);
      }
      return out + "}";
    }
    default:
      return "";
  }
}

// Python's repr(x): strings quoted, everything else as str().
std::string PyRepr(const Json& x) {
  if (!x.is_string()) return PyStr(x);
  const std::string& s = x.get_ref<const std::string&>();
  char quote = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
  std::string out(1, quote);
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\\' || c == quote) {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  out += quote;
  return out;
}

// Jinja's `x | upper` (undefined → "").
std::string Upper(const Json* x) {
  if (x == nullptr) return "";
  return AsciiUpper(PyStr(*x));
}

// Jinja2 `dictsort`: items sorted by lower-cased key, stable.
std::vector<std::pair<std::string_view, const Json*>> DictSort(const Json& object) {
  std::vector<std::pair<std::string_view, const Json*>> items;
  for (auto it = object.begin(); it != object.end(); ++it) items.emplace_back(it.key(), &*it);
  std::stable_sort(items.begin(), items.end(), [](const auto& a, const auto& b) {
    return AsciiLower(a.first) < AsciiLower(b.first);
  });
  return items;
}

// ---- template macros ----------------------------------------------------------------------

// format_argument(argument, escape_keys)
void FormatArgument(const Json& arg, bool escape_keys, std::string& out) {
  if (arg.is_string()) {
    out += kQ;
    out += arg.get_ref<const std::string&>();
    out += kQ;
  } else if (arg.is_boolean()) {
    out += arg.get<bool>() ? "true" : "false";
  } else if (arg.is_object()) {
    out += '{';
    bool first = true;
    for (const auto& [key, value] : DictSort(arg)) {
      if (!first) out += ',';
      first = false;
      if (escape_keys) {
        out += kQ;
        out += key;
        out += kQ;
      } else {
        out += key;
      }
      out += ':';
      FormatArgument(*value, escape_keys, out);
    }
    out += '}';
  } else if (arg.is_array()) {
    out += '[';
    for (size_t i = 0; i < arg.size(); ++i) {
      if (i > 0) out += ',';
      FormatArgument(arg[i], escape_keys, out);
    }
    out += ']';
  } else {
    out += PyStr(arg);
  }
}

void RequiredList(const Json* list, std::string& out) {
  if (list == nullptr || !list->is_array()) return;
  for (size_t i = 0; i < list->size(); ++i) {
    if (i > 0) out += ',';
    out += kQ;
    out += PyStr((*list)[i]);
    out += kQ;
  }
}

bool IsStandardKey(std::string_view key) {
  return key == "description" || key == "type" || key == "properties" || key == "required" ||
         key == "nullable";
}

void FormatParameters(const Json& properties, ChatTemplate tmpl, std::string& out);

// The `items:{…}` body of an ARRAY property (identical in both templates).
void FormatItems(const Json& items, ChatTemplate tmpl, std::string& out) {
  bool first = true;
  for (const auto& [item_key, item_value] : DictSort(items)) {
    if (item_value->is_null()) continue;
    if (!first) out += ',';
    first = false;
    if (item_key == "properties") {
      out += "properties:{";
      if (item_value->is_object()) FormatParameters(*item_value, tmpl, out);
      out += '}';
    } else if (item_key == "required") {
      out += "required:[";
      RequiredList(item_value, out);
      out += ']';
    } else if (item_key == "type") {
      out += "type:";
      if (item_value->is_array()) {
        Json upper = Json::array();
        for (const auto& t : *item_value) upper.push_back(AsciiUpper(PyStr(t)));
        FormatArgument(upper, true, out);
      } else {
        FormatArgument(Json(AsciiUpper(PyStr(*item_value))), true, out);
      }
    } else {
      out += item_key;
      out += ':';
      FormatArgument(*item_value, true, out);
    }
  }
}

// format_parameters(properties, required)
void FormatParameters(const Json& properties, ChatTemplate tmpl, std::string& out) {
  bool found_first = false;
  for (const auto& [key, value_ptr] : DictSort(properties)) {
    if (IsStandardKey(key)) continue;
    const Json* value = value_ptr;
    bool add_comma = false;
    auto comma = [&] {
      if (add_comma) {
        out += ',';
      } else {
        add_comma = true;
      }
    };
    if (found_first) out += ',';
    found_first = true;
    out += key;
    out += ":{";
    if (const Json* d = Get(value, "description"); Truthy(d)) {
      out += "description:";
      out += kQ;
      out += PyStr(*d);
      out += kQ;
      add_comma = true;
    }
    const std::string type = Upper(Get(value, "type"));
    if (tmpl == ChatTemplate::kOfficial) {
      if (type == "STRING") {
        if (const Json* e = Get(value, "enum"); Truthy(e)) {
          comma();
          out += "enum:";
          FormatArgument(*e, true, out);
        }
      } else if (type == "ARRAY") {
        if (const Json* items = Get(value, "items"); items && items->is_object() && !items->empty()) {
          comma();
          out += "items:{";
          FormatItems(*items, tmpl, out);
          out += '}';
        }
      }
      if (Truthy(Get(value, "nullable"))) {
        comma();
        out += "nullable:true";
      }
      if (type == "OBJECT") {
        const Json* props = Get(value, "properties");
        if (props != nullptr && props->is_object()) {
          comma();
          out += "properties:{";
          FormatParameters(*props, tmpl, out);
          out += '}';
        } else if (value->is_object()) {
          comma();
          out += "properties:{";
          FormatParameters(*value, tmpl, out);
          out += '}';
        }
        if (const Json* req = Get(value, "required"); Truthy(req)) {
          comma();
          out += "required:[";
          RequiredList(req, out);
          out += ']';
        }
      }
    } else {
      // Interleaved file: nullable first; object/array parts with an unconditional leading
      // comma that does not set add_comma (spec §4.6; malformed, but that is the file).
      if (Truthy(Get(value, "nullable"))) {
        comma();
        out += "nullable:true";
      }
      if (type == "STRING") {
        if (const Json* e = Get(value, "enum"); Truthy(e)) {
          comma();
          out += "enum:";
          FormatArgument(*e, true, out);
        }
      } else if (type == "OBJECT") {
        out += ",properties:{";
        const Json* props = Get(value, "properties");
        if (props != nullptr && props->is_object()) {
          FormatParameters(*props, tmpl, out);
        } else if (value->is_object()) {
          FormatParameters(*value, tmpl, out);
        }
        out += '}';
        if (const Json* req = Get(value, "required"); Truthy(req)) {
          out += ",required:[";
          RequiredList(req, out);
          out += ']';
        }
      } else if (type == "ARRAY") {
        if (const Json* items = Get(value, "items"); items && items->is_object() && !items->empty()) {
          out += ",items:{";
          FormatItems(*items, tmpl, out);
          out += '}';
        }
      }
    }
    comma();
    out += "type:";
    out += kQ;
    out += type;
    out += kQ;
    out += '}';
  }
}

// format_function_declaration(tool)
std::string FormatDeclaration(const Json& tool, size_t index, ChatTemplate tmpl) {
  const Json* function = Get(tool, "function");
  const std::string where = "tools[" + std::to_string(index) + "]";
  if (function == nullptr || !function->is_object()) Bad(where + ".function is missing");
  const Json* name = Get(function, "name");
  if (name == nullptr || !name->is_string()) Bad(where + ".function.name is missing");
  std::string out = "declaration:" + name->get<std::string>() + "{description:";
  out += kQ;
  if (const Json* d = Get(function, "description"); d != nullptr) out += PyStr(*d);
  out += kQ;
  const Json* params = Get(function, "parameters");
  if (Truthy(params)) {
    if (!params->is_object()) Bad(where + ".function.parameters must be a JSON Schema object");
    out += ",parameters:{";
    if (const Json* props = Get(params, "properties"); Truthy(props)) {
      out += "properties:{";
      if (props->is_object()) FormatParameters(*props, tmpl, out);
      out += "},";
    }
    if (const Json* req = Get(params, "required"); Truthy(req)) {
      out += "required:[";
      RequiredList(req, out);
      out += "],";
    }
    if (const Json* type = Get(params, "type"); Truthy(type)) {
      out += "type:";
      out += kQ;
      out += Upper(type);
      out += kQ;
      out += '}';
    }
  }
  if (const Json* response = Get(function, "response"); response != nullptr) {
    out += ",response:{";
    if (const Json* d = Get(response, "description"); Truthy(d)) {
      out += "description:";
      out += kQ;
      out += PyStr(*d);
      out += kQ;
      out += ',';
    }
    if (Upper(Get(response, "type")) == "OBJECT") {
      out += "type:";
      out += kQ;
      out += "OBJECT";
      out += kQ;
      out += '}';
    }
  }
  out += '}';
  return std::string(Trim(out));
}

// strip_thinking(text)
std::string StripThinking(std::string_view text) {
  std::string result;
  size_t pos = 0;
  while (true) {
    size_t end = text.find("<channel|>", pos);
    std::string_view part = text.substr(pos, end == std::string_view::npos ? text.npos : end - pos);
    size_t open = part.find("<|channel>");
    result += open == std::string_view::npos ? part : part.substr(0, open);
    if (end == std::string_view::npos) break;
    pos = end + std::string_view("<channel|>").size();
  }
  return std::string(Trim(result));
}

// format_tool_response_block(name, response)
void ToolResponseBlock(const std::string& name, const Json& response, std::string& out) {
  out += "<|tool_response>";
  if (response.is_object()) {
    out += "response:" + name + "{";
    bool first = true;
    for (const auto& [key, value] : DictSort(response)) {
      if (!first) out += ',';
      first = false;
      out += key;
      out += ':';
      FormatArgument(*value, false, out);
    }
    out += '}';
  } else {
    out += "response:" + name + "{value:";
    FormatArgument(response, false, out);
    out += '}';
  }
  out += "<tool_response|>";
}

// ---- input validation ---------------------------------------------------------------------

const char* const kRoles[] = {"system", "developer", "user", "assistant", "tool"};

void ValidateMessages(const Json& messages) {
  if (!messages.is_array()) Bad("'messages' must be a list");
  if (messages.empty()) Bad("'messages' is empty");
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& m = messages[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) Bad(where + " is not an object");
    const Json* role = Get(m, "role");
    if (role == nullptr || !role->is_string()) Bad(where + " has no string 'role'");
    const std::string& r = role->get_ref<const std::string&>();
    if (std::find(std::begin(kRoles), std::end(kRoles), r) == std::end(kRoles)) {
      Bad(where + ".role '" + r + "' is not one of system, developer, user, assistant, tool");
    }
    if (const Json* content = Get(m, "content"); content != nullptr) {
      if (r == "tool") {
        // Tool results may be any JSON value (a mapping renders as key:value pairs).
      } else if (content->is_array()) {
        for (size_t k = 0; k < content->size(); ++k) {
          const Json& part = (*content)[k];
          const std::string pw = where + ".content[" + std::to_string(k) + "]";
          if (!part.is_object()) Bad(pw + " is not an object");
          const Json* type = Get(part, "type");
          if (type == nullptr || !type->is_string()) Bad(pw + " has no string 'type'");
          const std::string& t = type->get_ref<const std::string&>();
          if (t == "text") {
            const Json* text = Get(part, "text");
            if (text != nullptr && !text->is_string()) Bad(pw + ".text is not a string");
          } else if (t != "image" && t != "audio" && t != "video" && t != "image_url" &&
                     t != "input_audio" && t != "video_url") {
            Bad(pw + ".type '" + t + "' is not text, image, audio or video");
          }
        }
      } else if (!content->is_string() && !content->is_null()) {
        Bad(where + ".content must be a string, a list of parts or null");
      }
    }
    if (const Json* calls = Get(m, "tool_calls"); calls != nullptr && !calls->is_null()) {
      if (!calls->is_array()) Bad(where + ".tool_calls must be a list");
      for (size_t k = 0; k < calls->size(); ++k) {
        const std::string cw = where + ".tool_calls[" + std::to_string(k) + "]";
        const Json* fn = Get((*calls)[k], "function");
        if (fn == nullptr || !fn->is_object()) Bad(cw + ".function is missing");
        const Json* name = Get(fn, "name");
        if (name == nullptr || !name->is_string()) Bad(cw + ".function.name is missing");
      }
    }
    if (const Json* trs = Get(m, "tool_responses"); trs != nullptr && !trs->is_null()) {
      if (!trs->is_array()) Bad(where + ".tool_responses must be a list");
      for (size_t k = 0; k < trs->size(); ++k) {
        if (!(*trs)[k].is_object()) {
          Bad(where + ".tool_responses[" + std::to_string(k) + "] is not an object");
        }
      }
    }
    for (const char* key : {"reasoning", "reasoning_content"}) {
      if (const Json* v = Get(m, key); v != nullptr && !v->is_string() && !v->is_null()) {
        Bad(where + "." + key + " must be a string");
      }
    }
  }
}

std::string RoleName(const Json& m) {
  const std::string& r = Get(m, "role")->get_ref<const std::string&>();
  return r == "assistant" ? "model" : r;
}

// Tool-call arguments between the braces: a mapping as sorted key:value pairs; a string that is
// a JSON object is parsed first (as llama.cpp does), any other string is inserted verbatim.
void CallArguments(const Json* args, std::string& out) {
  if (args == nullptr) return;
  Json parsed;
  if (args->is_string()) {
    parsed = Json::parse(args->get_ref<const std::string&>(), nullptr, false);
    if (!parsed.is_object()) {
      out += args->get_ref<const std::string&>();
      return;
    }
    args = &parsed;
  }
  if (!args->is_object()) return;
  bool first = true;
  for (const auto& [key, value] : DictSort(*args)) {
    if (!first) out += ',';
    first = false;
    out += key;
    out += ':';
    FormatArgument(*value, false, out);
  }
}

void ToolCalls(const Json& calls, std::string& out) {
  for (const Json& call : calls) {
    const Json* fn = Get(call, "function");
    out += "<|tool_call>call:" + Get(fn, "name")->get<std::string>() + "{";
    CallArguments(Get(fn, "arguments"), out);
    out += "}<tool_call|>";
  }
}

// Content of a message; returns the prev_message_type a media part sets (or "" if none).
std::string Content(const Json* content, bool model, std::string& out) {
  std::string prev;
  if (content == nullptr) return prev;
  if (content->is_string()) {
    const std::string& s = content->get_ref<const std::string&>();
    out += model ? StripThinking(s) : std::string(Trim(s));
  } else if (content->is_array()) {
    for (const Json& part : *content) {
      const Json* type_ptr = Get(part, "type");
      const std::string type = type_ptr != nullptr ? PyStr(*type_ptr) : "";
      if (type == "text") {
        const Json* text = Get(part, "text");
        std::string s = text != nullptr ? PyStr(*text) : "";
        out += model ? StripThinking(s) : std::string(Trim(s));
      } else if (type == "image" || type == "image_url") {
        out += "<|image|>";
        prev = "image";
      } else if (type == "audio" || type == "input_audio") {
        out += "<|audio|>";
        prev = "audio";
      } else if (type == "video" || type == "video_url") {
        out += "<|video|>";
        prev = "video";
      }
    }
  }
  return prev;
}

// The system message's content: a string, or (instead of Python's repr of a list) the text parts.
std::string SystemText(const Json* content) {
  if (content == nullptr || content->is_null()) return "";
  if (content->is_string()) return std::string(Trim(content->get_ref<const std::string&>()));
  std::string joined;
  for (const Json& part : *content) {
    const Json* type = Get(part, "type");
    if (const Json* t = Get(part, "text"); t != nullptr && type != nullptr && PyStr(*type) == "text") {
      joined += PyStr(*t);
    }
  }
  return std::string(Trim(joined));
}

}  // namespace

std::string PythonFloatRepr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  std::string sign;
  if (!sci.empty() && sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  size_t e = sci.find('e');
  std::string mantissa = sci.substr(0, e);
  int exponent = std::stoi(sci.substr(e + 1));
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits += c;
  }
  if (exponent >= -4 && exponent < 16) {
    std::string out;
    if (exponent >= 0) {
      std::string int_part = digits.substr(0, std::min<size_t>(digits.size(), exponent + 1));
      while (int_part.size() < static_cast<size_t>(exponent + 1)) int_part += '0';
      std::string frac = digits.size() > static_cast<size_t>(exponent + 1)
                             ? digits.substr(exponent + 1)
                             : "0";
      out = int_part + "." + frac;
    } else {
      out = "0." + std::string(-exponent - 1, '0') + digits;
    }
    return sign + out;
  }
  std::string out = digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  return sign + out + exp_buf;
}

ChatTemplate ParseChatTemplate(std::string_view name) {
  if (name == "official" || name == "google-gemma-4-31B-it.jinja") return ChatTemplate::kOfficial;
  if (name == "interleaved" || name == "google-gemma-4-31B-it-interleaved.jinja") {
    return ChatTemplate::kInterleaved;
  }
  ThrowUsage("unknown chat template '" + std::string(name) + "'",
             "use --template official or --template interleaved");
}

namespace {

// Nesting depth of a JSON value, computed without recursion (the renderer itself recurses, so
// hostile input is refused before it could exhaust the stack).
size_t NestingDepth(const Json& root) {
  size_t max_depth = 0;
  std::vector<std::pair<const Json*, size_t>> stack = {{&root, 1}};
  while (!stack.empty()) {
    auto [node, depth] = stack.back();
    stack.pop_back();
    max_depth = std::max(max_depth, depth);
    if (node->is_structured()) {
      for (const auto& child : *node) stack.emplace_back(&child, depth + 1);
    }
  }
  return max_depth;
}

}  // namespace

// Longer than 150 lines on purpose: it follows the official Jinja template block by block, in
// the template's order, so that it can be checked against the template side by side (the
// template renders in tests/text compare byte for byte); the pieces it calls are named helpers.
std::string RenderChat(const Json& inputs, ChatTemplate tmpl) {
  if (!inputs.is_object()) Bad("the input must be a JSON object with 'messages'");
  constexpr size_t kMaxDepth = 128;
  if (NestingDepth(inputs) > kMaxDepth) {
    Bad("the input is nested more than " + std::to_string(kMaxDepth) + " levels deep");
  }
  const Json* messages_ptr = Get(inputs, "messages");
  if (messages_ptr == nullptr) Bad("'messages' is missing");
  const Json& messages = *messages_ptr;
  ValidateMessages(messages);
  const Json* tools = Get(inputs, "tools");
  if (tools != nullptr && !tools->is_null() && !tools->is_array()) Bad("'tools' must be a list");
  const bool thinking = Truthy(Get(inputs, "enable_thinking"));
  const bool add_generation_prompt = Truthy(Get(inputs, "add_generation_prompt"));
  std::string bos = "<bos>";
  if (const Json* b = Get(inputs, "bos_token"); b != nullptr && b->is_string()) bos = b->get<std::string>();

  std::string out = bos;
  std::string prev;  // ns.prev_message_type; "" = None
  size_t first = 0;  // loop_messages = messages[first:]
  const std::string role0 = Get(messages[0], "role")->get<std::string>();
  const bool system_first = role0 == "system" || role0 == "developer";
  if (thinking || Truthy(tools) || system_first) {
    out += "<|turn>system\n";
    if (thinking) {
      out += "<|think|>\n";
      prev = "think";
    }
    if (system_first) {
      out += SystemText(Get(messages[0], "content"));
      first = 1;
    }
    if (Truthy(tools)) {
      for (size_t i = 0; i < tools->size(); ++i) {
        out += "<|tool>" + FormatDeclaration((*tools)[i], i, tmpl) + "<tool|>";
      }
      prev = "tool";
    }
    out += "<turn|>\n";
  }

  std::vector<const Json*> loop;
  for (size_t i = first; i < messages.size(); ++i) loop.push_back(&messages[i]);
  int last_user = -1;
  for (size_t i = 0; i < loop.size(); ++i) {
    if (Get(*loop[i], "role")->get<std::string>() == "user") last_user = static_cast<int>(i);
  }

  for (size_t i = 0; i < loop.size(); ++i) {
    const Json& m = *loop[i];
    const std::string api_role = Get(m, "role")->get<std::string>();
    const std::string role = RoleName(m);
    const bool model = role == "model";
    const Json* calls = Get(m, "tool_calls");
    const Json* responses = Get(m, "tool_responses");
    const Json* content = Get(m, "content");

    if (tmpl == ChatTemplate::kInterleaved) {
      if (!(prev == "tool_response" && Truthy(calls))) out += "<|turn>" + role + "\n";
      prev.clear();
      if (Truthy(calls)) {
        const Json* rc = Get(m, "reasoning_content");
        if (Truthy(rc) && static_cast<int>(i) > last_user) {
          out += "<|channel>thought\n" + rc->get<std::string>() + "<channel|>";
        }
        ToolCalls(*calls, out);
        prev = "tool_call";
      }
      if (Truthy(responses)) {
        for (const Json& r : *responses) {
          const Json* name = Get(r, "name");
          const Json* resp = Get(r, "response");
          ToolResponseBlock(name ? PyStr(*name) : "unknown", resp ? *resp : Json(), out);
        }
        prev = "tool_response";
      }
      if (std::string media = Content(content, model, out); !media.empty()) prev = media;
      if (!(Truthy(responses) && !Truthy(content))) out += "<turn|>\n";
      continue;
    }

    // Official template.
    if (api_role == "tool") continue;  // consumed by the assistant message before it
    prev.clear();
    bool continuation = false;
    if (model) {
      for (size_t j = i; j-- > 0;) {
        const std::string r = Get(*loop[j], "role")->get<std::string>();
        if (r != "tool") {
          continuation = r == "assistant";
          break;
        }
      }
    }
    if (!continuation) out += "<|turn>" + role + "\n";

    const Json* thinking_text = Get(m, "reasoning");
    if (!Truthy(thinking_text)) thinking_text = Get(m, "reasoning_content");
    if (Truthy(thinking_text) && static_cast<int>(i) > last_user && Truthy(calls)) {
      out += "<|channel>thought\n" + thinking_text->get<std::string>() + "\n<channel|>";
    }
    if (Truthy(calls)) {
      ToolCalls(*calls, out);
      prev = "tool_call";
    }
    bool responded = false;
    if (Truthy(responses)) {
      for (const Json& r : *responses) {
        const Json* name = Get(r, "name");
        const Json* resp = Get(r, "response");
        ToolResponseBlock(name ? PyStr(*name) : "unknown", resp ? *resp : Json(), out);
        responded = true;
        prev = "tool_response";
      }
    } else if (Truthy(calls)) {
      for (size_t k = i + 1; k < loop.size(); ++k) {
        const Json& follow = *loop[k];
        if (Get(follow, "role")->get<std::string>() != "tool") break;
        // Name: the (last) call whose id equals tool_call_id (missing == missing), else the
        // tool message's own name; llama.cpp's "unknown" when neither exists (HF would fail).
        const Json* follow_name = Get(follow, "name");
        std::string name = follow_name != nullptr ? PyStr(*follow_name) : "unknown";
        const Json* want = Get(follow, "tool_call_id");
        for (const Json& tc : *calls) {
          const Json* id = Get(tc, "id");
          bool same = (id == nullptr || id->is_null())
                          ? (want == nullptr || want->is_null())
                          : (want != nullptr && *id == *want);
          if (same) name = Get(Get(tc, "function"), "name")->get<std::string>();
        }
        const Json* body = Get(follow, "content");
        if (body != nullptr && body->is_array()) {
          std::string joined;
          for (const Json& part : *body) {
            if (PyStr(Get(part, "type") ? *Get(part, "type") : Json()) == "text") {
              if (const Json* t = Get(part, "text"); t != nullptr) joined += PyStr(*t);
            }
          }
          ToolResponseBlock(name, Json(joined), out);
        } else {
          ToolResponseBlock(name, body != nullptr ? *body : Json(), out);
        }
        responded = true;
        prev = "tool_response";
      }
    }
    if (std::string media = Content(content, model, out); !media.empty()) prev = media;
    if (prev == "tool_call" && !responded) {
      out += "<|tool_response>";
    } else if (!(responded && !Truthy(content))) {
      out += "<turn|>\n";
    }
  }

  if (add_generation_prompt) {
    if (tmpl == ChatTemplate::kInterleaved) {
      if (prev != "tool_response") out += "<|turn>model\n";
      if (!thinking) out += "<|channel>thought\n<channel|>";
    } else if (prev != "tool_response" && prev != "tool_call") {
      out += "<|turn>model\n";
      if (!thinking) out += "<|channel>thought\n<channel|>";
    }
  }
  return out;
}

}  // namespace hearth::text
