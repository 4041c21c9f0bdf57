#include "engine/json_constraint.h"

#include <algorithm>
#include <bitset>
#include <utility>

#include "base/error.h"
#include "text/tokenizer.h"

namespace hearth::engine {
namespace {

using Json = nlohmann::json;
using C = JsonConstraint;

constexpr std::string_view kGemmaQuote = "<|\"|>";

[[noreturn]] void Unsupported(const std::string& what, const std::string& path) {
  throw Error(ErrorClass::kInvalidInput,
              "JSON schema " + what + " at " + path + " is not supported",
              "supported keywords: type, properties, required, additionalProperties, items, "
              "enum, const (plus annotations such as description)");
}

bool IsAnnotation(const std::string& key) {
  return key == "description" || key == "title" || key == "default" || key == "examples" ||
         key == "$schema" || key == "$id" || key == "$comment";
}

uint8_t TypeBit(const Json& t, const std::string& path) {
  if (!t.is_string()) Unsupported("'type' that is not a string", path);
  const std::string& s = t.get_ref<const std::string&>();
  if (s == "object") return C::kObject;
  if (s == "array") return C::kArray;
  if (s == "string") return C::kString;
  if (s == "number") return C::kNumber;
  if (s == "integer") return C::kInteger;
  if (s == "boolean") return C::kBoolean;
  if (s == "null") return C::kNull;
  Unsupported("type '" + s + "'", path);
}

// A Gemma key or string value cannot hold the characters that end it in the tool-call notation.
bool GemmaKeyChar(uint8_t c) {
  return c > 0x20 && c < 0x7F && c != ':' && c != '}' && c != '{' && c != ',' && c != '<' &&
         c != '"';
}

bool IsWs(uint8_t c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

const std::vector<std::string>& KeywordLiterals() {
  static const std::vector<std::string> kLiterals = {"true", "false", "null"};
  return kLiterals;
}

}  // namespace

const C::SchemaNode& JsonConstraint::node(int index) const {
  static const SchemaNode kAny;
  if (index < 0 || static_cast<size_t>(index) >= nodes_.size()) return kAny;
  return nodes_[static_cast<size_t>(index)];
}

int JsonConstraint::Compile(const Json& schema, const std::string& path) {
  const int index = static_cast<int>(nodes_.size());
  nodes_.emplace_back();
  SchemaNode n;
  if (schema.is_boolean()) {
    if (!schema.get<bool>()) Unsupported("'false' (matches nothing)", path);
    nodes_[static_cast<size_t>(index)] = n;
    return index;
  }
  if (!schema.is_object()) Unsupported("that is not an object", path);
  bool typed = false;
  bool object_keywords = false;
  for (const auto& [key, v] : schema.items()) {
    if (IsAnnotation(key)) continue;
    if (key == "type") {
      typed = true;
      n.types = 0;
      if (v.is_array()) {
        for (const Json& t : v) n.types |= TypeBit(t, path);
      } else {
        n.types = TypeBit(v, path);
      }
      if (n.types == 0) Unsupported("an empty 'type' list", path);
    } else if (key == "properties" || key == "required" || key == "additionalProperties" ||
               key == "items" || key == "enum" || key == "const") {
      // handled below, in a fixed order
    } else {
      Unsupported("keyword '" + key + "'", path);
    }
  }
  if (const auto it = schema.find("properties"); it != schema.end()) {
    object_keywords = true;
    if (!it->is_object()) Unsupported("'properties' that is not an object", path);
    for (const auto& [name, sub] : it->items()) {
      Property p;
      p.name = name;
      if (dialect_ == JsonDialect::kJson) {
        const std::string quoted = Json(name).dump();
        p.key = quoted.substr(1, quoted.size() - 2);
      } else {
        if (name.empty() || !std::all_of(name.begin(), name.end(), [](char ch) {
              return GemmaKeyChar(static_cast<uint8_t>(ch));
            })) {
          Unsupported("property name '" + name + "' (not writable in a tool call)", path);
        }
        p.key = name;
      }
      p.node = Compile(sub, path + ".properties." + name);
      n.properties.push_back(std::move(p));
    }
  }
  if (const auto it = schema.find("required"); it != schema.end()) {
    object_keywords = true;
    if (!it->is_array()) Unsupported("'required' that is not an array", path);
    for (const Json& r : *it) {
      if (!r.is_string()) Unsupported("'required' entry that is not a string", path);
      const std::string& name = r.get_ref<const std::string&>();
      auto p = std::find_if(n.properties.begin(), n.properties.end(),
                            [&](const Property& x) { return x.name == name; });
      if (p == n.properties.end()) {
        Property extra;
        extra.name = name;
        const std::string quoted = Json(name).dump();
        extra.key = dialect_ == JsonDialect::kJson ? quoted.substr(1, quoted.size() - 2) : name;
        n.properties.push_back(std::move(extra));
        p = n.properties.end() - 1;
      }
      const size_t i = static_cast<size_t>(p - n.properties.begin());
      if (i < 64) n.required |= uint64_t{1} << i;
    }
  }
  if (n.properties.size() > 64) Unsupported("object with more than 64 properties", path);
  if (const auto it = schema.find("additionalProperties"); it != schema.end()) {
    object_keywords = true;
    if (it->is_boolean()) {
      n.additional = it->get<bool>();
    } else {
      n.additional_node = Compile(*it, path + ".additionalProperties");
    }
  }
  bool array_keywords = false;
  if (const auto it = schema.find("items"); it != schema.end()) {
    array_keywords = true;
    if (!it->is_object() && !it->is_boolean()) Unsupported("'items' as a list (tuples)", path);
    n.items = Compile(*it, path + ".items");
  }
  auto add_literal = [&](const Json& v) {
    if (v.is_object() || v.is_array()) Unsupported("'enum'/'const' with an object or array", path);
    if (v.is_string() && dialect_ == JsonDialect::kGemmaToolArgs) {
      const std::string& s = v.get_ref<const std::string&>();
      if (s.find('<') != std::string::npos) Unsupported("enum string containing '<'", path);
      n.literals.push_back(std::string(kGemmaQuote) + s + std::string(kGemmaQuote));
    } else {
      n.literals.push_back(v.dump());
    }
  };
  if (const auto it = schema.find("enum"); it != schema.end()) {
    if (!it->is_array() || it->empty()) Unsupported("'enum' that is not a non-empty array", path);
    n.has_enum = true;
    for (const Json& v : *it) add_literal(v);
  }
  if (const auto it = schema.find("const"); it != schema.end()) {
    if (n.has_enum) Unsupported("'enum' together with 'const'", path);
    n.has_enum = true;
    add_literal(*it);
  }
  if (!typed) {
    if (object_keywords && !array_keywords) n.types = kObject;
    if (array_keywords && !object_keywords) n.types = kArray;
  }
  // "integer" alone: no fraction or exponent; "number" covers integers too.
  nodes_[static_cast<size_t>(index)] = std::move(n);
  return index;
}

JsonConstraint JsonConstraint::AnyObject(JsonDialect dialect) {
  JsonConstraint c;
  c.dialect_ = dialect;
  SchemaNode n;
  n.types = kObject;
  c.nodes_.push_back(n);
  c.alternatives_.push_back({"", 0});
  return c;
}

JsonConstraint JsonConstraint::ForSchema(const Json& schema, JsonDialect dialect) {
  JsonConstraint c;
  c.dialect_ = dialect;
  const int root = c.Compile(schema, "schema");
  c.alternatives_.push_back({"", root});
  return c;
}

JsonConstraint JsonConstraint::ForToolCall(const std::vector<std::pair<std::string, Json>>& tools) {
  JsonConstraint c;
  c.dialect_ = JsonDialect::kGemmaToolArgs;
  for (const auto& [name, params] : tools) {
    int root = -1;
    if (!params.is_null()) {
      const size_t mark = c.nodes_.size();
      try {
        root = c.Compile(params, name);
      } catch (const Error&) {
        c.nodes_.resize(mark);  // a schema we cannot enforce: any arguments object
        root = -1;
      }
    }
    if (root < 0) {
      root = static_cast<int>(c.nodes_.size());
      c.nodes_.emplace_back();
    }
    c.nodes_[static_cast<size_t>(root)].types = kObject;  // arguments are always an object
    c.nodes_[static_cast<size_t>(root)].has_enum = false;
    c.nodes_[static_cast<size_t>(root)].literals.clear();
    c.alternatives_.push_back({name, root});
  }
  return c;
}

JsonAcceptor::JsonAcceptor(std::shared_ptr<const JsonConstraint> constraint)
    : c_(std::move(constraint)) {
  Frame f;
  const auto& alts = c_->alternatives();
  if (alts.size() == 1 && alts[0].prefix.empty()) {
    f.kind = Kind::kValue;
    f.node = alts[0].root;
  } else {
    f.kind = Kind::kPrefix;
  }
  stack_.push_back(std::move(f));
}

bool JsonAcceptor::Push(std::string_view text) {
  for (char ch : text) {
    if (!Step(static_cast<uint8_t>(ch))) return false;
  }
  return true;
}

bool JsonAcceptor::Push(uint8_t byte) { return Step(byte); }

bool JsonAcceptor::CanAccept(std::string_view text) const {
  JsonAcceptor copy = *this;
  return copy.Push(text);
}

bool JsonAcceptor::NumberTerminal(uint8_t state) {
  return state == 2 || state == 3 || state == 5 || state == 8;
}

const std::vector<std::string>& JsonAcceptor::Literals(const Frame& f) const {
  const auto& n = c_->node(f.node);
  return n.has_enum ? n.literals : KeywordLiterals();
}

bool JsonAcceptor::complete() const {
  if (done_) return true;
  if (stack_.size() != 1) return false;
  const Frame& f = stack_.back();
  if (f.kind == Kind::kNumber) return NumberTerminal(f.state);
  if (f.kind == Kind::kLiteral) {
    const auto& lits = Literals(f);
    return std::find(lits.begin(), lits.end(), f.text) != lits.end();
  }
  return false;
}

int JsonAcceptor::KeyCost(const JsonConstraint::Property& p) const {
  // "key": (JSON) or key: (Gemma); commas are counted by the callers.
  const int quotes = c_->dialect() == JsonDialect::kJson ? 2 : 0;
  return static_cast<int>(p.key.size()) + quotes + 1;
}

int JsonAcceptor::RequiredCost(int node, uint64_t seen, int* count) const {
  const auto& n = c_->node(node);
  int cost = 0;
  int k = 0;
  for (size_t i = 0; i < n.properties.size(); ++i) {
    const uint64_t bit = uint64_t{1} << i;
    if ((n.required & bit) && !(seen & bit)) {
      cost += KeyCost(n.properties[i]) + MinValue(n.properties[i].node);
      ++k;
    }
  }
  if (count != nullptr) *count = k;
  return cost;
}

int JsonAcceptor::MinValue(int node) const {
  const auto& n = c_->node(node);
  int best = 1 << 20;
  if (n.has_enum) {
    for (const auto& l : n.literals) best = std::min(best, static_cast<int>(l.size()));
    return best;
  }
  const bool gemma = c_->dialect() == JsonDialect::kGemmaToolArgs;
  if (n.types & (C::kNumber | C::kInteger)) best = std::min(best, 1);
  if (n.types & C::kArray) best = std::min(best, 2);
  if (n.types & C::kString) best = std::min(best, gemma ? 10 : 2);
  if (n.types & (C::kBoolean | C::kNull)) best = std::min(best, 4);
  if (n.types & C::kObject) {
    int k = 0;
    const int keys = RequiredCost(node, 0, &k);
    best = std::min(best, 2 + keys + std::max(k - 1, 0));
  }
  return best;
}

int JsonAcceptor::MinBytesToComplete() const {
  if (complete()) return 0;
  if (stack_.empty()) return 0;
  const bool gemma = c_->dialect() == JsonDialect::kGemmaToolArgs;
  int cost = 0;
  // Enclosing frames: what closes them once the value inside is done.
  for (size_t i = 0; i + 1 < stack_.size(); ++i) {
    const Frame& f = stack_[i];
    if (f.kind == Kind::kObject) {
      int k = 0;
      cost += RequiredCost(f.node, f.seen, &k) + k + 1;  // ",key:value" each, then '}'
    }
    if (f.kind == Kind::kArray) cost += 1;
  }
  const Frame& f = stack_.back();
  switch (f.kind) {
    case Kind::kValue:
      return cost + MinValue(f.node);
    case Kind::kPrefix: {
      int best = 1 << 20;
      for (const auto& alt : c_->alternatives()) {
        if (StartsWith(alt.prefix, f.text)) {
          best = std::min(best,
                          static_cast<int>(alt.prefix.size() - f.text.size()) + MinValue(alt.root));
        }
      }
      return cost + best;
    }
    case Kind::kString: {
      if (gemma) {
        const int marker = static_cast<int>(kGemmaQuote.size());
        if (f.state == 0) return cost + marker - static_cast<int>(f.text.size()) + marker;
        if (f.state == 2) return cost + marker - static_cast<int>(f.text.size());
        return cost + f.utf8_left + marker;
      }
      int extra = f.utf8_left + 1;
      if (f.esc == 1) extra += f.want_low ? 5 : 1;
      if (f.esc >= 2) {
        extra += 6 - f.esc;
        // The digits so far make a high surrogate: a low one must follow (\uDC00).
        const bool high = (f.esc == 4 && f.code >= 0xD8 && f.code <= 0xDB) ||
                          (f.esc == 5 && f.code >= 0xD80 && f.code <= 0xDBF);
        if (!f.want_low && high) extra += 6;
      }
      if (f.esc == 0 && f.want_low) extra += 6;
      return cost + extra;
    }
    case Kind::kNumber:
      return cost + (NumberTerminal(f.state) ? 0 : 1);
    case Kind::kLiteral: {
      int best = 1 << 20;
      for (const auto& l : Literals(f)) {
        if (StartsWith(l, f.text))
          best = std::min(best, static_cast<int>(l.size() - f.text.size()));
      }
      return cost + best;
    }
    case Kind::kObject: {
      const auto& n = c_->node(f.node);
      int k = 0;
      const int keys = RequiredCost(f.node, f.seen, &k);
      if (f.state == 0) return cost + keys + std::max(k - 1, 0) + 1;
      if (f.state == 4) return cost + keys + k + 1;
      if (f.state == 5 && k > 0) return cost + keys + (k - 1) + 1;
      if (f.state == 5) {
        // A key must follow the comma: the cheapest one that may.
        int best = n.additional ? (gemma ? 2 : 3) + MinValue(n.additional_node) : 1 << 20;
        for (size_t i = 0; i < n.properties.size(); ++i) {
          if (!(f.seen & (uint64_t{1} << i))) {
            best = std::min(best, KeyCost(n.properties[i]) + MinValue(n.properties[i].node));
          }
        }
        return cost + best + 1;
      }
      // In a key (state 1) or after it (state 2): finish it, then its value, then the rest.
      const int closing_quote = gemma || f.state == 2 ? 0 : 1;
      int best = 1 << 20;
      for (size_t i = 0; i < n.properties.size(); ++i) {
        const auto& p = n.properties[i];
        const uint64_t bit = uint64_t{1} << i;
        if (f.seen & bit) continue;
        if (f.state == 2 ? f.current != static_cast<int>(i) : !StartsWith(p.key, f.text)) continue;
        const int left = f.state == 2 ? 0 : static_cast<int>(p.key.size() - f.text.size());
        int k2 = 0;
        const int after = RequiredCost(f.node, f.seen | bit, &k2);
        best = std::min(best, left + closing_quote + 1 + MinValue(p.node) + after + k2 + 1);
      }
      const bool extra_key = f.state == 2 ? f.current < 0 : (!gemma || !f.text.empty());
      if (n.additional && extra_key) {
        best = std::min(best, closing_quote + 1 + MinValue(n.additional_node) + keys + k + 1);
      }
      return cost + best;
    }
    case Kind::kArray:
      return cost + 1;
  }
  return cost;
}

bool JsonAcceptor::Whitespace(uint8_t) {
  if (c_->dialect() != JsonDialect::kJson || ws_run_ >= kMaxWhitespaceRun) return false;
  ++ws_run_;
  return true;
}

bool JsonAcceptor::RequiredDone(const Frame& obj) const {
  return (c_->node(obj.node).required & ~obj.seen) == 0;
}

bool JsonAcceptor::MoreKeysPossible(const Frame& obj) const {
  const auto& n = c_->node(obj.node);
  if (n.additional) return true;
  for (size_t i = 0; i < n.properties.size(); ++i) {
    if ((obj.seen & (uint64_t{1} << i)) == 0) return true;
  }
  return false;
}

bool JsonAcceptor::KeyPrefixOk(const Frame& obj, const std::string& key, bool exact,
                               int* prop) const {
  const auto& n = c_->node(obj.node);
  bool seen_equal = false;
  for (size_t i = 0; i < n.properties.size(); ++i) {
    const std::string& k = n.properties[i].key;
    const bool seen = (obj.seen & (uint64_t{1} << i)) != 0;
    if (exact ? k == key : StartsWith(k, key)) {
      if (!seen) {
        if (prop != nullptr) *prop = static_cast<int>(i);
        return true;
      }
      if (k == key) seen_equal = true;
    }
  }
  if (!n.additional) return false;
  // An extra key; a declared one must not come twice (nor be written with escapes, which would
  // get past its schema).
  if (!n.properties.empty() && key.find('\\') != std::string::npos) return false;
  if (exact && seen_equal) return false;
  if (prop != nullptr) *prop = -1;
  return true;
}

bool JsonAcceptor::StringByte(Frame& f, uint8_t c, bool* closed) {
  *closed = false;
  if (f.utf8_left > 0) {
    if (c < f.utf8_lo || c > f.utf8_hi) return false;
    --f.utf8_left;
    f.utf8_lo = 0x80;
    f.utf8_hi = 0xBF;
    return true;
  }
  const bool gemma = c_->dialect() == JsonDialect::kGemmaToolArgs;
  if (!gemma && f.esc == 1) {
    if (f.want_low && c != 'u') return false;
    if (c == 'u') {
      f.esc = 2;
      f.code = 0;
      return true;
    }
    if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
        c == 't') {
      f.esc = 0;
      return true;
    }
    return false;
  }
  if (!gemma && f.esc >= 2) {
    int v;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      v = c - 'A' + 10;
    } else {
      return false;
    }
    f.code = static_cast<uint16_t>(f.code * 16 + v);
    if (++f.esc < 6) {
      // Reject early what cannot become a valid (pair of) escape(s).
      if (f.esc == 4) {
        const unsigned hi = f.code;  // the first two hex digits
        const bool low = hi >= 0xDC && hi <= 0xDF;
        if (f.want_low != low) return false;
      }
      return true;
    }
    f.esc = 0;
    if (f.want_low) {
      f.want_low = false;
    } else if (f.code >= 0xD800 && f.code <= 0xDBFF) {
      f.want_low = true;
    }
    return true;
  }
  if (f.want_low) {
    if (c != '\\') return false;
    f.esc = 1;
    return true;
  }
  if (gemma) {
    if (c == '<') {
      *closed = true;  // the start of the closing <|"|> (checked by the caller)
      return true;
    }
    if (c < 0x20 && c != '\n' && c != '\t') return false;
  } else {
    if (c == '"') {
      *closed = true;
      return true;
    }
    if (c == '\\') {
      f.esc = 1;
      return true;
    }
    if (c < 0x20) return false;
  }
  if (c < 0x80) return true;
  if (c >= 0xC2 && c <= 0xDF) {
    f.utf8_left = 1;
  } else if (c == 0xE0) {
    f.utf8_left = 2, f.utf8_lo = 0xA0;
  } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
    f.utf8_left = 2;
  } else if (c == 0xED) {
    f.utf8_left = 2, f.utf8_hi = 0x9F;
  } else if (c == 0xF0) {
    f.utf8_left = 3, f.utf8_lo = 0x90;
  } else if (c >= 0xF1 && c <= 0xF3) {
    f.utf8_left = 3;
  } else if (c == 0xF4) {
    f.utf8_left = 3, f.utf8_hi = 0x8F;
  } else {
    return false;
  }
  return true;
}

bool JsonAcceptor::StartValue(uint8_t c, int node) {
  const auto& n = c_->node(node);
  const bool gemma = c_->dialect() == JsonDialect::kGemmaToolArgs;
  Frame f;
  f.node = node;
  if (n.has_enum) {
    const std::string first(1, static_cast<char>(c));
    if (std::none_of(n.literals.begin(), n.literals.end(),
                     [&](const std::string& l) { return StartsWith(l, first); })) {
      return false;
    }
    f.kind = Kind::kLiteral;
    f.text = first;
  } else if (c == '{' && (n.types & C::kObject)) {
    if (stack_.size() >= static_cast<size_t>(kMaxDepth)) return false;
    f.kind = Kind::kObject;
  } else if (c == '[' && (n.types & C::kArray)) {
    if (stack_.size() >= static_cast<size_t>(kMaxDepth)) return false;
    f.kind = Kind::kArray;
  } else if (!gemma && c == '"' && (n.types & C::kString)) {
    f.kind = Kind::kString;
  } else if (gemma && c == '<' && (n.types & C::kString)) {
    f.kind = Kind::kString;
    f.state = 0;  // reading the opening <|"|>
    f.text = "<";
  } else if ((c == '-' || (c >= '0' && c <= '9')) && (n.types & (C::kNumber | C::kInteger))) {
    f.kind = Kind::kNumber;
    f.state = 0;
    stack_.push_back(std::move(f));
    return Step(c);
  } else if ((c == 't' || c == 'f') && (n.types & C::kBoolean)) {
    f.kind = Kind::kLiteral;
    f.text = std::string(1, static_cast<char>(c));
  } else if (c == 'n' && (n.types & C::kNull)) {
    f.kind = Kind::kLiteral;
    f.text = "n";
  } else {
    return false;
  }
  stack_.push_back(std::move(f));
  return true;
}

// A number, byte by byte: states 0 start, 1 after '-', 2 after a leading 0, 3 in the integer
// part, 4/5 after '.' / in the fraction, 6 after 'e', 7 after its sign, 8 in the exponent.
bool JsonAcceptor::StepNumber(Frame& f, uint8_t c) {
  const auto& n = c_->node(f.node);
  const bool fraction_ok = (n.types & C::kNumber) != 0;
  const bool digit = c >= '0' && c <= '9';
  int next = -1;
  switch (f.state) {
    case 0:
      next = c == '-' ? 1 : c == '0' ? 2 : digit ? 3 : -1;
      break;
    case 1:
      next = c == '0' ? 2 : digit ? 3 : -1;
      break;
    case 2:
    case 3:
      if (f.state == 3 && digit) next = 3;
      if (fraction_ok && c == '.') next = 4;
      if (fraction_ok && (c == 'e' || c == 'E')) next = 6;
      break;
    case 4:
    case 5:
      if (digit) next = 5;
      if (f.state == 5 && (c == 'e' || c == 'E')) next = 6;
      break;
    case 6:
      next = (c == '+' || c == '-') ? 7 : digit ? 8 : -1;
      break;
    case 7:
    case 8:
      next = digit ? 8 : -1;
      break;
  }
  if (next >= 0 && f.text.size() < static_cast<size_t>(kMaxNumberLength)) {
    f.state = static_cast<uint8_t>(next);
    f.text.push_back(static_cast<char>(c));
    return true;
  }
  if (!NumberTerminal(f.state)) return false;
  // The number ended before this byte: the enclosing value goes on with it.
  stack_.pop_back();
  if (stack_.empty()) {
    done_ = true;
    return false;
  }
  return Step(c);
}

// An object: states 0 after '{', 1 in a key, 2 after a JSON key, 4 after a value, 5 after ','.
bool JsonAcceptor::StepObject(Frame& f, uint8_t c, bool ws, bool gemma) {
  const auto& n = c_->node(f.node);
  auto close = [&] {
    if (!RequiredDone(f)) return false;
    stack_.pop_back();
    if (stack_.empty()) done_ = true;
    return true;
  };
  auto start_value = [&] {
    const int prop = f.current;
    if (prop >= 0) f.seen |= uint64_t{1} << prop;
    const int child = prop >= 0 ? n.properties[static_cast<size_t>(prop)].node : n.additional_node;
    f.state = 4;
    f.text.clear();
    Frame v;
    v.kind = Kind::kValue;
    v.node = child;
    stack_.push_back(std::move(v));
    return true;
  };
  switch (f.state) {
    case 0:  // after '{'
    case 5:  // after ','
      if (ws) return Whitespace(c);
      if (c == '}' && f.state == 0) return close();
      if (!MoreKeysPossible(f)) return false;
      if (!gemma) {
        if (c != '"') return false;
        f.state = 1;
        f.text.clear();
        f.esc = 0;
        f.want_low = false;
        return true;
      }
      if (!GemmaKeyChar(c)) return false;
      f.text = std::string(1, static_cast<char>(c));
      f.state = 1;
      return KeyPrefixOk(f, f.text, false, nullptr);
    case 1:  // in a key
      if (gemma) {
        if (c == ':') {
          if (!KeyPrefixOk(f, f.text, true, &f.current)) return false;
          return start_value();
        }
        if (!GemmaKeyChar(c)) return false;
        f.text.push_back(static_cast<char>(c));
        return KeyPrefixOk(f, f.text, false, nullptr);
      } else {
        bool closed = false;
        if (!StringByte(f, c, &closed)) return false;
        if (closed) {
          if (!KeyPrefixOk(f, f.text, true, &f.current)) return false;
          f.state = 2;
          return true;
        }
        f.text.push_back(static_cast<char>(c));
        return KeyPrefixOk(f, f.text, false, nullptr);
      }
    case 2:  // after a JSON key
      if (ws) return Whitespace(c);
      if (c != ':') return false;
      return start_value();
    case 4:  // after a value
      if (ws) return Whitespace(c);
      if (c == ',') {
        if (!MoreKeysPossible(f)) return false;
        f.state = 5;
        f.current = -1;
        return true;
      }
      if (c == '}') return close();
      return false;
  }
  return false;
}

bool JsonAcceptor::Step(uint8_t c) {
  if (done_ || stack_.empty()) return false;
  const bool ws = IsWs(c);
  const bool gemma = c_->dialect() == JsonDialect::kGemmaToolArgs;
  Frame& f = stack_.back();
  // Whitespace runs count only between tokens of the JSON structure, not inside strings.
  if (!ws || f.kind == Kind::kString) ws_run_ = 0;
  switch (f.kind) {
    case Kind::kPrefix: {
      const std::string grown = f.text + static_cast<char>(c);
      for (const auto& alt : c_->alternatives()) {
        if (StartsWith(alt.prefix, grown)) {
          f.text = grown;
          return true;
        }
      }
      for (const auto& alt : c_->alternatives()) {
        if (alt.prefix == f.text) {
          const int root = alt.root;
          stack_.pop_back();
          if (c != '{') return false;  // the arguments follow the name directly
          return StartValue(c, root);
        }
      }
      return false;
    }
    case Kind::kValue: {
      if (ws) return Whitespace(c);
      const int node = f.node;
      stack_.pop_back();
      if (!StartValue(c, node)) return false;
      return true;
    }
    case Kind::kString: {
      if (gemma && f.state != 1) {
        // Matching an opening (state 0) or closing (state 2) <|"|> marker.
        f.text.push_back(static_cast<char>(c));
        if (!StartsWith(kGemmaQuote, f.text)) return false;
        if (f.text.size() == kGemmaQuote.size()) {
          if (f.state == 0) {
            f.state = 1;
            f.text.clear();
          } else {
            stack_.pop_back();
            if (stack_.empty()) done_ = true;
          }
        }
        return true;
      }
      bool closed = false;
      if (!StringByte(f, c, &closed)) return false;
      if (closed) {
        if (gemma) {
          f.state = 2;
          f.text = "<";
          return true;
        }
        stack_.pop_back();
        if (stack_.empty()) done_ = true;
      }
      return true;
    }
    case Kind::kNumber:
      return StepNumber(f, c);
    case Kind::kLiteral: {
      const auto& lits = Literals(f);
      const std::string grown = f.text + static_cast<char>(c);
      if (std::any_of(lits.begin(), lits.end(),
                      [&](const std::string& l) { return StartsWith(l, grown); })) {
        f.text = grown;
        return true;
      }
      if (std::find(lits.begin(), lits.end(), f.text) == lits.end()) return false;
      stack_.pop_back();
      if (stack_.empty()) {
        done_ = true;
        return false;
      }
      return Step(c);
    }
    case Kind::kObject:
      return StepObject(f, c, ws, gemma);
    case Kind::kArray: {
      const int items = c_->node(f.node).items;
      auto push_item = [&] {
        f.state = 1;
        Frame v;
        v.kind = Kind::kValue;
        v.node = items;
        stack_.push_back(std::move(v));
      };
      if (ws) return Whitespace(c);
      if (c == ']') {
        stack_.pop_back();
        if (stack_.empty()) done_ = true;
        return true;
      }
      if (f.state == 0) {
        push_item();
        return Step(c);
      }
      if (c != ',') return false;
      push_item();
      return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------- constrained decoding

ConstraintVocabulary::ConstraintVocabulary(const text::Tokenizer& tok) {
  const int32_t n = tok.size();
  offsets_.reserve(static_cast<size_t>(n) + 1);
  kind_.reserve(static_cast<size_t>(n));
  for (int32_t id = 0; id < n; ++id) {
    offsets_.push_back(static_cast<uint32_t>(bytes_.size()));
    const text::TokenType type = tok.Type(id);
    uint8_t k = kText;
    if (tok.IsEndOfGeneration(id)) {
      k = kEog;
    } else if (type == text::TokenType::kNormal || type == text::TokenType::kByte) {
      const std::string_view piece = tok.Piece(id);
      if (piece.empty()) k = kForbidden;  // no progress: could repeat forever
      bytes_.append(piece);
    } else if (type == text::TokenType::kUserDefined && tok.Piece(id) == "<|\"|>") {
      k = kGemmaQuote;  // the string marker of Gemma's tool-call notation
      bytes_.append(tok.Piece(id));
    } else {
      k = kForbidden;  // control and other special tokens never appear in constrained output
    }
    kind_.push_back(k);
  }
  offsets_.push_back(static_cast<uint32_t>(bytes_.size()));
  lead_.resize(static_cast<size_t>(n));
  for (int32_t id = 0; id < n; ++id) {
    const std::string_view t = Text(id);
    uint32_t v = 0;
    if (!t.empty()) v = static_cast<uint8_t>(t[0]);
    if (t.size() > 1) v |= (static_cast<uint32_t>(static_cast<uint8_t>(t[1])) << 8) | (1u << 16);
    lead_[static_cast<size_t>(id)] = v;
  }
}

// The sampler's filter: tries a token's text on a scratch copy of the acceptor.
class ConstrainedDecoder::Filter final : public TokenFilter {
 public:
  Filter(const ConstraintVocabulary& vocabulary, const JsonAcceptor& acceptor, JsonDialect dialect,
         int64_t* checks)
      : vocabulary_(vocabulary),
        acceptor_(acceptor),
        scratch_(acceptor),
        dialect_(dialect),
        checks_(checks) {}

  bool Allowed(int id) override {
    if (id < 0 || static_cast<size_t>(id) >= vocabulary_.size()) return false;
    ++*checks_;
    switch (vocabulary_.kind(id)) {
      case ConstraintVocabulary::kEog:
        return acceptor_.complete();
      case ConstraintVocabulary::kForbidden:
        return false;
      case ConstraintVocabulary::kGemmaQuote:
        if (dialect_ != JsonDialect::kGemmaToolArgs) return false;
        break;
      default:
        break;
    }
    scratch_ = acceptor_;
    if (!scratch_.Push(vocabulary_.Text(id))) return false;
    // Only tokens after which the value can still be finished in the tokens left (each token
    // adds at least one byte): near the limit this steers to a close.
    return budget < 0 || scratch_.MinBytesToComplete() <= budget;
  }

  bool QuickReject(int id) override {
    if (id < 0 || static_cast<size_t>(id) >= vocabulary_.size()) return true;
    const ConstraintVocabulary::Kind kind = vocabulary_.kind(id);
    if (kind == ConstraintVocabulary::kForbidden) return true;
    if (kind == ConstraintVocabulary::kEog) return !acceptor_.complete();
    if (!first_ready_) {
      // Which bytes may come next: 256 one-byte tries, then one lookup per token.
      for (int b = 0; b < 256; ++b) {
        scratch_ = acceptor_;
        first_ok_[static_cast<size_t>(b)] = scratch_.Push(static_cast<uint8_t>(b));
      }
      first_ready_ = true;
      rows_ready_.reset();
    }
    const uint32_t lead = vocabulary_.lead(id);
    const auto b0 = static_cast<uint8_t>(lead);
    if (!first_ok_[b0]) return true;
    if ((lead >> 16) == 0) return false;
    if (!rows_ready_[b0]) {
      // And which byte pairs starting with b0 (computed for the first bytes that occur).
      JsonAcceptor after_b0 = acceptor_;
      after_b0.Push(b0);
      for (int b = 0; b < 256; ++b) {
        scratch_ = after_b0;
        pair_ok_[b0 * 256u + static_cast<unsigned>(b)] = scratch_.Push(static_cast<uint8_t>(b));
      }
      rows_ready_[b0] = true;
    }
    return !pair_ok_[b0 * 256u + ((lead >> 8) & 0xFF)];
  }

  // Call after the acceptor moved on.
  void NewStep() { first_ready_ = false; }
  int budget = -1;  // >= 0: tokens left after this one

 private:
  const ConstraintVocabulary& vocabulary_;
  const JsonAcceptor& acceptor_;
  JsonAcceptor scratch_;
  JsonDialect dialect_;
  int64_t* checks_;
  std::bitset<256> first_ok_;
  std::bitset<256> rows_ready_;
  std::bitset<65536> pair_ok_;
  bool first_ready_ = false;
};

ConstrainedDecoder::ConstrainedDecoder(std::shared_ptr<const JsonConstraint> constraint,
                                       const ConstraintVocabulary& vocabulary, int64_t* checks)
    : vocabulary_(vocabulary), acceptor_(constraint) {
  filter_ = std::make_unique<Filter>(vocabulary, acceptor_, constraint->dialect(), checks);
}

ConstrainedDecoder::~ConstrainedDecoder() = default;

int ConstrainedDecoder::Sample(Sampler& sampler, std::span<const float> logits, int tokens_left) {
  filter_->budget = tokens_left - 1;
  filter_->NewStep();
  int token = sampler.Sample(logits, filter_.get());
  if (token < 0 && filter_->budget >= 0) {
    filter_->budget = -1;  // too few tokens for any complete value: at least stay valid
    token = sampler.Sample(logits, filter_.get());
  }
  return token;
}

void ConstrainedDecoder::Accept(int token) {
  if (!acceptor_.Push(vocabulary_.Text(token))) {
    throw Error(ErrorClass::kInternal, "constrained decoding sampled a token it does not accept");
  }
}

}  // namespace hearth::engine
