// The checkable interface of the multimodal path (issue 16 item 8, issue 17 item 5) through the
// binary: `hearth embed-media --audio` against llama.cpp's encoder output and `hearth logits
// --chat` with audio parts against its token layout and logits
// (../shared/fixtures/multimodal/README.md §7.4: F32 and Q8_0 projectors, the long clip's two
// chunks in order), and the errors a user can cause.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "../model/ref_check.h"
#include "cli_test_util.h"
#include "gguf/gguf.h"

namespace {

using namespace hearth::cli_test;  // NOLINT(google-build-using-namespace): test helpers

using hearth::gguf::File;

using hearth::model::testing::Compare;
using hearth::model::testing::Diff;
using hearth::model::testing::ReadFloatFile;
using hearth::model::testing::RefTensor;

// The README's prompt with one audio part.
std::string WriteChat(const std::string& audio) {
  static int n = 0;
  const std::string path = ::testing::TempDir() + "media_chat_" + std::to_string(::getpid()) + "_" +
                           std::to_string(n++) + ".json";
  const nlohmann::json chat = {{"messages",
                                {{{"role", "user"},
                                  {"content",
                                   {{{"type", "audio"}, {"path", audio}},
                                    {{"type", "text"}, {"text", "Transcribe this audio."}}}}}}},
                               {"add_generation_prompt", true},
                               {"enable_thinking", false}};
  std::ofstream(path) << chat.dump();
  return path;
}

struct MmCase {
  std::string stem;  // reference / projector stem
  std::string text;  // the text model
  std::string clip;
  bool q8 = false;
};

// README §7.4 items 3 and 5: the rows written by embed-media.
TEST(MediaCli, EmbedMediaMatchesTheReferenceEncoder) {
  const std::vector<MmCase> setups = {
      {"tiny-e.mmproj.F32", Text("models/tiny-e.F32.gguf"), "chirp-1.5s"},
      {"tiny-e.mmproj.F32", Text("models/tiny-e.F32.gguf"), "tones-4s"},
      {"tiny-e.mmproj.Q8_0", Text("models/tiny-e.F32.gguf"), "chirp-1.5s", true},
      {"tiny-mm.mmproj.F32", Mm("models/tiny-mm.F32.gguf"), "long-30.5s"},
  };
  for (const MmCase& s : setups) {
    SCOPED_TRACE(s.stem + " " + s.clip);
    const File ref = File::Open(Mm("refs/" + s.stem + ".audio.ref.gguf"));
    const std::string out = ::testing::TempDir() + "embd_" + std::to_string(::getpid()) + ".f32";
    const Result r =
        RunHearth("embed-media -m " + s.text + " --mmproj " + Mm("models/" + s.stem + ".gguf") +
                  " --audio " + Mm("media/" + s.clip + ".wav") + " --out " + out + " -t 2");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::vector<float> got = ReadFloatFile(out);
    std::remove(out.c_str());
    std::vector<float> want;
    if (ref.FindTensor(s.clip + ".embd")) {
      want = RefTensor<float>(ref, s.clip + ".embd");
    } else {  // the long clip: its two chunks, in order
      for (const char* c : {".embd.c0", ".embd.c1"}) {
        const std::vector<float> part = RefTensor<float>(ref, s.clip + c);
        want.insert(want.end(), part.begin(), part.end());
      }
    }
    const Diff d = Compare(got, want);
    std::printf("%s %s: embd max-abs %.2e rel-RMS %.2e\n", s.stem.c_str(), s.clip.c_str(),
                d.max_abs, d.rel_rms);
    EXPECT_LE(d.max_abs, s.q8 ? 0.15 : 1e-2);
    EXPECT_LE(d.rel_rms, s.q8 ? 2.5e-2 : 1e-3);
  }
}

// README §7.4 items 1, 4 and 5: the token layout and logits of `logits --chat`.
TEST(MediaCli, LogitsChatMatchesTheReferenceLayoutAndLogits) {
  const std::vector<MmCase> setups = {
      {"tiny-e.mmproj.F32", Text("models/tiny-e.F32.gguf"), "chirp-1.5s"},
      {"tiny-mm.mmproj.F32", Mm("models/tiny-mm.F32.gguf"), "chirp-1.5s"},
      {"tiny-mm.mmproj.F32", Mm("models/tiny-mm.F32.gguf"), "long-30.5s"},
      {"tiny-e.mmproj.Q8_0", Text("models/tiny-e.F32.gguf"), "tones-4s", true},
  };
  for (const MmCase& s : setups) {
    SCOPED_TRACE(s.stem + " " + s.clip);
    const File ref = File::Open(Mm("refs/" + s.stem + ".audio.ref.gguf"));
    const std::string chat = WriteChat(Mm("media/" + s.clip + ".wav"));
    const std::string out = ::testing::TempDir() + "logits_" + std::to_string(::getpid()) + ".f32";
    const Result r =
        RunHearth("logits -m " + s.text + " --mmproj " + Mm("models/" + s.stem + ".gguf") +
                  " --chat " + chat + " --out " + out + " -t 2");
    std::remove(chat.c_str());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json layout = nlohmann::json::parse(r.err.substr(0, r.err.find('\n')));
    const std::vector<int32_t> tokens = RefTensor<int32_t>(ref, s.clip + ".tokens");
    EXPECT_EQ(layout["tokens"].get<std::vector<int32_t>>(), tokens);
    const std::vector<float> logits = ReadFloatFile(out);
    std::remove(out.c_str());
    const int V = static_cast<int>(logits.size() / tokens.size());
    ASSERT_EQ(logits.size(), tokens.size() * static_cast<size_t>(V));

    std::vector<int32_t> rows_pos;
    if (ref.FindTensor(s.clip + ".top_pos")) {
      rows_pos = RefTensor<int32_t>(ref, s.clip + ".top_pos");
    } else {
      for (size_t p = 0; p < tokens.size(); ++p) rows_pos.push_back(static_cast<int32_t>(p));
    }
    const auto ids = RefTensor<int32_t>(ref, s.clip + ".top_ids");
    const auto top = RefTensor<float>(ref, s.clip + ".top_logits");
    const auto lse = RefTensor<float>(ref, s.clip + ".lse");
    int last_media = 0;
    for (size_t p = 0; p < tokens.size(); ++p) {
      if (tokens[p] < 0) last_media = static_cast<int>(p);
    }
    double max_after = 0, kl = 0;
    int top1_same = 0, top1_n = 0, top1_bad = 0;
    for (size_t r2 = 0; r2 < rows_pos.size(); ++r2) {
      const int p = rows_pos[r2];
      hearth::model::testing::RefRow row;
      row.ids.assign(ids.begin() + r2 * 20, ids.begin() + (r2 + 1) * 20);
      row.logits.assign(top.begin() + r2 * 20, top.begin() + (r2 + 1) * 20);
      row.lse = lse[static_cast<size_t>(p)];
      const auto st =
          hearth::model::testing::CompareRow(row, &logits[static_cast<size_t>(p) * V], V);
      kl += st.kl;
      // Top-1 where the reference has a margin (README §7.2 counts margins > 0.25).
      if (st.ref_margin > 0.25) {
        ++top1_n;
        top1_same += st.argmax_same ? 1 : 0;
      }
      if (p > last_media) {
        max_after = std::max(max_after, st.max_abs);
        if (st.ref_margin > 0.5 && !st.argmax_same) ++top1_bad;
      }
    }
    kl /= static_cast<double>(rows_pos.size());
    std::printf("%s %s: after-media max-abs %.3f, mean KL %.2e, top-1 %d/%d\n", s.stem.c_str(),
                s.clip.c_str(), max_after, kl, top1_same, top1_n);
    if (s.q8) {
      EXPECT_LE(kl, 0.05);
      EXPECT_GE(top1_same, 0.9 * top1_n);
    } else {
      EXPECT_LE(max_after, 0.6);
      EXPECT_LE(kl, 1e-3);
      EXPECT_EQ(top1_bad, 0);
    }
  }
}

TEST(MediaCli, ErrorsAreOneLineWithTheRightExitCode) {
  const std::string text = Text("models/tiny-e.F32.gguf");
  const std::string wav = Mm("media/chirp-1.5s.wav");
  const std::string out = ::testing::TempDir() + "media_err.f32";
  // No projector given and none next to the model.
  Result r = RunHearth("embed-media -m " + text + " --audio " + wav + " --out " + out);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--mmproj"), std::string::npos) << r.err;
  // A vision-only projector (26B/31B-like) names the models that take audio.
  r = RunHearth("embed-media -m " + Text("models/tiny-dense.F32.gguf") + " --mmproj " +
                Mm("models/tiny-dense.mmproj.F32.gguf") + " --audio " + wav + " --out " + out);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("E2B or E4B"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  // A projector made for another text model.
  r = RunHearth("embed-media -m " + text + " --mmproj " + Mm("models/tiny-mm.mmproj.F32.gguf") +
                " --audio " + wav + " --out " + out);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  // Not audio.
  r = RunHearth("embed-media -m " + text + " --mmproj " + Mm("models/tiny-e.mmproj.F32.gguf") +
                " --audio " + Mm("media/img-64x64.png") + " --out " + out);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  // logits with neither --tokens nor --chat; a --chat that is not JSON.
  const std::string chat = ::testing::TempDir() + "media_img_chat.json";
  r = RunHearth("logits -m " + text + " --out " + out);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  std::ofstream(chat) << "{not json";
  r = RunHearth("logits -m " + text + " --chat " + chat + " --out " + out);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  std::remove(chat.c_str());
  std::remove(out.c_str());
}

// `hearth run --audio` (repeatable): the rows go in front of the prompt between their markers.
// The prompt-token count of the summary is the layout's: BOS, then per clip <|audio> + rows +
// <audio|> (tiny-mm has the marker tokens), then the 26 pieces of "Transcribe this audio."
// (README §3: 38 rows for the chirp, 100 for the 4 s clip).
TEST(MediaCli, RunWithAudio) {
  const std::string base = "run -m " + Mm("models/tiny-mm.F32.gguf") + " --mmproj " +
                           Mm("models/tiny-mm.mmproj.F32.gguf") +
                           " -p 'Transcribe this audio.' -n 3 --temp 0 --no-display-prompt";
  Result r = RunHearth(base + " --audio " + Mm("media/chirp-1.5s.wav"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find(" 67 prompt tokens"), std::string::npos) << r.err;
  r = RunHearth(base + " --audio " + Mm("media/chirp-1.5s.wav") + " --audio " +
                Mm("media/tones-4s.wav"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find(" 169 prompt tokens"), std::string::npos) << r.err;
  // A model whose projector has no audio encoder; no projector at all.
  r = RunHearth("run -m " + Text("models/tiny-dense.F32.gguf") + " --mmproj " +
                Mm("models/tiny-dense.mmproj.F32.gguf") + " -p x -n 1 --audio " +
                Mm("media/chirp-1.5s.wav"));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("E2B or E4B"), std::string::npos) << r.err;
  r = RunHearth("run -m " + Text("models/tiny-e.F32.gguf") + " -p x -n 1 --audio " +
                Mm("media/chirp-1.5s.wav"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

// `hearth chat --plain` with /audio PATH: the clip goes with the next message.
TEST(MediaCli, PlainChatAudioCommand) {
  const std::string input = ::testing::TempDir() + "media_chat_in.txt";
  std::ofstream(input) << "/audio " << Mm("media/chirp-1.5s.wav") << "\nWhat is this?\n";
  const std::string cmd_in = "sh -c \"" + std::string(HEARTH_BINARY) + " chat --plain -m " +
                             Mm("models/tiny-mm.F32.gguf") + " --mmproj " +
                             Mm("models/tiny-mm.mmproj.F32.gguf") + " -n 2 --temp 0 -v < " + input +
                             "\"";
  const std::string out = ::testing::TempDir() + "media_chat_out.txt";
  const int status = std::system((cmd_in + " >" + out + " 2>" + out + ".err").c_str());
  const std::string o = Slurp(out), e = Slurp(out + ".err");
  EXPECT_EQ(WEXITSTATUS(status), 0) << e;
  EXPECT_NE(o.find("38 audio positions"), std::string::npos) << o;
  // The turn: BOS <|turn>user\n (6) <|audio> 38 rows <audio|> "What is this?" <turn|>\n
  // <|turn>model\n<|channel>thought\n<channel|> — at least the 38 rows and the markers.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(e, m, std::regex("(\\d+) prompt tokens"))) << e;
  EXPECT_GT(std::stoi(m[1]), 38 + 2 + 6);
  // A file that is not audio ends a piped chat with exit 3.
  std::ofstream(input) << "/audio " << Mm("media/img-64x64.png") << "\nhi\n";
  const int bad = std::system((cmd_in + " >/dev/null 2>&1").c_str());
  EXPECT_EQ(WEXITSTATUS(bad), 3);
  std::remove(input.c_str());
  std::remove(out.c_str());
  std::remove((out + ".err").c_str());
}

// `hearth transcribe`: segments of at most 30 s covering the clip in order, each with its times;
// three formats. The tiny model's words are random: the structure is what is checked.
TEST(MediaCli, TranscribeFormatsAndSegments) {
  const std::string base = "transcribe -m " + Mm("models/tiny-mm.F32.gguf") + " --mmproj " +
                           Mm("models/tiny-mm.mmproj.F32.gguf") + " -n 3 -t 2 ";
  Result r = RunHearth(base + Mm("media/long-30.5s.wav") + " --format json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_DOUBLE_EQ(j["duration"].get<double>(), 30.5);
  const auto& segs = j["segments"];
  ASSERT_GE(segs.size(), 2u);
  double at = 0;
  for (size_t i = 0; i < segs.size(); ++i) {
    EXPECT_EQ(segs[i]["id"], i);
    EXPECT_DOUBLE_EQ(segs[i]["start"].get<double>(), at);
    const double end = segs[i]["end"].get<double>();
    EXPECT_GT(end, at);
    EXPECT_LE(end - at, 30.0);
    EXPECT_TRUE(segs[i]["text"].is_string());
    at = end;
  }
  EXPECT_DOUBLE_EQ(at, 30.5);
  EXPECT_TRUE(j["text"].is_string());

  r = RunHearth(base + Mm("media/long-30.5s.wav") + " --format srt");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::regex block(
      "(\\d+)\n(\\d\\d):(\\d\\d):(\\d\\d),(\\d\\d\\d) --> "
      "(\\d\\d):(\\d\\d):(\\d\\d),(\\d\\d\\d)\n");
  int n = 0;
  std::string last_end;
  for (auto it = std::sregex_iterator(r.out.begin(), r.out.end(), block);
       it != std::sregex_iterator(); ++it) {
    ++n;
    EXPECT_EQ(std::stoi((*it)[1]), n);
    if (n == 1) {
      EXPECT_EQ((*it).str().substr(2, 12), "00:00:00,000");
    }
    last_end = (*it).str().substr((*it).str().find("--> ") + 4, 12);
  }
  EXPECT_EQ(n, static_cast<int>(segs.size()));
  EXPECT_EQ(last_end, "00:00:30,500");

  r = RunHearth(base + Mm("media/tones-4s.wav"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;  // one segment, one line

  r = RunHearth(base + Mm("media/tones-4s.wav") + " --translate-to French --format json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["translated_to"], "French");

  // Errors: not audio (3), a bad format (2), a projector without audio (3).
  EXPECT_EQ(RunHearth(base + Mm("media/img-64x64.png")).exit_code, 3);
  EXPECT_EQ(RunHearth(base + Mm("media/tones-4s.wav") + " --format vtt").exit_code, 2);
  r = RunHearth("transcribe -m " + Text("models/tiny-dense.F32.gguf") + " --mmproj " +
                Mm("models/tiny-dense.mmproj.F32.gguf") + " " + Mm("media/tones-4s.wav"));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("E2B or E4B"), std::string::npos) << r.err;
}

}  // namespace
