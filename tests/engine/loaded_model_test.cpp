// LoadedModel on the tiny fixtures: one open gives the weights, the tokenizer and add_bos of the
// file (checked against the file read directly), and the shared defaults are filled in and
// range-checked as documented.
#include "engine/loaded_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "base/cpu_cores.h"
#include "base/error.h"
#include "gguf/gguf.h"

namespace hearth::engine {
namespace {

const std::string kModel = std::string(HEARTH_SHARED_DIR) + "/fixtures/models/tiny-e.Q8_0.gguf";

TEST(LoadedModel, OwnsWhatTheFileHolds) {
  const auto lm = LoadedModel::Open(kModel);
  const gguf::File file = gguf::File::Open(kModel);
  EXPECT_EQ(lm->path(), kModel);
  // tiny-e.json: n_vocab 4096, context_length 8192.
  EXPECT_EQ(lm->config().n_vocab, 4096);
  EXPECT_EQ(lm->config().n_ctx_train, 8192);
  EXPECT_EQ(lm->tokenizer().size(), 4096);
  EXPECT_EQ(lm->add_bos(), file.GetBool("tokenizer.ggml.add_bos_token").value_or(true));
  EXPECT_EQ(lm->file().tensors().size(), file.tensors().size());
  EXPECT_EQ(&lm->file(), &lm->model().file());  // one parse, shared
  EXPECT_EQ(lm->chat_template(), text::ChatTemplate::kOfficial);
  // The same ids as a tokenizer built on its own from the file.
  const text::Tokenizer alone = text::Tokenizer::FromGguf(file);
  EXPECT_EQ(lm->tokenizer().Encode("Hello world <|turn>", true),
            alone.Encode("Hello world <|turn>", true));
}

TEST(LoadedModel, DefaultsAndRanges) {
  const auto lm = LoadedModel::Open(kModel);
  // One thread per physical core this process may use (base/cpu_cores_test.cpp tests the
  // counting on fake topologies), never more than the CPUs it may run on.
  EXPECT_EQ(DefaultThreads(), std::min(AvailablePhysicalCores(), 16));
  EXPECT_GE(DefaultThreads(), 1);
  EXPECT_LE(DefaultThreads(), static_cast<int>(AllowedCpus().size()));

  const model::ContextOptions d = lm->Context({});
  EXPECT_EQ(d.n_ctx, 8192);  // min(kDefaultContext, 8192)
  EXPECT_EQ(d.n_threads, DefaultThreads());
  const model::ContextOptions asked = lm->Context({.n_ctx = 100, .n_threads = 3});
  EXPECT_EQ(asked.n_ctx, 100);
  EXPECT_EQ(asked.n_threads, 3);
  EXPECT_EQ(lm->Context({.n_ctx = 8192}).n_ctx, 8192);
  for (const int bad : {8193, -1}) {
    try {
      lm->Context({.n_ctx = bad});
      ADD_FAILURE() << "accepted -c " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.error_class(), ErrorClass::kUsage);
      EXPECT_NE(std::string(e.what()).find("-c " + std::to_string(bad) + " is out of range"),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(LoadedModel, MissingFileIsAnIoError) {
  try {
    LoadedModel::Open("/nonexistent/model.gguf");
    ADD_FAILURE() << "opened";
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kIo);
  }
}

}  // namespace
}  // namespace hearth::engine
