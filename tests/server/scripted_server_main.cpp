// A test-only server: the real HTTP layer over the scripted generator, so the npm client tests
// can drive a tool-call round trip (the tiny fixture model has random weights and never calls a
// tool). Usage: scripted_server [--port P]. Prints "listening on http://127.0.0.1:PORT" to
// stderr and serves until killed. Behaviour: with tools and no tool result yet, it calls
// get_weather {"city":"Paris"}; after a tool result R, it answers "The weather in Paris is R.";
// asked for something "long", 500 words slowly; asked for "code", it answers with a C++ block;
// given images or audio (image_url / input_audio parts in the last message), it says what arrived:
// "I got 1 image(s) and 1 audio clip(s): image/png 46290 bytes; audio wav 48044 bytes, 16000 Hz,
// 1 ch, 16-bit." (the decoded sizes and the WAV header, so a test can check the bytes that left
// the page), unless the text says "no vision": then it refuses the request with a 400 as a model
// without a projector does; otherwise it says "Hello from the scripted generator." (with a
// thought when asked to think).
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>

#include "scripted_generator.h"
#include "server/server.h"

using hearth::server::GenerationRequest;
using hearth::text::ParseDelta;
using Json = nlohmann::ordered_json;

namespace {
ParseDelta Text(std::string s, bool reasoning = false) {
  ParseDelta d;
  (reasoning ? d.reasoning : d.content) = std::move(s);
  return d;
}

// Standard base64 (padding optional); stops at the first character outside the alphabet.
std::string Base64Decode(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = c >= 'A' && c <= 'Z'   ? c - 'A'
            : c >= 'a' && c <= 'z' ? c - 'a' + 26
            : c >= '0' && c <= '9' ? c - '0' + 52
            : c == '+'             ? 62
            : c == '/'             ? 63
                                   : -1;
    if (v < 0) break;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

uint32_t Le(const std::string& b, size_t at, int n) {
  uint32_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[at + i]);
  return v;
}

// ", 16000 Hz, 1 ch, 16-bit" for a RIFF/WAVE file with a fmt chunk, ", not WAV" otherwise.
std::string DescribeWav(const std::string& b) {
  if (b.size() < 12 || b.compare(0, 4, "RIFF") != 0 || b.compare(8, 4, "WAVE") != 0) {
    return ", not WAV";
  }
  for (size_t at = 12; at + 8 <= b.size();) {
    const uint32_t size = Le(b, at + 4, 4);
    if (b.compare(at, 4, "fmt ") == 0 && size >= 16 && at + 8 + 16 <= b.size()) {
      return ", " + std::to_string(Le(b, at + 12, 4)) + " Hz, " +
             std::to_string(Le(b, at + 10, 2)) + " ch, " + std::to_string(Le(b, at + 22, 2)) +
             "-bit";
    }
    at += 8 + size + (size & 1);
  }
  return ", no fmt chunk";
}

// A message's content; null when it has none.
Json ContentOf(const Json& message) {
  return message.is_object() && message.contains("content") ? message["content"] : Json();
}

// The text parts of a message's content (a string, or an array of content parts).
std::string TextOf(const Json& content) {
  if (content.is_string()) return content.get<std::string>();
  std::string text;
  if (!content.is_array()) return text;
  for (const auto& part : content) {
    if (part.value("type", "") == "text") text += part.value("text", "");
  }
  return text;
}

// What the media parts of `content` hold: counts and one description per part.
struct MediaSeen {
  int images = 0, clips = 0;
  std::string what;
};
MediaSeen DescribeMedia(const Json& content) {
  MediaSeen seen;
  if (!content.is_array()) return seen;
  for (const auto& part : content) {
    const std::string type = part.value("type", "");
    std::string item;
    if (type == "image_url") {
      const Json& image = part["image_url"];
      const std::string url = image.is_string() ? image.get<std::string>() : image.value("url", "");
      const size_t comma = url.find(',');
      const std::string head = url.substr(0, comma);  // data:image/png;base64
      const size_t semi = head.find(';');
      item = head.substr(5, semi == std::string::npos ? std::string::npos : semi - 5) + " " +
             std::to_string(Base64Decode(url.substr(comma + 1)).size()) + " bytes";
      ++seen.images;
    } else if (type == "input_audio") {
      const std::string bytes = Base64Decode(part["input_audio"].value("data", ""));
      const std::string format = part["input_audio"].value("format", "?");
      item = "audio " + format + " " + std::to_string(bytes.size()) + " bytes" +
             (format == "wav" ? DescribeWav(bytes) : std::string());
      ++seen.clips;
    } else {
      continue;
    }
    seen.what += (seen.what.empty() ? "" : "; ") + item;
  }
  return seen;
}
}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  hearth::server::ServerOptions opt;
  opt.port = 0;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--port") == 0) opt.port = std::atoi(argv[i + 1]);
  }
  auto gen = std::make_unique<hearth::server::testing::ScriptedGenerator>(1);
  gen->check = [](const GenerationRequest& r) {
    if (r.messages.empty()) return;
    const Json content = ContentOf(r.messages.back());
    const MediaSeen seen = DescribeMedia(content);
    if (seen.images + seen.clips > 0 && TextOf(content).find("no vision") != std::string::npos) {
      throw hearth::Error(hearth::ErrorClass::kInvalidInput,
                          "this model has no multimodal projector, so it takes no images or audio");
    }
  };
  gen->responder = [](const GenerationRequest& r) {
    std::vector<ParseDelta> out;
    const auto& last = r.messages.empty() ? nlohmann::ordered_json() : r.messages.back();
    if (!last.is_null() && last.value("role", "") == "tool") {
      const std::string result =
          last["content"].is_string() ? last["content"].get<std::string>() : last["content"].dump();
      for (const char* piece : {"The weather ", "in Paris ", "is "}) out.push_back(Text(piece));
      out.push_back(Text(result + "."));
      return out;
    }
    if (!r.tools.empty() && r.tool_choice != hearth::text::ToolChoice::kNone) {
      ParseDelta a, b;
      a.tool_calls.push_back({0, "get_weather", "{\"city\":"});
      b.tool_calls.push_back({0, "", "\"Paris\"}"});
      out.push_back(a);
      out.push_back(b);
      return out;
    }
    const std::string asked = TextOf(ContentOf(last));
    if (const MediaSeen seen = DescribeMedia(ContentOf(last)); seen.images + seen.clips > 0) {
      out.push_back(Text("I got " + std::to_string(seen.images) + " image(s) "));
      out.push_back(Text("and " + std::to_string(seen.clips) + " audio clip(s): "));
      out.push_back(Text(seen.what + "."));
      return out;
    }
    if (asked.find("long") != std::string::npos) {
      for (int i = 0; i < 500; ++i) out.push_back(Text("word" + std::to_string(i) + " "));
      return out;
    }
    if (asked.find("code") != std::string::npos) {
      for (const char* piece :
           {"Here:\n```cpp\n", "int main() {\n  return 0;", "  // done\n}\n```\n"}) {
        out.push_back(Text(piece));
      }
      return out;
    }
    if (r.think) out.push_back(Text("The user greets me.", true));
    for (const char* piece : {"Hello ", "from the ", "scripted ", "generator."}) {
      out.push_back(Text(piece));
    }
    return out;
  };
  // "long" answers come slowly (500 words, 20 ms apart) so that the stop button can be tested.
  gen->delay_for = [](const GenerationRequest& r) {
    const auto& m = r.messages.empty() ? nlohmann::ordered_json() : r.messages.back();
    const bool slow = !m.is_null() && m["content"].is_string() &&
                      m["content"].get<std::string>().find("long") != std::string::npos;
    return std::chrono::milliseconds(slow ? 20 : 0);
  };
  hearth::server::Server server(opt);
  const int port = server.Bind();
  server.SetGenerator(std::move(gen));
  std::cerr << "listening on http://127.0.0.1:" << port << std::endl;
  server.Listen();
  return 0;
}
