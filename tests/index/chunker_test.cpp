// Chunks and tags per language, on small real snippets whose line ranges were checked by hand.
#include "index/chunker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace hearth::index {
namespace {

const Chunk* FindChunk(const ParsedFile& f, const std::string& symbol) {
  for (const Chunk& c : f.chunks) {
    if (c.symbol == symbol) return &c;
  }
  return nullptr;
}

const Tag* FindTag(const ParsedFile& f, const std::string& name, bool definition) {
  for (const Tag& t : f.tags) {
    if (t.name == name && t.definition == definition) return &t;
  }
  return nullptr;
}

std::string Dump(const ParsedFile& f) {
  std::string s;
  for (const Chunk& c : f.chunks)
    s += c.kind + " '" + c.symbol + "' " + std::to_string(c.start_line) + "-" +
         std::to_string(c.end_line) + "\n";
  for (const Tag& t : f.tags)
    s += std::string(t.definition ? "def " : "ref ") + t.kind + " " + t.name + " @" +
         std::to_string(t.line) + "\n";
  return s;
}

struct Expect {
  std::string symbol, kind;
  int start, end;
};

void CheckChunks(const ParsedFile& f, const std::vector<Expect>& want) {
  for (const Expect& e : want) {
    const Chunk* c = FindChunk(f, e.symbol);
    ASSERT_NE(c, nullptr) << "no chunk '" << e.symbol << "' in\n" << Dump(f);
    EXPECT_EQ(c->kind, e.kind) << e.symbol << "\n" << Dump(f);
    EXPECT_EQ(c->start_line, e.start) << e.symbol << "\n" << Dump(f);
    EXPECT_EQ(c->end_line, e.end) << e.symbol << "\n" << Dump(f);
  }
}

void CheckDef(const ParsedFile& f, const std::string& name, int line) {
  const Tag* t = FindTag(f, name, true);
  ASSERT_NE(t, nullptr) << "no definition of " << name << " in\n" << Dump(f);
  EXPECT_EQ(t->line, line) << name;
}

TEST(Chunker, AllGrammarsLoad) {
  EXPECT_EQ(GrammarLanguages().size(), 13u);
  for (const std::string& lang : GrammarLanguages()) EXPECT_TRUE(HasGrammar(lang)) << lang;
}

TEST(Chunker, C) {
  Chunker ch;
  ParsedFile f = ch.Parse("src/add.c",
                          "/* Adds two numbers. */\n"     // 1
                          "int add(int a, int b) {\n"     // 2
                          "  int s = a + b;\n"            // 3
                          "  if (s < 0) return 0;\n"      // 4
                          "  s += helper(s);\n"           // 5
                          "  return s;\n"                 // 6
                          "}\n"                           // 7
                          "\n"                            // 8
                          "struct point {\n"              // 9
                          "  int x;\n"                    // 10
                          "  int y;\n"                    // 11
                          "  int z;\n"                    // 12
                          "  int w;\n"                    // 13
                          "};\n");                        // 14
  EXPECT_EQ(f.language, "c");
  EXPECT_TRUE(f.parsed);
  CheckChunks(f, {{"add", "function", 1, 7}, {"point", "class", 9, 14}});
  CheckDef(f, "add", 2);
  CheckDef(f, "point", 9);
  ASSERT_NE(FindTag(f, "helper", false), nullptr) << Dump(f);
  EXPECT_EQ(FindTag(f, "helper", false)->line, 5);
}

TEST(Chunker, Cpp) {
  Chunker ch;
  ParsedFile f = ch.Parse("util.cc",
                          "namespace util {\n"                          // 1
                          "\n"                                          // 2
                          "class Buffer {\n"                            // 3
                          " public:\n"                                  // 4
                          "  explicit Buffer(int n) : size_(n) {}\n"    // 5
                          "  int size() const { return size_; }\n"      // 6
                          "\n"                                          // 7
                          " private:\n"                                 // 8
                          "  int size_;\n"                              // 9
                          "};\n"                                        // 10
                          "\n"                                          // 11
                          "template <typename T>\n"                     // 12
                          "T twice(T v) {\n"                            // 13
                          "  T r = v;\n"                                // 14
                          "  r += v;\n"                                 // 15
                          "  return r;\n"                               // 16
                          "}\n"                                         // 17
                          "\n"                                          // 18
                          "}  // namespace util\n");                    // 19
  EXPECT_EQ(f.language, "cpp");
  // The one-line "namespace util {" and the closing brace are tiny blocks merged into their
  // neighbours.
  const Chunk* twice = FindChunk(f, "twice");
  ASSERT_NE(twice, nullptr) << Dump(f);
  EXPECT_EQ(twice->start_line, 12);  // includes template<...>
  CheckDef(f, "Buffer", 3);
  CheckDef(f, "twice", 13);
}

TEST(Chunker, PythonFunctionAndSmallClass) {
  Chunker ch;
  ParsedFile f = ch.Parse("pkg/greet.py",
                          "@decorator\n"                     // 1
                          "def top(a, b):\n"                 // 2
                          "    x = a + b\n"                  // 3
                          "    y = x * 2\n"                  // 4
                          "    z = y - 1\n"                  // 5
                          "    return z\n"                   // 6
                          "\n"                               // 7
                          "\n"                               // 8
                          "class Greeter:\n"                 // 9
                          "    greeting = 'hi'\n"            // 10
                          "\n"                               // 11
                          "    def greet(self, name):\n"     // 12
                          "        msg = self.greeting\n"    // 13
                          "        msg += ' '\n"             // 14
                          "        msg += name\n"            // 15
                          "        return top(msg, 1)\n");   // 16
  EXPECT_EQ(f.language, "python");
  CheckChunks(f, {{"top", "function", 1, 6}, {"Greeter", "class", 9, 16}});
  CheckDef(f, "top", 2);
  CheckDef(f, "Greeter", 9);
  CheckDef(f, "greet", 12);
  ASSERT_NE(FindTag(f, "top", false), nullptr) << Dump(f);
}

TEST(Chunker, PythonBigClassGetsSkeletonAndMethodChunks) {
  std::string src = "class Big:\n    \"\"\"Doc.\"\"\"\n";  // lines 1-2
  int line = 2;
  std::vector<int> def_lines;
  for (int m = 0; m < 3; ++m) {
    src += "\n";
    ++line;
    src += "    def m" + std::to_string(m) + "(self):\n";
    def_lines.push_back(++line);
    for (int j = 0; j < 14; ++j) {
      src += "        v" + std::to_string(m) + "_" + std::to_string(j) + " = " +
             std::to_string(j) + "\n";
      ++line;
    }
  }
  ASSERT_EQ(line, 50);  // 2 + 3 * (blank + def + 14 body lines)
  Chunker ch;
  ParsedFile f = ch.Parse("big.py", src);
  const Chunk* sk = FindChunk(f, "Big");
  ASSERT_NE(sk, nullptr) << Dump(f);
  EXPECT_EQ(sk->kind, "skeleton");
  EXPECT_EQ(sk->start_line, 1);
  EXPECT_EQ(sk->end_line, 50);
  EXPECT_NE(sk->content.find("    def m1(self):\n        ...\n"), std::string::npos)
      << sk->content;
  EXPECT_EQ(sk->content.find("v1_5"), std::string::npos);  // bodies elided
  for (int m = 0; m < 3; ++m) {
    CheckChunks(f, {{"Big.m" + std::to_string(m), "method", def_lines[m], def_lines[m] + 14}});
  }
}

TEST(Chunker, LongBodyIsSplit) {
  std::string src = "def long():\n";
  for (int i = 0; i < 399; ++i) src += "    x" + std::to_string(i) + " = 1\n";
  Chunker ch;
  ParsedFile f = ch.Parse("long.py", src);
  std::vector<const Chunk*> parts;
  for (const Chunk& c : f.chunks)
    if (c.symbol == "long") parts.push_back(&c);
  ASSERT_EQ(parts.size(), 4u) << Dump(f);
  EXPECT_EQ(parts[0]->start_line, 1);
  EXPECT_EQ(parts[0]->end_line, 100);
  EXPECT_EQ(parts[1]->start_line, 101);
  EXPECT_EQ(parts[3]->end_line, 400);
}

TEST(Chunker, TinyNeighboursAreMerged) {
  Chunker ch;
  ParsedFile f = ch.Parse("small.py",
                          "def a():\n    return 1\n\n"
                          "def b():\n    return 2\n\n"
                          "def c():\n    return 3\n");
  ASSERT_EQ(f.chunks.size(), 1u) << Dump(f);
  EXPECT_EQ(f.chunks[0].symbol, "a, b, c");
  EXPECT_EQ(f.chunks[0].start_line, 1);
  EXPECT_EQ(f.chunks[0].end_line, 8);
}

TEST(Chunker, JavaScript) {
  Chunker ch;
  ParsedFile f = ch.Parse("lib/add.js",
                          "function add(a, b) {\n"     // 1
                          "  const s = a + b;\n"       // 2
                          "  if (s < 0) {\n"           // 3
                          "    return 0;\n"            // 4
                          "  }\n"                      // 5
                          "  return s;\n"              // 6
                          "}\n"                        // 7
                          "\n"                         // 8
                          "class Counter {\n"          // 9
                          "  constructor() {\n"        // 10
                          "    this.n = 0;\n"          // 11
                          "  }\n"                      // 12
                          "  inc() {\n"                // 13
                          "    this.n += add(1, 2);\n" // 14
                          "  }\n"                      // 15
                          "}\n");                      // 16
  EXPECT_EQ(f.language, "javascript");
  CheckChunks(f, {{"add", "function", 1, 7}, {"Counter", "class", 9, 16}});
  CheckDef(f, "add", 1);
  CheckDef(f, "Counter", 9);
  CheckDef(f, "inc", 13);
}

TEST(Chunker, TypeScript) {
  Chunker ch;
  ParsedFile f = ch.Parse("src/add.ts",
                          "export function add(a: number, b: number): number {\n"  // 1
                          "  const s = a + b;\n"                                   // 2
                          "  if (s < 0) {\n"                                       // 3
                          "    return 0;\n"                                        // 4
                          "  }\n"                                                  // 5
                          "  return s;\n"                                          // 6
                          "}\n"                                                    // 7
                          "\n"                                                     // 8
                          "interface Shape {\n"                                    // 9
                          "  area(): number;\n"                                    // 10
                          "  name: string;\n"                                      // 11
                          "  sides: number;\n"                                     // 12
                          "  color: string;\n"                                     // 13
                          "}\n");                                                  // 14
  EXPECT_EQ(f.language, "typescript");
  CheckChunks(f, {{"add", "function", 1, 7}, {"Shape", "class", 9, 14}});
  CheckDef(f, "add", 1);
  CheckDef(f, "Shape", 9);
}

TEST(Chunker, Tsx) {
  Chunker ch;
  ParsedFile f = ch.Parse("ui/Hello.tsx",
                          "function Hello(props: {name: string}) {\n"  // 1
                          "  const n = props.name;\n"                  // 2
                          "  return (\n"                               // 3
                          "    <div className=\"x\">\n"                // 4
                          "      {n}\n"                                // 5
                          "    </div>\n"                               // 6
                          "  );\n"                                     // 7
                          "}\n");                                      // 8
  EXPECT_EQ(f.language, "tsx");
  CheckChunks(f, {{"Hello", "function", 1, 8}});
  CheckDef(f, "Hello", 1);
}

TEST(Chunker, Go) {
  Chunker ch;
  ParsedFile f = ch.Parse("main.go",
                          "package main\n"              // 1
                          "\n"                          // 2
                          "// Add adds two ints.\n"     // 3
                          "func Add(a, b int) int {\n"  // 4
                          "\ts := a + b\n"              // 5
                          "\tif s < 0 {\n"              // 6
                          "\t\treturn 0\n"              // 7
                          "\t}\n"                       // 8
                          "\treturn s\n"                // 9
                          "}\n"                         // 10
                          "\n"                          // 11
                          "type Point struct {\n"       // 12
                          "\tX int\n"                   // 13
                          "\tY int\n"                   // 14
                          "\tZ int\n"                   // 15
                          "\tW int\n"                   // 16
                          "}\n");                       // 17
  EXPECT_EQ(f.language, "go");
  // "package main" is a one-line block, merged into Add's chunk.
  CheckChunks(f, {{"Add", "function", 1, 10}, {"Point", "class", 12, 17}});
  CheckDef(f, "Add", 4);
  CheckDef(f, "Point", 12);
}

TEST(Chunker, Rust) {
  Chunker ch;
  ParsedFile f = ch.Parse("src/lib.rs",
                          "/// Adds.\n"                        // 1
                          "fn add(a: i32, b: i32) -> i32 {\n"  // 2
                          "    let s = a + b;\n"               // 3
                          "    if s < 0 {\n"                   // 4
                          "        return 0;\n"                // 5
                          "    }\n"                            // 6
                          "    s\n"                            // 7
                          "}\n"                                // 8
                          "\n"                                 // 9
                          "struct Point {\n"                   // 10
                          "    x: i32,\n"                      // 11
                          "    y: i32,\n"                      // 12
                          "    z: i32,\n"                      // 13
                          "    w: i32,\n"                      // 14
                          "}\n");                              // 15
  EXPECT_EQ(f.language, "rust");
  CheckChunks(f, {{"add", "function", 1, 8}, {"Point", "class", 10, 15}});
  CheckDef(f, "add", 2);
  CheckDef(f, "Point", 10);
}

TEST(Chunker, Java) {
  Chunker ch;
  ParsedFile f = ch.Parse("Calc.java",
                          "public class Calc {\n"                   // 1
                          "    private int total;\n"                // 2
                          "\n"                                      // 3
                          "    public int add(int a, int b) {\n"    // 4
                          "        int s = a + b;\n"                // 5
                          "        total += s;\n"                   // 6
                          "        return s;\n"                     // 7
                          "    }\n"                                 // 8
                          "}\n");                                   // 9
  EXPECT_EQ(f.language, "java");
  CheckChunks(f, {{"Calc", "class", 1, 9}});
  CheckDef(f, "Calc", 1);
  CheckDef(f, "add", 4);
}

TEST(Chunker, Ruby) {
  Chunker ch;
  ParsedFile f = ch.Parse("lib/greeter.rb",
                          "class Greeter\n"               // 1
                          "  def initialize(name)\n"      // 2
                          "    @name = name\n"            // 3
                          "    @count = 0\n"              // 4
                          "    @other = 1\n"              // 5
                          "  end\n"                       // 6
                          "\n"                            // 7
                          "  def greet\n"                 // 8
                          "    \"Hello #{@name}\"\n"      // 9
                          "  end\n"                       // 10
                          "end\n"                         // 11
                          "\n"                            // 12
                          "def helper(x)\n"               // 13
                          "  y = x + 1\n"                 // 14
                          "  z = y * 2\n"                 // 15
                          "  w = z - 3\n"                 // 16
                          "  w\n"                         // 17
                          "end\n");                       // 18
  EXPECT_EQ(f.language, "ruby");
  CheckChunks(f, {{"Greeter", "class", 1, 11}, {"helper", "function", 13, 18}});
  CheckDef(f, "Greeter", 1);
  CheckDef(f, "greet", 8);
}

TEST(Chunker, Php) {
  Chunker ch;
  ParsedFile f = ch.Parse("add.php",
                          "<?php\n"                         // 1
                          "\n"                              // 2
                          "function add($a, $b) {\n"        // 3
                          "    $s = $a + $b;\n"             // 4
                          "    if ($s < 0) {\n"             // 5
                          "        return 0;\n"             // 6
                          "    }\n"                         // 7
                          "    return $s;\n"                // 8
                          "}\n");                           // 9
  EXPECT_EQ(f.language, "php");
  const Chunk* c = FindChunk(f, "add");
  ASSERT_NE(c, nullptr) << Dump(f);
  EXPECT_EQ(c->end_line, 9);
  CheckDef(f, "add", 3);
}

TEST(Chunker, CSharp) {
  Chunker ch;
  ParsedFile f = ch.Parse("Calc.cs",
                          "namespace Demo {\n"                          // 1
                          "    public class Calc {\n"                   // 2
                          "        public int Add(int a, int b) {\n"    // 3
                          "            int s = a + b;\n"                // 4
                          "            if (s < 0) return 0;\n"          // 5
                          "            return s;\n"                     // 6
                          "        }\n"                                 // 7
                          "    }\n"                                     // 8
                          "}\n");                                       // 9
  EXPECT_EQ(f.language, "c_sharp");
  bool found = false;
  for (const Chunk& c : f.chunks) found |= c.symbol.find("Calc") != std::string::npos;
  EXPECT_TRUE(found) << Dump(f);
  CheckDef(f, "Calc", 2);
  CheckDef(f, "Add", 3);
}

TEST(Chunker, Bash) {
  Chunker ch;
  ParsedFile f = ch.Parse("run",  // no extension: the #! line decides
                          "#!/usr/bin/env bash\n"      // 1
                          "greet() {\n"                // 2
                          "  local name=\"$1\"\n"      // 3
                          "  echo \"hello $name\"\n"   // 4
                          "  echo again\n"             // 5
                          "  return 0\n"               // 6
                          "}\n"                        // 7
                          "greet world\n");            // 8
  EXPECT_EQ(f.language, "bash");
  CheckDef(f, "greet", 2);
  const Tag* call = FindTag(f, "greet", false);
  ASSERT_NE(call, nullptr) << Dump(f);
  EXPECT_EQ(call->line, 8);
}

TEST(Chunker, TextFilesGetLineWindows) {
  std::string text;
  for (int i = 1; i <= 120; ++i) text += "line " + std::to_string(i) + "\n";
  Chunker ch;
  ParsedFile f = ch.Parse("notes.txt", text);
  EXPECT_FALSE(f.parsed);
  ASSERT_EQ(f.chunks.size(), 3u) << Dump(f);
  EXPECT_EQ(f.chunks[0].start_line, 1);
  EXPECT_EQ(f.chunks[0].end_line, kWindowLines);
  EXPECT_EQ(f.chunks[2].end_line, 120);
}

TEST(Chunker, BrokenCodeStillChunks) {
  Chunker ch;
  ParsedFile f = ch.Parse("bad.c", "int f( {\n  ((((\n}\n}}}}\n\"unterminated\n");
  EXPECT_FALSE(f.chunks.empty());
  ParsedFile empty = ch.Parse("empty.py", "");
  EXPECT_TRUE(empty.chunks.empty());
}

TEST(DetectLanguage, ExtensionsAndShebangs) {
  EXPECT_EQ(DetectLanguage("a/b.py", ""), "python");
  EXPECT_EQ(DetectLanguage("x.h", "int f(void);"), "c");
  EXPECT_EQ(DetectLanguage("x.h", "namespace a { class B; }"), "cpp");
  EXPECT_EQ(DetectLanguage("script", "#!/usr/bin/env python3 -u\n"), "python");
  EXPECT_EQ(DetectLanguage("script", "#!/bin/sh\n"), "bash");
  EXPECT_EQ(DetectLanguage("script", "#!/usr/bin/env -S node --flag\n"), "javascript");
  EXPECT_EQ(DetectLanguage("Makefile", ""), "make");
  EXPECT_EQ(DetectLanguage("README", "hello"), "");
  EXPECT_EQ(DetectLanguage("#!", "#!"), "");
}

// Qt Linguist translations (.ts) are XML; TypeScript keeps the extension otherwise.
TEST(DetectLanguage, QtTranslationTsIsXml) {
  EXPECT_EQ(DetectLanguage("i18n/app_de.ts", "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"),
            "xml");
  EXPECT_EQ(DetectLanguage("i18n/app_de.ts", "\xEF\xBB\xBF<?xml version=\"1.0\"?>"), "xml");
  EXPECT_EQ(DetectLanguage("i18n/app_de.ts", "\n<!DOCTYPE TS>\n<TS version=\"2.1\">"), "xml");
  EXPECT_EQ(DetectLanguage("i18n/app_de.ts", "<TS version=\"2.0\" language=\"de\">"), "xml");
  EXPECT_EQ(DetectLanguage("src/a.ts", "/// <reference path=\"x.d.ts\" />\nlet a = 1;\n"),
            "typescript");
  EXPECT_EQ(DetectLanguage("src/a.ts", "import { x } from './x';\n"), "typescript");
  EXPECT_EQ(DetectLanguage("src/a.ts", ""), "typescript");
  EXPECT_EQ(DetectLanguage("ui/a.tsx", "<?xml"), "tsx");  // only .ts is ambiguous
}

// The freecad outlier (issue 6): 985 Qt translation files parsed with the TypeScript grammar
// spent most of the index's CPU time in tree-sitter error recovery. A file of that shape must
// take the grammarless path (no parse at all) and still be covered by plain line windows.
TEST(Chunker, QtTranslationFileIsNotParsedAsTypeScript) {
  std::string ts =
      "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!DOCTYPE TS>\n"
      "<TS version=\"2.1\" language=\"de\" sourcelanguage=\"en\">\n<context>\n"
      "    <name>Dialog</name>\n";
  const int kMessages = 2000;
  for (int i = 0; i < kMessages; ++i) {
    ts += "    <message>\n        <location filename=\"../Dlg.ui\" line=\"" +
          std::to_string(i) + "\"/>\n        <source>Text &amp; more " + std::to_string(i) +
          "</source>\n        <translation>Text und mehr</translation>\n    </message>\n";
  }
  ts += "</context>\n</TS>\n";
  const int n_lines = 5 + 5 * kMessages + 2;
  Chunker ch;
  ParsedFile f = ch.Parse("src/Gui/Language/FreeCAD_de.ts", ts);
  EXPECT_EQ(f.language, "xml");
  EXPECT_FALSE(f.parsed);
  EXPECT_TRUE(f.tags.empty());
  ASSERT_FALSE(f.chunks.empty());
  // Windows tile the file: no gaps, no overlaps, none longer than a window plus a tiny tail.
  int next = 1;
  for (const Chunk& c : f.chunks) {
    EXPECT_EQ(c.kind, "text");
    EXPECT_EQ(c.start_line, next);
    EXPECT_LE(c.end_line - c.start_line + 1, kWindowLines + kTinyLines);
    next = c.end_line + 1;
  }
  EXPECT_EQ(next, n_lines + 1);
  EXPECT_EQ(static_cast<int>(f.chunks.size()), (n_lines + kWindowLines - 1) / kWindowLines);
}

}  // namespace
}  // namespace hearth::index
