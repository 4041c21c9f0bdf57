#include "index/tokenize.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace hearth::index {
namespace {

using ::testing::ElementsAre;

TEST(CodeTokens, KeepsIdentifierWholeAndSplitsSnakeCase) {
  EXPECT_THAT(CodeTokens("ngx_http_mp4"), ElementsAre("ngx_http_mp4", "ngx", "http", "mp4"));
}

TEST(CodeTokens, SplitsCamelCaseAndAcronyms) {
  EXPECT_THAT(CodeTokens("parseHTTPHeader"),
              ElementsAre("parsehttpheader", "parse", "http", "header"));
  EXPECT_THAT(CodeTokens("XMLHttpRequest"), ElementsAre("xmlhttprequest", "xml", "http", "request"));
}

TEST(CodeTokens, LettersKeepTheirDigitsDigitsThenLettersSplit) {
  EXPECT_THAT(CodeTokens("utf8Decode"), ElementsAre("utf8decode", "utf8", "decode"));
  EXPECT_THAT(CodeTokens("sha256sum"), ElementsAre("sha256sum", "sha256", "sum"));
}

TEST(CodeTokens, DropsStopWordsShortTokensAndPunctuation) {
  EXPECT_THAT(CodeTokens("if (x == the_value) return a;"),
              ElementsAre("the_value", "value", "return"));
}

TEST(CodeTokens, KeepsShortNumbersDropsLongOnes) {
  EXPECT_THAT(CodeTokens("CVE-2023-38545 0x1234567890abcdef 404"),
              ElementsAre("cve", "2023", "38545", "404"));
}

TEST(CodeTokens, NonAsciiIsASeparator) {
  EXPECT_THAT(CodeTokens("caf\xc3\xa9_bar h\xc3\xa9llo"), ElementsAre("caf", "_bar", "bar", "llo"));
}

TEST(TokenText, OnlyLowercaseAlnumAndUnderscore) {
  std::string t = TokenText("\"quoted\" AND (NEAR* OR x:y) {col}: ^a -b");
  for (char c : t) {
    EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == ' ') << c;
  }
  EXPECT_EQ(t, "quoted near col");
}

}  // namespace
}  // namespace hearth::index
