// A test-only server: the real HTTP layer over the scripted generator, so the npm client tests
// can drive a tool-call round trip (the tiny fixture model has random weights and never calls a
// tool). Usage: scripted_server [--port P]. Prints "listening on http://127.0.0.1:PORT" to
// stderr and serves until killed. Behaviour: with tools and no tool result yet, it calls
// get_weather {"city":"Paris"}; after a tool result R, it answers "The weather in Paris is R.";
// asked for something "long", 500 words slowly; asked for "code", it answers with a C++ block;
// otherwise it says "Hello from the scripted generator." (with a thought when asked to think).
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

#include "scripted_generator.h"
#include "server/server.h"

using hearth::server::GenerationRequest;
using hearth::text::ParseDelta;

namespace {
ParseDelta Text(std::string s, bool reasoning = false) {
  ParseDelta d;
  (reasoning ? d.reasoning : d.content) = std::move(s);
  return d;
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
    const std::string asked = !last.is_null() && last["content"].is_string()
                                  ? last["content"].get<std::string>()
                                  : std::string();
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
