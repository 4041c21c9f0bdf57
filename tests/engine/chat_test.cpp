// ChatSession on a tiny fixture model: the prompt is the official template's rendering, the reply
// is the greedy continuation parsed by the output parser (both computed here independently of
// ChatSession), history keeps no thoughts, and the next turn reuses the KV prefix.
#include "engine/chat.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "base/error.h"
#include "model/model.h"
#include "text/chat_template.h"
#include "text/output_parser.h"
#include "text/tokenizer.h"

namespace hearth::engine {
namespace {

using Json = nlohmann::ordered_json;
const std::string kModel = std::string(HEARTH_SHARED_DIR) + "/fixtures/models/tiny-e.Q8_0.gguf";

model::ContextOptions Options(int n_ctx) {
  model::ContextOptions o;
  o.n_ctx = n_ctx;
  o.n_threads = 1;  // a busy machine makes waiting for pool workers the slow part
  return o;
}

GenerateOptions Greedy(int n) {
  GenerateOptions o;
  o.max_tokens = n;
  o.sampling.temperature = 0;
  return o;
}

TEST(ChatSession, ReplyIsTheParsedGreedyContinuationOfTheRenderedPrompt) {
  auto model = model::Model::Load(kModel);
  const text::Tokenizer tok = text::Tokenizer::Load(kModel);

  // Reference: render, tokenize, argmax chain until an end token, decode, parse.
  const Json inputs = {{"messages", Json::array({Json{{"role", "system"}, {"content", "Be brief."}},
                                                 Json{{"role", "user"}, {"content", "Hello"}}})},
                       {"add_generation_prompt", true},
                       {"enable_thinking", false}};
  const std::string prompt = text::RenderChat(inputs);
  ASSERT_EQ(prompt.rfind("<|turn>model\n<|channel>thought\n<channel|>"),
            prompt.size() - std::string("<|turn>model\n<|channel>thought\n<channel|>").size());
  std::vector<int32_t> ids = tok.Encode(prompt, false, true);
  ASSERT_EQ(ids.front(), tok.bos_id());
  std::vector<int32_t> gen;
  {
    model::Context ctx(*model, Options(256));
    std::vector<float> logits(static_cast<size_t>(model->config().n_vocab));
    ctx.Decode(ids, logits.data(), false);
    for (int i = 0; i < 12; ++i) {
      const int32_t best =
          static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      if (tok.IsEndOfGeneration(best)) break;
      gen.push_back(best);
      ctx.Decode(std::span<const int32_t>(&best, 1), logits.data(), false);
    }
  }
  text::ParserConfig pc;
  pc.generation_prompt = "<|turn>model\n<|channel>thought\n<channel|>";
  text::ParsedOutput expected = text::ParseOutput(tok.Decode(gen), pc, false);
  if (expected.error) expected = {.content = tok.Decode(gen)};  // not the format: raw text

  Session session(*model, tok, Options(256));
  ChatSession chat(session);
  chat.set_system("Be brief.");
  chat.AddUser("Hello");
  EXPECT_EQ(chat.RenderPrompt(), prompt);
  std::string content, reasoning;
  ChatCallbacks cb;
  cb.on_content = [&](std::string_view t) { content += t; };
  cb.on_reasoning = [&](std::string_view t) { reasoning += t; };
  const ChatReply reply = chat.Respond(Greedy(12), cb);
  EXPECT_EQ(reply.raw, tok.Decode(gen));
  EXPECT_EQ(reply.parsed.content, expected.content);
  EXPECT_EQ(reply.parsed.reasoning, expected.reasoning);
  EXPECT_EQ(content, expected.content);
  EXPECT_EQ(reasoning, expected.reasoning);
  ASSERT_EQ(chat.messages().size(), 2u);
  EXPECT_EQ(chat.messages()[1]["role"], "assistant");
  EXPECT_EQ(chat.messages()[1]["content"], expected.content);

  // Turn 2 reuses at least the first turn's rendered history (the empty thought block of the
  // generation prompt is not part of history, so reuse ends there).
  chat.AddUser("And now?");
  const std::string first_turn = text::RenderChat(
      {{"messages", Json::array({Json{{"role", "system"}, {"content", "Be brief."}},
                                 Json{{"role", "user"}, {"content", "Hello"}}})},
       {"add_generation_prompt", false}});
  const int history_tokens = static_cast<int>(tok.Encode(first_turn, false, true).size());
  const ChatReply second = chat.Respond(Greedy(4), {});
  EXPECT_GE(second.stats.reused_tokens, history_tokens);
  EXPECT_EQ(chat.messages().size(), 4u);
}

TEST(ChatSession, ThoughtsStreamButStayOutOfHistory) {
  auto model = model::Model::Load(kModel);
  const text::Tokenizer tok = text::Tokenizer::Load(kModel);
  Session session(*model, tok, Options(256));
  ChatSession chat(session);
  chat.set_thinking(true);
  chat.AddUser("Go");
  ASSERT_EQ(chat.RenderPrompt().substr(chat.RenderPrompt().size() - 13), "<|turn>model\n");
  // Random weights: the output starts with a channel opener (forced by a logit bias; a presence
  // penalty then lets other tokens follow). The parse must be the parser's own reading of the
  // raw text with thinking mode's generation prompt, streamed to the callbacks, and whatever the
  // thought channel held must not reach the history.
  GenerateOptions opt = Greedy(8);
  opt.sampling.presence_penalty = 2000;
  opt.sampling.logit_bias = {{100, 1000.0f}, {335, 500.0f}, {101, 250.0f}, {336, 120.0f}};
  std::string reasoning, content;
  ChatCallbacks cb;
  cb.on_reasoning = [&](std::string_view t) { reasoning += t; };
  cb.on_content = [&](std::string_view t) { content += t; };
  const ChatReply reply = chat.Respond(opt, cb);
  EXPECT_EQ(reply.raw.rfind("<|channel>a<channel|>b", 0), 0u) << reply.raw;
  text::ParserConfig pc;
  pc.generation_prompt = "<|turn>model\n";
  text::ParsedOutput expected = text::ParseOutput(reply.raw, pc, false);
  if (expected.error) expected = {.content = reply.raw};
  EXPECT_EQ(reply.parsed.content, expected.content);
  EXPECT_EQ(reply.parsed.reasoning, expected.reasoning);
  EXPECT_EQ(reasoning, expected.reasoning);
  EXPECT_EQ(content, expected.content);
  const Json& last = chat.messages().back();
  EXPECT_EQ(last["content"], expected.content);
  EXPECT_FALSE(last.contains("reasoning"));
  // A hand-written earlier turn with reasoning: the template drops it as well.
  chat.AddUser("Again");
  chat.AddMessage({{"role", "assistant"}, {"content", "fine"}, {"reasoning", "secret idea"}});
  chat.AddUser("Next");
  const std::string next = chat.RenderPrompt();
  EXPECT_EQ(next.find("secret idea"), std::string::npos) << next;
  EXPECT_EQ(next.find("<|channel>"), std::string::npos) << next;
  EXPECT_NE(next.find("<|think|>"), std::string::npos) << next;
  EXPECT_NE(next.find("fine"), std::string::npos) << next;
}

TEST(ChatSession, ATurnThatDoesNotFitLeavesHistoryUnchanged) {
  auto model = model::Model::Load(kModel);
  const text::Tokenizer tok = text::Tokenizer::Load(kModel);
  Session session(*model, tok, Options(32));
  ChatSession chat(session);
  std::string long_text;
  for (int i = 0; i < 60; ++i) long_text += std::to_string(i * 7919 % 1000).insert(0, 1, ' ');
  chat.AddUser(long_text);
  try {
    chat.Respond(Greedy(4), {});
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.error_class(), ErrorClass::kResource);
  }
  EXPECT_EQ(chat.messages().size(), 1u);
  chat.PopMessage();
  chat.AddUser("Hi");
  EXPECT_NO_THROW(chat.Respond(Greedy(2), {}));
  EXPECT_EQ(chat.messages().size(), 2u);
  chat.Clear();
  EXPECT_TRUE(chat.messages().empty());
}

// Ten turns in a 256-token context: the oldest whole turns are dropped (system prompt and the
// current question kept), and each reply after a drop is the one a fresh session gives for the
// kept conversation (the KV prefix reuse over a changed history is exact).
TEST(ChatSession, ALongConversationDropsItsOldestTurnsAndGoesOn) {
  auto model = model::Model::Load(kModel);
  const text::Tokenizer tok = text::Tokenizer::Load(kModel);
  Session session(*model, tok, Options(256));
  ChatSession chat(session);
  chat.set_system("Be brief.");
  const std::string words = " about the tides, the moon and the small boats in the harbour";
  int drops = 0, compared = 0;
  for (int i = 0; i < 10; ++i) {
    chat.AddUser("Question " + std::to_string(i) + words);
    const ContextFit fit = chat.FitToContext(16);
    EXPECT_LE(fit.prompt_tokens + 16, 256) << "turn " << i;
    const Json kept = chat.messages();
    EXPECT_EQ(kept.back()["content"], "Question " + std::to_string(i) + words);
    EXPECT_EQ(chat.RenderPrompt().rfind("<bos><|turn>system\nBe brief.<turn|>", 0), 0u);
    const ChatReply reply = chat.Respond(Greedy(16), {});
    if (!fit.dropped.empty()) {
      ++drops;
      // Once dropping starts it leaves a quarter of the context free.
      EXPECT_LE(fit.prompt_tokens + 16, 192) << "turn " << i;
      for (const DroppedTurn& d : fit.dropped) {
        EXPECT_EQ(d.messages, 2);
        EXPECT_GT(d.tokens, 10);
      }
      // The kept conversation's first turn is the one after the dropped ones.
      EXPECT_EQ(kept[0]["role"], "user");
      EXPECT_NE(kept[0]["content"], "Question 0" + words);
      Session fresh_session(*model, tok, Options(256));
      ChatSession fresh(fresh_session);
      fresh.set_system("Be brief.");
      for (const Json& m : kept) fresh.AddMessage(m);
      const ChatReply expected = fresh.Respond(Greedy(16), {});
      EXPECT_EQ(reply.raw, expected.raw) << "turn " << i;
      ++compared;
    }
  }
  EXPECT_GE(drops, 1);
  EXPECT_GE(compared, 1);
  ASSERT_FALSE(chat.dropped().empty());
  EXPECT_EQ(chat.dropped()[0].opening.rfind("Question 0 about the tides", 0), 0u);
  EXPECT_TRUE(chat.dropped()[0].opening.ends_with("...")) << chat.dropped()[0].opening;
  EXPECT_LE(chat.dropped()[0].opening.size(), 60u);
  chat.Clear();
  EXPECT_TRUE(chat.dropped().empty());
}

// A question that does not fit even alone costs no history: nothing is dropped and Respond
// refuses it.
TEST(ChatSession, AQuestionTooLongAloneDropsNothing) {
  auto model = model::Model::Load(kModel);
  const text::Tokenizer tok = text::Tokenizer::Load(kModel);
  Session session(*model, tok, Options(64));
  ChatSession chat(session);
  chat.AddUser("Hi");
  chat.Respond(Greedy(4), {});
  std::string long_text;
  for (int i = 0; i < 60; ++i) long_text += std::to_string(i * 7919 % 1000).insert(0, 1, ' ');
  chat.AddUser(long_text);
  const ContextFit fit = chat.FitToContext(4);
  EXPECT_TRUE(fit.dropped.empty());
  EXPECT_GT(fit.prompt_tokens, 64);
  EXPECT_EQ(chat.messages().size(), 3u);
  EXPECT_THROW(chat.Respond(Greedy(4), {}), Error);
}

// ---- The chat turn's parts, against hand-written expectations ------------------------------

const Json kWeatherTool = Json::parse(R"({"type": "function", "function": {"name": "get_weather",
  "description": "Weather", "parameters": {"type": "object",
  "properties": {"city": {"type": "string"}}, "required": ["city"]}}})");

TEST(PrepareTurn, GenerationPromptIsWhatTheTemplateAddsReadAsAModelTurn) {
  const text::Tokenizer tok = text::Tokenizer::Load(kModel);
  TurnRequest r;
  r.messages = Json::array({Json{{"role", "user"}, {"content", "Hi"}}});
  PreparedTurn off = PrepareTurn(r, &tok);
  EXPECT_EQ(off.parser.generation_prompt, "<|turn>model\n<|channel>thought\n<channel|>");
  EXPECT_EQ(GenerationPrompt(false), off.parser.generation_prompt);
  EXPECT_TRUE(off.prompt.ends_with(off.parser.generation_prompt));
  EXPECT_EQ(off.prompt, text::RenderChat({{"messages", r.messages},
                                          {"add_generation_prompt", true},
                                          {"enable_thinking", false}}));
  ASSERT_FALSE(off.tokens.empty());
  EXPECT_EQ(off.tokens.front(), tok.bos_id());
  EXPECT_EQ(off.tokens, tok.Encode(off.prompt, false, true));
  EXPECT_TRUE(PrepareTurn(r, nullptr).tokens.empty());

  r.thinking = true;
  EXPECT_EQ(PrepareTurn(r, &tok).parser.generation_prompt, "<|turn>model\n");
  EXPECT_EQ(GenerationPrompt(true), "<|turn>model\n");

  // After a tool result the template adds nothing (the model's turn is still open); the parser
  // still reads a model turn.
  r.thinking = false;
  r.tools = Json::array({kWeatherTool});
  r.messages.push_back(Json::parse(R"({"role": "assistant", "content": "", "tool_calls": [
      {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]})"));
  r.messages.push_back(Json{{"role", "tool"}, {"name", "get_weather"}, {"content", "sunny"}});
  const PreparedTurn after = PrepareTurn(r, &tok);
  EXPECT_EQ(after.prompt, text::RenderChat({{"messages", r.messages},
                                            {"tools", r.tools},
                                            {"add_generation_prompt", false},
                                            {"enable_thinking", false}}));
  EXPECT_EQ(after.parser.generation_prompt, "<|turn>model\n");
  EXPECT_EQ(after.parser.tool_names, std::vector<std::string>{"get_weather"});
}

TEST(PrepareTurn, ToolChoiceRequiredPrefillsTheCallAndNoneHidesTheTools) {
  TurnRequest r;
  r.messages = Json::array({Json{{"role", "user"}, {"content", "Weather in Oslo?"}}});
  r.tools = Json::array({kWeatherTool});
  r.tool_choice = text::ToolChoice::kRequired;
  const PreparedTurn req = PrepareTurn(r, nullptr);
  EXPECT_TRUE(
      req.prompt.ends_with("<|turn>model\n<|channel>thought\n<channel|>"
                           "<|tool_call>call:get_weather"))
      << req.prompt;
  EXPECT_TRUE(req.parser.generation_prompt.ends_with("<|tool_call>call:get_weather"));
  ASSERT_NE(req.constraint, nullptr);
  EXPECT_EQ(req.constraint->dialect(), JsonDialect::kGemmaToolArgs);
  EXPECT_EQ(req.forced_call_suffix, "<tool_call|>");
  EXPECT_FALSE(req.forbid_tool_calls);

  r.tool_choice = text::ToolChoice::kNone;
  const PreparedTurn none = PrepareTurn(r, nullptr);
  EXPECT_EQ(none.prompt.find("get_weather"), std::string::npos);
  EXPECT_TRUE(none.parser.tool_names.empty());
  EXPECT_TRUE(none.forbid_tool_calls);
  EXPECT_EQ(none.constraint, nullptr);

  r.tool_choice = text::ToolChoice::kAuto;
  const PreparedTurn any = PrepareTurn(r, nullptr);
  EXPECT_NE(any.prompt.find("get_weather"), std::string::npos);
  EXPECT_EQ(any.constraint, nullptr);
  r.tools = Json::object();
  EXPECT_THROW(PrepareTurn(r, nullptr), Error);
}

TEST(TurnReader, OutputNotInTheFormatIsTheRawTextAndTheRestIsUnstreamed) {
  TurnRequest r;
  r.messages = Json::array({Json{{"role", "user"}, {"content", "Hi"}}});
  r.thinking = true;
  const PreparedTurn turn = PrepareTurn(r, nullptr);
  std::string streamed;
  TurnReader reader(turn, [&](const text::ParseDelta& d) { streamed += d.content; });
  // Only the 'thought' channel exists (parse-cases.json: non_thought_channel_is_error).
  const std::string raw = "<|channel>analysis\nfoo<channel|>bar";
  for (size_t i = 0; i < raw.size(); i += 4) reader.Push(raw.substr(i, 4));
  GenerateStats stats;
  stats.stop_reason = StopReason::kEndOfGeneration;
  const ChatReply reply = reader.Finish(stats);
  EXPECT_TRUE(reply.parsed.error);
  EXPECT_EQ(reply.parsed.content, raw);
  EXPECT_EQ(reply.raw, raw);
  EXPECT_EQ(streamed + reply.unstreamed, raw);
  EXPECT_EQ(reply.finish, FinishReason::kStop);

  // Well-formed output: streamed exactly, nothing left over.
  streamed.clear();
  TurnReader ok(turn, [&](const text::ParseDelta& d) { streamed += d.content; });
  ok.Push("Hello ");
  ok.Push("there");
  stats.stop_reason = StopReason::kMaxTokens;
  const ChatReply fine = ok.Finish(stats);
  EXPECT_FALSE(fine.parsed.error);
  EXPECT_EQ(fine.parsed.content, "Hello there");
  EXPECT_EQ(streamed, "Hello there");
  EXPECT_TRUE(fine.unstreamed.empty());
  EXPECT_EQ(fine.finish, FinishReason::kLength);
}

TEST(FinishReason, FromTheStopReasonAndTheToolCalls) {
  EXPECT_EQ(FinishFor(StopReason::kCancelled, true), FinishReason::kCancelled);
  EXPECT_EQ(FinishFor(StopReason::kCallback, false), FinishReason::kCancelled);
  EXPECT_EQ(FinishFor(StopReason::kMaxTokens, true), FinishReason::kToolCalls);
  EXPECT_EQ(FinishFor(StopReason::kEndOfGeneration, true), FinishReason::kToolCalls);
  EXPECT_EQ(FinishFor(StopReason::kMaxTokens, false), FinishReason::kLength);
  EXPECT_EQ(FinishFor(StopReason::kContextFull, false), FinishReason::kLength);
  EXPECT_EQ(FinishFor(StopReason::kEndOfGeneration, false), FinishReason::kStop);
  EXPECT_EQ(FinishFor(StopReason::kStopString, false), FinishReason::kStop);
  EXPECT_STREQ(FinishReasonName(FinishReason::kToolCalls), "tool_calls");
  EXPECT_STREQ(FinishReasonName(FinishReason::kCancelled), "cancelled");
}

}  // namespace
}  // namespace hearth::engine
