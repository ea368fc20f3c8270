// `hearth chat`'s loop: commands, messages, the two modes. See chat_repl.h.
#include "infer/chat_repl.h"

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <iostream>

#include <fmt/format.h>

#include "chat/chat_command.h"
#include "chat/line_editor.h"
#include "core/error.h"
#include "core/log.h"
#include "core/signals.h"

namespace hearth::infer {
namespace {

constexpr const char* kPrompt = ">>> ";

std::string plural(size_t n, const char* one, const char* many) { return fmt::format("{} {}", n, n == 1 ? one : many); }

// Dim text (notices, markers) only on a terminal that shows colours.
bool dim_supported() {
  const char* term = std::getenv("TERM");
  return ::isatty(STDOUT_FILENO) && term && *term && std::string(term) != "dumb";
}

class Repl {
 public:
  Repl(ChatSession& session, const ChatReplOptions& options)
      : session_(session), options_(options), dim_(options.interactive && dim_supported()) {}

  void run() {
    if (options_.interactive) run_interactive();
    else run_lines();
  }

 private:
  void run_interactive();
  void run_lines();
  // Runs one line (a command or a message). False: leave.
  bool line(const std::string& text);
  bool command(const chat::ChatCommand& c);
  void message(const std::string& text);
  void reply_print(const ChatReply& reply);
  // A command's answer or a notice: on the terminal (dim) in interactive mode, else on stderr.
  void say(const std::string& message);
  bool stop_requested() const;

  ChatSession& session_;
  const ChatReplOptions& options_;
  bool dim_ = false;
};

void Repl::say(const std::string& message) {
  const std::string text = !message.empty() && message.back() == '\n' ? message.substr(0, message.size() - 1) : message;
  if (!options_.interactive) {
    std::cerr << text << std::endl;
    return;
  }
  std::cout << (dim_ ? "\x1b[2m" : "") << text << (dim_ ? "\x1b[0m" : "") << std::endl;
}

// Interactive: SIGINT ends the reply (kept); SIGTERM, and in lines mode SIGINT too, abandon it (thrown).
bool Repl::stop_requested() const {
  if (!interrupt_requested()) return false;
  if (options_.interactive && interrupt_signal() == SIGINT) return true;
  interrupt_check("chat");
  return false;
}

void Repl::run_interactive() {
  if (!options_.banner.empty()) say(options_.banner);
  chat::LineEditor editor;
  for (;;) {
    if (interrupt_signal() == SIGINT) {  // Ctrl-C between reads (after a reply, in a command): as at the prompt
      interrupt_clear();
      std::cout << "^C" << std::endl;
    }
    auto r = editor.read(kPrompt);
    if (r.status == chat::LineEditor::Status::kTerminated) interrupt_check("chat");
    if (r.status == chat::LineEditor::Status::kInterrupted) {
      std::cout << "^C" << std::endl;  // the line is dropped; a fresh prompt follows
      continue;
    }
    if (r.status == chat::LineEditor::Status::kEof) {
      std::cout << std::endl;
      return;
    }
    editor.history_add(r.line);
    try {
      if (!line(r.line)) return;
    } catch (const InterruptedError&) {
      throw;
    } catch (const Error& e) {
      std::cout << std::flush;
      std::cerr << "error: " << e.what() << std::endl;
    }
  }
}

void Repl::run_lines() {
  std::string text;
  while (std::getline(std::cin, text)) {
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (!line(text)) return;
  }
  interrupt_check("chat");  // a signal that ended the read
}

bool Repl::line(const std::string& text) {
  if (auto c = chat::chat_command_parse(text)) return command(*c);
  const std::string message_text = text.rfind("//", 0) == 0 ? text.substr(1) : text;
  if (message_text.find_first_not_of(" \t") == std::string::npos) return true;  // an empty line: nothing to send
  message(message_text);
  return true;
}

bool Repl::command(const chat::ChatCommand& c) {
  using K = chat::ChatCommandKind;
  auto& conversation = session_.conversation();
  auto need_arg = [&c](const char* what) {
    if (c.arg.empty()) throw ConfigError(fmt::format("{}: expected {}", c.name, what));
  };
  switch (c.kind) {
    case K::kHelp: say("commands:\n" + chat::chat_command_help()); break;
    case K::kReset:
      conversation.turns_clear();
      say("conversation cleared" + std::string(conversation.system().empty() ? "" : " (the system message stays)"));
      break;
    case K::kSystem:
      if (c.arg.empty()) {
        say(conversation.system().empty() ? "no system message" : "system message: " + conversation.system());
      } else {
        conversation.system_set(c.arg == "none" ? "" : c.arg);
        say(c.arg == "none" ? "system message removed" : "system message set");
      }
      break;
    case K::kAdapter:
      if (c.arg.empty()) {
        say("adapters (* in use):\n" + session_.adapters_describe());
      } else {
        const std::string name = session_.adapter_use(c.arg);
        say(name.empty() ? "using the base model" : "using adapter " + name);
      }
      break;
    case K::kSave:
      need_arg("a file name");
      chat::conversation_save(conversation, c.arg);
      say(fmt::format("saved {} to {}", plural(conversation.messages().size(), "message", "messages"), c.arg));
      break;
    case K::kLoad:
      need_arg("a file name");
      conversation = chat::conversation_load(c.arg);
      say(fmt::format("loaded {} from {}", plural(conversation.messages().size(), "message", "messages"), c.arg));
      break;
    case K::kExit: return false;
    case K::kUnknown:
      throw ConfigError(fmt::format("unknown command '{}'; the commands are {} (/help says what they do)", c.name,
                                    chat::chat_command_names()));
  }
  return true;
}

void Repl::message(const std::string& text) {
  ChatReplyCallbacks callbacks;
  callbacks.on_trim = [this](const chat::TrimResult& dropped) {
    say(fmt::format("(context full: dropped the oldest {} ({}) to make room for the reply)",
                    plural(dropped.turns, "turn", "turns"), plural(dropped.messages, "message", "messages")));
  };
  const bool stream = !options_.json;
  if (stream) callbacks.on_text = [](const std::string& piece) { std::cout << piece << std::flush; };
  callbacks.stop_requested = [this] { return stop_requested(); };
  ChatReply reply = session_.reply(text, callbacks);
  if (interrupt_signal() == SIGINT) interrupt_clear();  // it stopped this reply (interactive mode)
  reply_print(reply);
}

void Repl::reply_print(const ChatReply& reply) {
  const double prefill_tps = reply.prefill_seconds > 0 ? reply.prompt_tokens / reply.prefill_seconds : 0;
  const double decode_tps = reply.decode_seconds > 0 ? reply.tokens.size() / reply.decode_seconds : 0;
  log::debug("{} prompt tokens, {} generated ({}); prefill {:.1f} tok/s, decode {:.1f} tok/s", reply.prompt_tokens,
             reply.tokens.size(), reply.finish_reason, prefill_tps, decode_tps);
  if (options_.json) {
    nlohmann::ordered_json j = {{"text", reply.text},
                                {"token_ids", reply.tokens},
                                {"prompt_tokens", reply.prompt_tokens},
                                {"completion_tokens", reply.tokens.size()},
                                {"finish_reason", reply.finish_reason},
                                {"dropped_turns", reply.dropped.turns},
                                {"prefill_tokens_per_s", prefill_tps},
                                {"decode_tokens_per_s", decode_tps}};
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
    return;
  }
  if (options_.interactive && reply.finish_reason == "interrupted") {
    std::cout << (dim_ ? " \x1b[2m[interrupted]\x1b[0m" : " [interrupted]");
  } else if (options_.interactive && reply.finish_reason == "length") {
    std::cout << (dim_ ? " \x1b[2m[--max-tokens reached]\x1b[0m" : " [--max-tokens reached]");
  }
  std::cout << std::endl;
}

}  // namespace

void chat_repl_run(ChatSession& session, const ChatReplOptions& options) { Repl(session, options).run(); }

}  // namespace hearth::infer
