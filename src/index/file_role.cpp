#include "index/file_role.h"

#include <algorithm>
#include <cctype>
#include <string>

namespace hearth::index {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool EndsWith(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}
bool OneOf(std::string_view s, std::initializer_list<std::string_view> set) {
  return std::find(set.begin(), set.end(), s) != set.end();
}

bool IsCodeLanguage(std::string_view lang) {
  return OneOf(lang,
               {"c",    "cpp",  "python", "javascript", "typescript", "tsx",    "go",    "rust",
                "java", "ruby", "php",    "c_sharp",    "bash",       "kotlin", "scala", "perl",
                "lua",  "objc", "swift",  "tcl",        "asm",        "lisp",   "vim"});
}

// Folder names that hold tests, by wide convention (xUnit, pytest, Go, Perl's t/, RSpec...).
bool IsTestDir(std::string_view d) {
  return OneOf(d, {"test", "tests", "testing", "t", "spec", "specs", "__tests__", "testsuite",
                   "testsuites", "unittest", "unittests", "unit_tests", "regress", "regression",
                   "testcases", "test_data", "testdata", "fixtures", "conformance"});
}
// Folders of test inputs and expected outputs.
bool IsTestDataDir(std::string_view d) {
  return OneOf(d, {"testdata", "test_data", "fixtures", "expected", "results", "golden", "data",
                   "samples", "corpus", "input", "output", "snapshots"});
}
bool IsDocDir(std::string_view d) {
  return OneOf(d, {"doc", "docs", "documentation", "man", "manual", "manuals", "man1", "man3",
                   "man5", "man8", "examples", "example", "demo", "demos", "tutorial", "sample"});
}
bool IsVendorDir(std::string_view d) {
  return OneOf(d, {"vendor", "vendored", "third_party", "thirdparty", "third-party", "3rdparty",
                   "external", "extern", "deps", "node_modules", "bundled", "_vendor"});
}

// File names that are tests: test_x.py, x_test.py, x_test.go, x.test.js, x.spec.ts, x_spec.rb,
// XTest.java, XTests.cs, TestX.java.
bool IsTestFile(std::string_view stem) {
  const std::string l = Lower(stem);
  if (StartsWith(l, "test_") || EndsWith(l, "_test") || EndsWith(l, "_tests") ||
      EndsWith(l, ".test") || EndsWith(l, ".spec") || EndsWith(l, "_spec") || l == "test" ||
      l == "tests" || l == "conftest") {
    return true;
  }
  // CamelCase: FooTest, FooTests, TestFoo (upper case after "Test").
  if (EndsWith(stem, "Test") || EndsWith(stem, "Tests") || EndsWith(stem, "TestCase")) {
    return true;
  }
  if (StartsWith(stem, "Test") && stem.size() > 4 &&
      std::isupper(static_cast<unsigned char>(stem[4]))) {
    return true;
  }
  return false;
}

bool IsDocFile(std::string_view base, std::string_view ext, std::string_view language) {
  if (OneOf(language, {"markdown", "rst", "html"})) {
    return true;
  }
  const std::string l = Lower(base);
  for (std::string_view name :
       {"readme", "news", "changelog", "changes", "history", "authors", "copying", "license",
        "install", "todo", "faq", "thanks", "contributing", "notice", "bugs", "release"}) {
    if (StartsWith(l, name)) {
      return true;
    }
  }
  // Man pages (foo.1 .. foo.9, foo.3ssl), texinfo, POD, AsciiDoc, plain text.
  if (ext.size() >= 1 && ext[0] >= '1' && ext[0] <= '9' && ext.size() <= 4) {
    return true;
  }
  return OneOf(ext, {"texi", "texinfo", "pod", "adoc", "asciidoc", "txt", "man", "sgml", "xml",
                     "dox", "tex"}) &&
         language != "xml";
}

bool IsBuildFile(std::string_view base, std::string_view ext, std::string_view language) {
  const std::string l = Lower(base);
  if (OneOf(l, {"makefile",        "gnumakefile",  "cmakelists.txt", "configure",
                "configure.ac",    "configure.in", "meson.build",    "meson_options.txt",
                "setup.py",        "setup.cfg",    "pyproject.toml", "build.gradle",
                "settings.gradle", "pom.xml",      "build.xml",      "sconstruct",
                "sconscript",      "build",        "workspace",      "cargo.toml",
                "package.json",    "go.mod",       "gemfile",        "rakefile",
                "composer.json",   "tox.ini",      "build.sh",       "autogen.sh",
                "bootstrap",       "config.guess", "config.sub",     "install-sh",
                "ltmain.sh",       "depcomp",      "missing",        "compile",
                "mkinstalldirs",   "libtool"})) {
    return true;
  }
  if (StartsWith(l, "makefile") || StartsWith(l, "configure")) {
    return true;
  }
  return OneOf(ext, {"mk", "cmake", "am", "m4", "ac", "gradle", "bzl", "vcxproj", "sln", "pro",
                     "pri", "spec", "ninja"}) ||
         OneOf(language, {"cmake", "make"});
}

}  // namespace

std::string_view RoleName(FileRole role) {
  switch (role) {
    case FileRole::kSource:
      return "source";
    case FileRole::kHeader:
      return "header";
    case FileRole::kTest:
      return "test";
    case FileRole::kTestData:
      return "test data";
    case FileRole::kDocs:
      return "docs";
    case FileRole::kBuild:
      return "build";
    case FileRole::kVendored:
      return "vendored";
    case FileRole::kData:
      return "data";
  }
  return "source";
}

FileRole DetectRole(std::string_view path, std::string_view language, std::string_view head) {
  const size_t slash = path.rfind('/');
  const std::string_view base = slash == std::string_view::npos ? path : path.substr(slash + 1);
  const size_t dot = base.rfind('.');
  const std::string_view stem =
      dot == std::string_view::npos || dot == 0 ? base : base.substr(0, dot);
  const std::string ext =
      dot == std::string_view::npos || dot == 0 ? "" : Lower(base.substr(dot + 1));
  bool in_test = false, in_test_data = false, in_doc = false, in_vendor = false;
  // Folders, outermost first; an ".in" template counts as what it generates.
  size_t at = 0;
  while (slash != std::string_view::npos && at < slash) {
    size_t next = path.find('/', at);
    if (next == std::string_view::npos || next > slash) {
      next = slash;
    }
    const std::string dir = Lower(path.substr(at, next - at));
    if (IsTestDir(dir)) {
      in_test = true;
    }
    if (in_test && IsTestDataDir(dir)) {
      in_test_data = true;
    }
    if (dir == "testdata" || dir == "test_data" || dir == "fixtures") {
      in_test_data = true;
    }
    if (IsDocDir(dir)) {
      in_doc = true;
    }
    if (IsVendorDir(dir)) {
      in_vendor = true;
    }
    at = next + 1;
  }
  const bool code = IsCodeLanguage(language);
  if (in_vendor) {
    return FileRole::kVendored;
  }
  // Generated sources that escaped the indexer's skip (it reads only the first 300 bytes).
  if (!head.empty()) {
    const std::string h = Lower(head.substr(0, std::min<size_t>(head.size(), 1024)));
    for (std::string_view marker : {"generated by", "do not edit", "automatically generated",
                                    "autogenerated", "auto-generated", "@generated"}) {
      if (h.find(marker) != std::string::npos) {
        return FileRole::kVendored;
      }
    }
  }
  if (IsBuildFile(base, ext, language)) {
    return FileRole::kBuild;
  }
  if (in_test_data || (in_test && !code)) {
    return FileRole::kTestData;
  }
  if (ext == "out" || ext == "expected" || ext == "exp" || ext == "golden" || ext == "ref" ||
      ext == "snap") {
    return FileRole::kTestData;
  }
  if (in_test || IsTestFile(stem)) {
    return FileRole::kTest;
  }
  if (in_doc || IsDocFile(base, ext, language)) {
    return FileRole::kDocs;
  }
  if (!code) {
    return FileRole::kData;
  }
  if (OneOf(ext, {"h", "hh", "hpp", "hxx", "h++", "inc", "inl", "ipp", "tcc", "pyi"})) {
    return FileRole::kHeader;
  }
  return FileRole::kSource;
}

std::array<bool, kFileRoles> RolesNamedBy(std::string_view query) {
  std::array<bool, kFileRoles> named{};
  const std::string q = Lower(query);
  auto has_word = [&](std::string_view w) {
    for (size_t at = q.find(w); at != std::string::npos; at = q.find(w, at + 1)) {
      const bool left = at == 0 || !std::isalnum(static_cast<unsigned char>(q[at - 1]));
      const size_t end = at + w.size();
      const bool right = end >= q.size() || !std::isalpha(static_cast<unsigned char>(q[end]));
      if (left && right) {
        return true;
      }
    }
    return false;
  };
  auto any = [&](std::initializer_list<std::string_view> words) {
    return std::any_of(words.begin(), words.end(), has_word);
  };
  if (any({"test", "tests", "testsuite", "testcase", "testcases", "unittest", "unittests",
           "selftest", "regression test", "test case", "test suite"})) {
    named[static_cast<int>(FileRole::kTest)] = true;
    named[static_cast<int>(FileRole::kTestData)] = true;
  }
  if (any({"doc", "docs", "documentation", "documented", "manual", "manpage", "man page", "readme",
           "changelog", "typo in the"})) {
    named[static_cast<int>(FileRole::kDocs)] = true;
  }
  if (any({"build", "makefile", "cmake", "configure", "autoconf", "automake", "meson", "gradle",
           "compile", "compiler", "linker", "link", "linking", "cross-compiling"})) {
    named[static_cast<int>(FileRole::kBuild)] = true;
  }
  return named;
}

}  // namespace hearth::index
