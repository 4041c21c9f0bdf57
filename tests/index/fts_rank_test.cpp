// The FTS5 docsize decoder alone: chunk lengths stored as SQLite varints, hand-encoded.
#include "index/fts_rank.h"

#include <gtest/gtest.h>

namespace hearth::index {
namespace {

TEST(DocsizeLength, SumsOneVarintPerColumn) {
  // Columns of 5, 128 (0x81 0x00: 1 << 7 | 0) and 3 tokens.
  const unsigned char blob[] = {0x05, 0x81, 0x00, 0x03};
  EXPECT_EQ(DocsizeLength(blob, 4), 136);
  // 300 = 2 x 128 + 44: 0x82 0x2c.
  const unsigned char two[] = {0x82, 0x2c};
  EXPECT_EQ(DocsizeLength(two, 2), 300);
  EXPECT_EQ(DocsizeLength(blob, 0), 0);
  // A varint cut short by the blob's end counts what was read, without reading past it.
  const unsigned char cut[] = {0x81};
  EXPECT_EQ(DocsizeLength(cut, 1), 1);
}

}  // namespace
}  // namespace hearth::index
