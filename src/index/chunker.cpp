#include "index/chunker.h"

#include <tree_sitter/api.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <set>
#include <unordered_map>

extern "C" {
const TSLanguage* tree_sitter_c();
const TSLanguage* tree_sitter_cpp();
const TSLanguage* tree_sitter_python();
const TSLanguage* tree_sitter_javascript();
const TSLanguage* tree_sitter_typescript();
const TSLanguage* tree_sitter_tsx();
const TSLanguage* tree_sitter_go();
const TSLanguage* tree_sitter_rust();
const TSLanguage* tree_sitter_java();
const TSLanguage* tree_sitter_ruby();
const TSLanguage* tree_sitter_php();
const TSLanguage* tree_sitter_c_sharp();
const TSLanguage* tree_sitter_bash();
}

namespace hearth::index {

extern const char kTagsQuery_c[];
extern const char kTagsQuery_cpp[];
extern const char kTagsQuery_python[];
extern const char kTagsQuery_javascript[];
extern const char kTagsQuery_typescript[];
extern const char kTagsQuery_go[];
extern const char kTagsQuery_rust[];
extern const char kTagsQuery_java[];
extern const char kTagsQuery_ruby[];
extern const char kTagsQuery_php[];
extern const char kTagsQuery_c_sharp[];

namespace {

// References the C and C++ tags queries lack (they list definitions only), macros, and Bash,
// whose package ships no tags query. Without references the repo map has no edges.
constexpr const char* kExtraC = R"q(
(call_expression function: (identifier) @name) @reference.call
(call_expression function: (field_expression field: (field_identifier) @name)) @reference.call
((type_identifier) @name) @reference.type
(preproc_function_def name: (identifier) @name) @definition.macro
(preproc_def name: (identifier) @name) @definition.macro
)q";
constexpr const char* kExtraCpp = R"q(
(call_expression function: (identifier) @name) @reference.call
(call_expression function: (field_expression field: (field_identifier) @name)) @reference.call
(call_expression function: (qualified_identifier name: (identifier) @name)) @reference.call
((type_identifier) @name) @reference.type
(preproc_function_def name: (identifier) @name) @definition.macro
(preproc_def name: (identifier) @name) @definition.macro
)q";
constexpr const char* kBashTags = R"q(
(function_definition name: (word) @name) @definition.function
(command name: (command_name (word) @name)) @reference.call
)q";

struct LangSpec {
  const char* id;
  const TSLanguage* (*grammar)();
  std::vector<std::string> tags;             // query sources, tried together then one by one
  std::set<std::string> functions;           // leaf definitions: one chunk each
  std::set<std::string> classes;             // skeleton + member chunks (whole when small)
  std::set<std::string> wrappers;            // nodes whose start a definition inherits
};

const std::vector<LangSpec>& Specs() {
  static const std::vector<LangSpec> specs = {
      {"c", tree_sitter_c, {kTagsQuery_c, kExtraC},
       {"function_definition", "preproc_function_def"},
       {"struct_specifier", "union_specifier", "enum_specifier"}, {"type_definition"}},
      {"cpp", tree_sitter_cpp, {kTagsQuery_cpp, kExtraCpp},
       {"function_definition", "preproc_function_def"},
       {"class_specifier", "struct_specifier", "union_specifier", "enum_specifier"},
       {"template_declaration", "type_definition"}},
      {"python", tree_sitter_python, {kTagsQuery_python},
       {"function_definition"}, {"class_definition"}, {"decorated_definition"}},
      {"javascript", tree_sitter_javascript, {kTagsQuery_javascript},
       {"function_declaration", "generator_function_declaration", "method_definition"},
       {"class_declaration", "class"}, {"export_statement"}},
      {"typescript", tree_sitter_typescript, {kTagsQuery_javascript, kTagsQuery_typescript},
       {"function_declaration", "generator_function_declaration", "method_definition",
        "function_signature", "method_signature", "abstract_method_signature"},
       {"class_declaration", "abstract_class_declaration", "interface_declaration",
        "enum_declaration", "internal_module"},
       {"export_statement"}},
      {"tsx", tree_sitter_tsx, {kTagsQuery_javascript, kTagsQuery_typescript},
       {"function_declaration", "generator_function_declaration", "method_definition",
        "function_signature", "method_signature", "abstract_method_signature"},
       {"class_declaration", "abstract_class_declaration", "interface_declaration",
        "enum_declaration", "internal_module"},
       {"export_statement"}},
      {"go", tree_sitter_go, {kTagsQuery_go},
       {"function_declaration", "method_declaration"}, {"type_declaration"}, {}},
      {"rust", tree_sitter_rust, {kTagsQuery_rust},
       {"function_item", "function_signature_item", "macro_definition"},
       {"impl_item", "trait_item", "struct_item", "enum_item", "union_item", "mod_item"}, {}},
      {"java", tree_sitter_java, {kTagsQuery_java},
       {"method_declaration", "constructor_declaration", "compact_constructor_declaration"},
       {"class_declaration", "interface_declaration", "enum_declaration", "record_declaration",
        "annotation_type_declaration"},
       {}},
      {"ruby", tree_sitter_ruby, {kTagsQuery_ruby},
       {"method", "singleton_method"}, {"class", "module", "singleton_class"}, {}},
      {"php", tree_sitter_php, {kTagsQuery_php},
       {"function_definition", "method_declaration"},
       {"class_declaration", "interface_declaration", "trait_declaration", "enum_declaration"},
       {}},
      {"c_sharp", tree_sitter_c_sharp, {kTagsQuery_c_sharp},
       {"method_declaration", "constructor_declaration", "destructor_declaration",
        "operator_declaration", "local_function_statement"},
       {"class_declaration", "struct_declaration", "interface_declaration", "enum_declaration",
        "record_declaration"},
       {}},
      {"bash", tree_sitter_bash, {kBashTags}, {"function_definition"}, {}, {}},
  };
  return specs;
}

const LangSpec* FindSpec(std::string_view id) {
  for (const auto& s : Specs()) {
    if (id == s.id) return &s;
  }
  return nullptr;
}

// Compiled tags queries, one per language, built on first use and shared by all threads
// (TSQuery is immutable once built).
struct CompiledQueries {
  std::vector<TSQuery*> queries;
};

const CompiledQueries& QueriesFor(const LangSpec& spec) {
  static std::mutex mu;
  // Never destroyed: the queries live as long as the process (and stay reachable for LSan).
  static auto* cache = new std::unordered_map<std::string, CompiledQueries>();
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache->find(spec.id);
  if (it != cache->end()) return it->second;
  CompiledQueries cq;
  const TSLanguage* lang = spec.grammar();
  auto compile = [&](const std::string& src) -> TSQuery* {
    uint32_t err_offset = 0;
    TSQueryError err = TSQueryErrorNone;
    TSQuery* q = ts_query_new(lang, src.data(), static_cast<uint32_t>(src.size()), &err_offset,
                              &err);
    return err == TSQueryErrorNone ? q : nullptr;
  };
  for (const std::string& src : spec.tags) {
    if (TSQuery* q = compile(src)) {
      cq.queries.push_back(q);
      continue;
    }
    // A pattern of an inherited query may name a node the grammar lacks: keep the patterns that
    // compile, one top-level s-expression at a time.
    size_t i = 0;
    int depth = 0;
    size_t start = std::string::npos;
    bool in_string = false;
    for (; i < src.size(); ++i) {
      char c = src[i];
      if (in_string) {
        if (c == '\\') ++i;
        else if (c == '"') in_string = false;
        continue;
      }
      if (c == ';') {
        while (i < src.size() && src[i] != '\n') ++i;
        continue;
      }
      if (c == '"') in_string = true;
      if ((c == '(' || c == '[') && depth++ == 0 && start == std::string::npos) start = i;
      if (c == ')' || c == ']') {
        if (--depth == 0) {
          // Include trailing captures/quantifiers up to the end of the line.
          size_t end = src.find('\n', i);
          if (end == std::string::npos) end = src.size();
          std::string_view tail(src.data() + i + 1, end - i - 1);
          if (tail.find_first_of("([") == std::string_view::npos) {
            if (TSQuery* q = compile(src.substr(start, end - start))) cq.queries.push_back(q);
            start = std::string::npos;
            i = end;
          }
        }
      }
    }
  }
  return cache->emplace(spec.id, std::move(cq)).first->second;
}

int Row(TSPoint p) { return static_cast<int>(p.row); }

std::string_view NodeText(TSNode n, std::string_view src) {
  uint32_t s = ts_node_start_byte(n), e = ts_node_end_byte(n);
  if (s > src.size() || e > src.size() || e < s) return {};
  return src.substr(s, e - s);
}

// The name a definition node declares: its `name` field, or for C/C++ declarators the identifier
// at the bottom of the declarator chain.
std::string DefinitionName(TSNode node, std::string_view src) {
  TSNode name = ts_node_child_by_field_name(node, "name", 4);
  if (!ts_node_is_null(name)) return std::string(NodeText(name, src));
  TSNode decl = ts_node_child_by_field_name(node, "declarator", 10);
  for (int guard = 0; !ts_node_is_null(decl) && guard < 16; ++guard) {
    std::string_view type = ts_node_type(decl);
    if (type == "identifier" || type == "field_identifier" || type == "qualified_identifier" ||
        type == "destructor_name" || type == "operator_name" || type == "type_identifier") {
      return std::string(NodeText(decl, src));
    }
    TSNode next = ts_node_child_by_field_name(decl, "declarator", 10);
    if (ts_node_is_null(next)) next = ts_node_named_child(decl, 0);
    decl = next;
  }
  // Go's type_declaration holds type_spec children with the names.
  uint32_t n = ts_node_named_child_count(node);
  for (uint32_t i = 0; i < n && i < 4; ++i) {
    TSNode c = ts_node_named_child(node, i);
    TSNode nm = ts_node_child_by_field_name(c, "name", 4);
    if (!ts_node_is_null(nm)) return std::string(NodeText(nm, src));
  }
  return {};
}

struct Def {
  int start, end;  // 0-based rows, inclusive
  std::string kind, symbol;
  std::vector<std::pair<int, int>> members;  // for classes: member function ranges
  bool whole_class = false;
};

struct Collector {
  const LangSpec& spec;
  std::string_view src;
  std::vector<Def> defs;

  // Start row of a definition including the comments right above it and its wrapper
  // (decorators, template<...>, export).
  int ExtendedStart(TSNode node) {
    TSNode top = node;
    TSNode parent = ts_node_parent(top);
    while (!ts_node_is_null(parent) && spec.wrappers.count(ts_node_type(parent)) &&
           Row(ts_node_start_point(parent)) >= Row(ts_node_start_point(top)) - 3) {
      top = parent;
      parent = ts_node_parent(top);
    }
    int start = Row(ts_node_start_point(top));
    for (TSNode prev = ts_node_prev_named_sibling(top); !ts_node_is_null(prev);
         prev = ts_node_prev_named_sibling(prev)) {
      std::string_view type = ts_node_type(prev);
      if (type.find("comment") == std::string_view::npos) break;
      if (Row(ts_node_end_point(prev)) < start - 1) break;
      start = Row(ts_node_start_point(prev));
    }
    return start;
  }

  void Visit(TSNode node, int class_index, int depth) {
    if (depth > 200) return;  // deeply nested input: the rest goes into line windows
    uint32_t n = ts_node_named_child_count(node);
    for (uint32_t i = 0; i < n; ++i) {
      TSNode child = ts_node_named_child(node, i);
      const char* type = ts_node_type(child);
      int s = Row(ts_node_start_point(child));
      int e = Row(ts_node_end_point(child));
      if (ts_node_end_point(child).column == 0 && e > s) --e;
      if (spec.functions.count(type)) {
        if (e == s && class_index < 0 && std::strstr(type, "signature")) {
          // one-line prototypes outside classes stay in the surrounding block
        }
        Def d{ExtendedStart(child), e, class_index >= 0 ? "method" : "function",
              DefinitionName(child, src), {}, false};
        if (class_index >= 0) {
          defs[class_index].members.push_back({d.start, d.end});
          if (!defs[class_index].symbol.empty() && !d.symbol.empty())
            d.symbol = defs[class_index].symbol + "." + d.symbol;
        }
        defs.push_back(std::move(d));
        continue;  // nested functions stay inside their parent's chunk
      }
      if (spec.classes.count(type)) {
        // A forward declaration or a bare type use (`struct foo *p`) is not a definition.
        bool has_body = false;
        uint32_t cn = ts_node_child_count(child);
        for (uint32_t k = 0; k < cn; ++k) {
          std::string_view ct = ts_node_type(ts_node_child(child, k));
          if (ct.find("body") != std::string_view::npos || ct == "field_declaration_list" ||
              ct == "enumerator_list" || ct == "declaration_list" || ct == "type_spec" ||
              ct == "type_alias" || ct == "class_body" || ct == "enum_body" ||
              ct == "interface_body" || ct == "body_statement" || ct == "object_type") {
            has_body = true;
          }
        }
        if (!has_body && e - s < 2) {
          Visit(child, class_index, depth + 1);
          continue;
        }
        Def d{ExtendedStart(child), e, "class", DefinitionName(child, src), {}, false};
        if (class_index >= 0 && !defs[class_index].symbol.empty() && !d.symbol.empty()) {
          d.symbol = defs[class_index].symbol + "." + d.symbol;
          defs[class_index].members.push_back({d.start, d.end});
        }
        defs.push_back(std::move(d));
        int me = static_cast<int>(defs.size()) - 1;
        Visit(child, me, depth + 1);
        continue;
      }
      if (e > s) Visit(child, class_index, depth + 1);
    }
  }
};

std::vector<std::string_view> SplitLines(std::string_view content) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < content.size()) {
    size_t nl = content.find('\n', pos);
    if (nl == std::string_view::npos) nl = content.size();
    std::string_view line = content.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    pos = nl + 1;
  }
  return lines;
}

bool Blank(std::string_view line) {
  return line.find_first_not_of(" \t\r\f\v") == std::string_view::npos;
}

std::string JoinLines(const std::vector<std::string_view>& lines, int start, int end) {
  std::string out;
  for (int i = start; i <= end && i < static_cast<int>(lines.size()); ++i) {
    out.append(lines[i]);
    out.push_back('\n');
  }
  return out;
}

std::string Trimmed(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r");
  std::string out(s.substr(b, e - b + 1));
  if (out.size() > 200) out.resize(200);
  return out;
}

// Adds chunk(s) for rows [start, end] of `lines`, splitting bodies longer than kMaxChunkLines.
void AddChunk(std::vector<Chunk>& out, const std::vector<std::string_view>& lines, int start,
              int end, const std::string& kind, const std::string& symbol) {
  while (start <= end && Blank(lines[start])) ++start;
  while (end >= start && Blank(lines[end])) --end;
  if (start > end) return;
  if (end - start + 1 <= kMaxChunkLines) {
    out.push_back({start + 1, end + 1, kind, symbol, JoinLines(lines, start, end)});
    return;
  }
  for (int s = start; s <= end; s += kSplitLines) {
    int e = std::min(end, s + kSplitLines - 1);
    if (end - e < kTinyLines) e = end;  // no tiny tail
    out.push_back({s + 1, e + 1, kind, symbol, JoinLines(lines, s, e)});
    if (e == end) break;
  }
}

// Plain line windows over rows [start, end].
void AddWindows(std::vector<Chunk>& out, const std::vector<std::string_view>& lines, int start,
                int end, const std::string& kind) {
  for (int s = start; s <= end; s += kWindowLines) {
    int e = std::min(end, s + kWindowLines - 1);
    if (end - e < kTinyLines) e = end;
    AddChunk(out, lines, s, e, kind, "");
    if (e == end) break;
  }
}

// Merges runs of adjacent small chunks (not skeletons) into one, up to kMergeLines.
std::vector<Chunk> MergeTiny(std::vector<Chunk> chunks) {
  std::vector<Chunk> out;
  for (Chunk& c : chunks) {
    int len = c.end_line - c.start_line + 1;
    if (!out.empty()) {
      Chunk& last = out.back();
      int last_len = last.end_line - last.start_line + 1;
      bool mergeable = c.kind != "skeleton" && last.kind != "skeleton" &&
                       (len < kTinyLines || last_len < kTinyLines) &&
                       c.start_line > last.end_line &&
                       c.end_line - last.start_line + 1 <= kMergeLines;
      if (mergeable) {
        last.content += c.content;
        last.end_line = c.end_line;
        if (!c.symbol.empty()) last.symbol += (last.symbol.empty() ? "" : ", ") + c.symbol;
        if (last.kind != c.kind) last.kind = (last_len >= len) ? last.kind : c.kind;
        continue;
      }
    }
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace

std::vector<std::string> GrammarLanguages() {
  std::vector<std::string> out;
  for (const auto& s : Specs()) out.push_back(s.id);
  return out;
}

bool HasGrammar(std::string_view language) { return FindSpec(language) != nullptr; }

struct Chunker::Impl {
  TSParser* parser = ts_parser_new();
  TSQueryCursor* cursor = ts_query_cursor_new();
  ~Impl() {
    ts_query_cursor_delete(cursor);
    ts_parser_delete(parser);
  }
};

Chunker::Chunker() : impl_(std::make_unique<Impl>()) {}
Chunker::~Chunker() = default;

ParsedFile Chunker::Parse(std::string_view path, std::string_view content) {
  ParsedFile out;
  out.language = DetectLanguage(path, content.substr(0, std::min<size_t>(content.size(), 4096)));
  std::vector<std::string_view> lines = SplitLines(content);
  const int n_lines = static_cast<int>(lines.size());
  if (n_lines == 0) return out;

  const LangSpec* spec = FindSpec(out.language);
  TSTree* tree = nullptr;
  if (spec != nullptr && ts_parser_set_language(impl_->parser, spec->grammar())) {
    tree = ts_parser_parse_string(impl_->parser, nullptr, content.data(),
                                  static_cast<uint32_t>(content.size()));
  }
  if (tree == nullptr) {
    AddWindows(out.chunks, lines, 0, n_lines - 1, "text");
    out.chunks = MergeTiny(std::move(out.chunks));
    return out;
  }
  out.parsed = true;
  TSNode root = ts_tree_root_node(tree);

  // Tags: definitions and references.
  const CompiledQueries& cq = QueriesFor(*spec);
  for (TSQuery* q : cq.queries) {
    ts_query_cursor_exec(impl_->cursor, q, root);
    TSQueryMatch m;
    while (ts_query_cursor_next_match(impl_->cursor, &m)) {
      TSNode name_node{};
      bool have_name = false;
      std::string_view role;
      for (uint16_t i = 0; i < m.capture_count; ++i) {
        uint32_t len = 0;
        const char* cname = ts_query_capture_name_for_id(q, m.captures[i].index, &len);
        std::string_view capture(cname, len);
        if (capture == "name") {
          name_node = m.captures[i].node;
          have_name = true;
        } else if (capture.rfind("definition.", 0) == 0 || capture.rfind("reference.", 0) == 0) {
          role = capture;
        }
      }
      if (!have_name || role.empty()) continue;
      std::string_view name = NodeText(name_node, content);
      if (name.empty() || name.size() > 200) continue;
      Tag t;
      t.name = std::string(name);
      t.definition = role[0] == 'd';
      t.kind = std::string(role.substr(role.find('.') + 1));
      t.line = Row(ts_node_start_point(name_node)) + 1;
      if (t.line >= 1 && t.line <= n_lines) t.text = Trimmed(lines[t.line - 1]);
      out.tags.push_back(std::move(t));
    }
  }

  // Definitions -> chunks.
  Collector col{*spec, content, {}};
  col.Visit(root, -1, 0);
  ts_tree_delete(tree);
  std::vector<Def>& defs = col.defs;

  // Small classes are one chunk; big ones get a skeleton and their members get chunks.
  std::vector<char> covered(n_lines, 0);
  std::vector<Chunk> chunks;
  std::vector<bool> skip(defs.size(), false);
  for (size_t i = 0; i < defs.size(); ++i) {
    Def& d = defs[i];
    d.start = std::clamp(d.start, 0, n_lines - 1);
    d.end = std::clamp(d.end, d.start, n_lines - 1);
    if (skip[i]) continue;
    if (d.kind == "class" && d.end - d.start + 1 <= kMergeLines) {
      // Whole class in one chunk: its members need no chunks of their own.
      for (size_t j = i + 1; j < defs.size() && defs[j].start <= d.end; ++j) skip[j] = true;
      d.whole_class = true;
    }
  }
  for (size_t i = 0; i < defs.size(); ++i) {
    if (skip[i]) continue;
    const Def& d = defs[i];
    bool inside_chunk = false;  // members of an already-chunked function (Python nested defs)
    for (int r = d.start; r <= d.end && !inside_chunk; ++r) inside_chunk = covered[r] == 2;
    if (inside_chunk && d.kind != "class") continue;
    if (d.kind == "class" && !d.whole_class) {
      // Skeleton: the class text with each member's body cut to its first line.
      std::string text;
      std::vector<std::pair<int, int>> members = d.members;
      std::sort(members.begin(), members.end());
      int r = d.start;
      for (const auto& [ms, me] : members) {
        if (ms < r) continue;
        for (; r < ms; ++r) {
          text.append(lines[r]);
          text.push_back('\n');
        }
        // Member signature: up to the first line that opens the body.
        int sig_end = ms;
        while (sig_end < me && sig_end - ms < 4 &&
               lines[sig_end].find_first_of("{:") == std::string_view::npos)
          ++sig_end;
        for (int k = ms; k <= sig_end; ++k) {
          text.append(lines[k]);
          text.push_back('\n');
        }
        if (me > sig_end) {
          size_t indent = lines[ms].find_first_not_of(" \t");
          text.append(indent == std::string_view::npos ? 0 : indent, ' ');
          text.append("    ...\n");
        }
        r = me + 1;
      }
      for (; r <= d.end; ++r) {
        text.append(lines[r]);
        text.push_back('\n');
      }
      // Cap a skeleton at kMaxChunkLines lines of text.
      size_t pos = 0;
      int count = 0;
      while (pos != std::string::npos && count < kMaxChunkLines) {
        pos = text.find('\n', pos);
        if (pos != std::string::npos) ++pos;
        ++count;
      }
      if (pos != std::string::npos && pos < text.size()) text.resize(pos);
      chunks.push_back({d.start + 1, d.end + 1, "skeleton", d.symbol, std::move(text)});
      for (int k = d.start; k <= d.end; ++k) covered[k] = std::max<char>(covered[k], 1);
      continue;
    }
    AddChunk(chunks, lines, d.start, d.end, d.kind, d.symbol);
    for (int k = d.start; k <= d.end; ++k) covered[k] = 2;
  }
  // The rest (includes, globals, top-level statements) in line windows.
  int r = 0;
  while (r < n_lines) {
    if (covered[r]) {
      ++r;
      continue;
    }
    int s = r;
    while (r < n_lines && !covered[r]) ++r;
    AddWindows(chunks, lines, s, r - 1, "block");
  }
  // Skeletons overlap their members; order by start line, skeleton before its members.
  std::stable_sort(chunks.begin(), chunks.end(), [](const Chunk& a, const Chunk& b) {
    return a.start_line < b.start_line;
  });
  out.chunks = MergeTiny(std::move(chunks));
  return out;
}

}  // namespace hearth::index
