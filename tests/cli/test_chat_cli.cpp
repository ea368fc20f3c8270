// End to end: `hearth chat` as a user runs it. In a pseudo-terminal (forkpty): typing messages and commands,
// streamed replies, Ctrl-C during a reply and at the prompt, Ctrl-D to leave. With piped stdin: one reply per
// line, equal to `hearth generate --chat` for a single-turn prompt, history kept across lines.
#include <catch2/catch.hpp>

#include <thread>

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "cli_util.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "test_paths.h"

using namespace hearth;
using test::run_hearth;
namespace fs = std::filesystem;

namespace {

constexpr const char* kPrompt = ">>> ";

// `hearth ARGS` on the slave side of a pseudo-terminal; the test types on the master side and reads what the
// terminal shows (with the terminal's \r\n line ends).
class PtyHearth {
 public:
  explicit PtyHearth(const std::vector<std::string>& args) {
    struct winsize ws {};
    ws.ws_row = 40;
    ws.ws_col = 200;
    pid_ = ::forkpty(&fd_, nullptr, nullptr, &ws);
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      std::vector<std::string> all{test::hearth_binary().string()};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::setenv("TERM", "xterm", 1);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~PtyHearth() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) ::close(fd_);
  }
  PtyHearth(const PtyHearth&) = delete;
  PtyHearth& operator=(const PtyHearth&) = delete;

  // Types `line` and Enter; returns what the terminal showed up to the next prompt.
  std::string enter(const std::string& line) {
    type(line + "\r");
    return until(std::string("\r\n") + kPrompt);
  }

  void type(const std::string& keys) { REQUIRE(::write(fd_, keys.data(), keys.size()) == ssize_t(keys.size())); }

  // Reads until `text` shows after the mark; returns what came between the mark and the end of `text`, and
  // moves the mark past it. Fails the test after `seconds`.
  std::string until(const std::string& text, double seconds = 30) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    size_t at;
    bool open = true;
    while ((at = out_.find(text, mark_)) == std::string::npos && open && std::chrono::steady_clock::now() < end)
      open = read_some(50);
    INFO("waiting for '" << text << "'" << (open ? "" : " (hearth ended)")
                         << "; the terminal shows: " << out_.substr(mark_));
    REQUIRE(at != std::string::npos);
    std::string got = out_.substr(mark_, at + text.size() - mark_);
    mark_ = at + text.size();
    return got;
  }
  // Reads until at least `bytes` show after the mark (without moving it).
  void some_output(size_t bytes = 1, double seconds = 30) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    bool open = true;
    while (out_.size() < mark_ + bytes && open && std::chrono::steady_clock::now() < end) open = read_some(5);
    REQUIRE(out_.size() >= mark_ + bytes);
  }
  // The exit code, after reading what is left; fails the test when the process has not ended in `seconds`.
  int exit_code(double seconds = 20) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    int status = 0;
    pid_t done = 0;
    while ((done = ::waitpid(pid_, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < end) read_some(20);
    INFO("hearth chat has not exited; the terminal shows: " << out_.substr(mark_));
    REQUIRE(done == pid_);
    exited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  // Waits up to `ms` for output and appends it; false once the terminal is closed (the process ended).
  bool read_some(int ms) {
    struct pollfd p {
      fd_, POLLIN, 0
    };
    if (::poll(&p, 1, ms) <= 0) return true;
    char buf[4096];
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n <= 0) return false;  // EIO: the slave side is closed
    out_.append(buf, static_cast<size_t>(n));
    return true;
  }

  pid_t pid_ = -1;
  int fd_ = -1;
  bool exited_ = false;
  std::string out_;
  size_t mark_ = 0;
};

// The terminal's text as the program wrote it: \n line ends, no colour codes (ESC [ ... m).
std::string plain_text(std::string s) {
  for (size_t at; (at = s.find("\r\n")) != std::string::npos;) s.replace(at, 2, "\n");
  for (size_t at; (at = s.find("\x1b[")) != std::string::npos;) s.erase(at, s.find('m', at) + 1 - at);
  return s;
}

// The reply the terminal showed for a message: what came after the message's echo, up to the next prompt,
// without the end marker and the newline. Keys typed before the line editor takes the terminal are echoed
// twice (by the terminal, then by the editor).
std::string reply_shown(const std::string& shown, const std::string& message) {
  std::string s = plain_text(shown);
  REQUIRE(s.rfind(message + "\n", 0) == 0);
  while (s.rfind(message + "\n", 0) == 0) s.erase(0, message.size() + 1);
  REQUIRE(s.size() >= 5);
  s.resize(s.size() - 5);  // "\n>>> "
  for (const char* marker : {" [--max-tokens reached]", " [interrupted]"})
    if (s.size() >= std::string(marker).size() &&
        s.compare(s.size() - std::string(marker).size(), std::string::npos, marker) == 0)
      s.resize(s.size() - std::string(marker).size());
  return s;
}

std::vector<nlohmann::json> json_lines(const std::string& out) {
  std::vector<nlohmann::json> lines;
  size_t start = 0;
  for (size_t end; (end = out.find('\n', start)) != std::string::npos; start = end + 1)
    lines.push_back(nlohmann::json::parse(out.substr(start, end - start)));
  return lines;
}

// `hearth --json generate --chat` for one user message, greedy.
nlohmann::json generate_chat(const std::string& message, int max_tokens) {
  auto r = run_hearth("-t 1 --json generate --chat -m '" + test::stories_dir().string() + "' -p '" + message +
                      "' --temp 0 -n " + std::to_string(max_tokens));
  REQUIRE(r.code == 0);
  return nlohmann::json::parse(r.out);
}

// `hearth ARGS < input` where input holds `lines`.
test::Run chat_piped(const std::string& args, const std::string& lines) {
  const auto input = test::scratch("chat") / "input.txt";
  io::atomic_write(input, lines);
  return run_hearth(args + " < " + test::quote(input));
}

}  // namespace

// stories260K with a 4096-token context (its RoPE positions go on; only the text gets worse): a 2000-token reply
// streams for ~2 s, so a Ctrl-C typed when it starts lands inside it even on a loaded machine. With 512 tokens
// the reply was over in ~0.15 s, and three tries in a row missed it on a busy CI machine.
fs::path stories_long_context(const fs::path& dir) {
  const fs::path out = dir / "stories260K-4k";
  fs::remove_all(out);
  fs::copy(test::stories_dir(), out, fs::copy_options::recursive);
  for (const auto& [file, key] : {std::pair{"config.json", "max_position_embeddings"},
                                  std::pair{"tokenizer_config.json", "model_max_length"}}) {
    auto j = io::json_read(out / file);
    REQUIRE(j[key] == 512);
    j[key] = 4096;
    io::atomic_write(out / file, j.dump(2));
  }
  return out;
}

TEST_CASE("chat in a terminal: reply, commands, Ctrl-C during a reply and at the prompt, Ctrl-D", "[cli][chat]") {
  const fs::path dir = test::scratch("chat_pty");
  PtyHearth chat({"-t", "1", "chat", "-m", stories_long_context(dir).string(), "--temp", "0", "-n", "2000"});
  CHECK_THAT(chat.until(kPrompt), Catch::Contains("/help for commands"));

  const std::string first = reply_shown(chat.enter("Hello"), "Hello");
  CHECK(first.size() > 20);  // a streamed story
  CHECK_THAT(chat.enter("/save " + (dir / "one.json").string()), Catch::Contains("saved 2 messages"));
  auto one = io::json_read(dir / "one.json");
  REQUIRE(one.size() == 2);
  CHECK(one[0] == nlohmann::json({{"role", "user"}, {"content", "Hello"}}));
  CHECK(one[1]["role"] == "assistant");
  CHECK(one[1]["content"] == first);  // what was shown is what was kept

  auto unknown = chat.enter("/nonsense");
  CHECK_THAT(unknown, Catch::Contains("unknown command '/nonsense'"));
  CHECK_THAT(unknown, Catch::Contains("/help /reset /system /adapter /save /load /exit"));
  CHECK_THAT(chat.enter("/reset"), Catch::Contains("conversation cleared"));
  CHECK_THAT(chat.enter("/system You tell long stories."), Catch::Contains("system message set"));
  CHECK_THAT(chat.enter("/save " + (dir / "two.json").string()), Catch::Contains("saved 1 message "));
  CHECK(io::json_read(dir / "two.json") ==
        nlohmann::json::parse(R"([{"role": "system", "content": "You tell long stories."}])"));

  // Ctrl-C once the reply streams: the reply stops, the REPL stays. A reply that ended before the key arrived
  // is tried again.
  // The key goes once 40 bytes of the reply show (not at its first byte, which may come before decoding starts).
  bool interrupted = false;
  std::string shown;
  for (int attempt = 0; attempt < 3 && !interrupted; ++attempt) {
    chat.enter("/reset");
    chat.type("Tell me a long story\r");
    chat.until("Tell me a long story\r\n");
    chat.some_output(40);
    chat.type("\x03");
    shown = chat.until(std::string("\r\n") + kPrompt);
    interrupted = shown.find("[interrupted]") != std::string::npos;
  }
  INFO("the last try showed: " << shown);
  REQUIRE(interrupted);
  chat.enter("/save " + (dir / "three.json").string());
  auto three = io::json_read(dir / "three.json");
  REQUIRE(three.size() == 3);  // system, user, the interrupted reply
  CHECK(three[0]["role"] == "system");
  CHECK(three[2]["role"] == "assistant");
  CHECK(three[2]["interrupted"] == true);

  // Ctrl-C at the prompt drops the typed line; the next message is answered, after the interrupted turn. The keys
  // come at once after the reply, so they may land before libedit reads the terminal again (the tty then echoes
  // and drops the line itself): the ^C is acted on all the same.
  chat.type("abc");
  chat.until("abc");
  chat.type("\x03");
  CHECK_THAT(chat.until(kPrompt), Catch::Contains("^C"));
  CHECK(reply_shown(chat.enter("Once upon a time"), "Once upon a time").size() > 20);
  chat.enter("/save " + (dir / "four.json").string());
  auto four = io::json_read(dir / "four.json");
  REQUIRE(four.size() == 5);
  CHECK(four[2] == three[2]);
  CHECK(four[3] == nlohmann::json({{"role", "user"}, {"content", "Once upon a time"}}));

  chat.type("\x04");  // Ctrl-D on an empty line
  CHECK(chat.exit_code() == 0);
}

TEST_CASE("chat with piped stdin: one reply per line, as generate --chat, history kept", "[cli][chat]") {
  const std::string args = "-t 1 --json chat -m '" + test::stories_dir().string() + "' --temp 0 -n 40";
  auto r = chat_piped(args, "Hello\nTell me a story\n");
  REQUIRE(r.code == 0);
  auto replies = json_lines(r.out);
  REQUIRE(replies.size() == 2);
  auto hello = generate_chat("Hello", 40), story = generate_chat("Tell me a story", 40);
  CHECK(replies[0]["token_ids"] == hello["token_ids"]);
  CHECK(replies[0]["text"] == hello["text"]);
  CHECK(replies[0]["prompt_tokens"] == hello["prompt_tokens"]);
  // The second prompt holds the first turn too.
  CHECK(replies[1]["prompt_tokens"].get<int>() > story["prompt_tokens"].get<int>() + 40);
  CHECK(replies[1]["dropped_turns"] == 0);

  // After /reset the second line is a single-turn prompt again; commands print nothing on stdout.
  auto reset = chat_piped(args, "Hello\n/reset\nTell me a story\n");
  REQUIRE(reset.code == 0);
  auto after_reset = json_lines(reset.out);
  REQUIRE(after_reset.size() == 2);
  CHECK(after_reset[0]["token_ids"] == hello["token_ids"]);
  CHECK(after_reset[1]["token_ids"] == story["token_ids"]);
  CHECK(after_reset[1]["text"] == story["text"]);
  CHECK_THAT(reset.err, Catch::Contains("conversation cleared"));

  // Without --json: the replies as text, each ending with a newline.
  auto plain = chat_piped("-t 1 chat -m '" + test::stories_dir().string() + "' --temp 0 -n 40",
                          "Hello\n\nTell me a story\n");
  REQUIRE(plain.code == 0);
  CHECK(plain.out == replies[0]["text"].get<std::string>() + "\n" + replies[1]["text"].get<std::string>() + "\n");
}

TEST_CASE("chat with piped stdin drops the oldest turn when the context fills, and says so", "[cli][chat]") {
  // 400-token replies: the second prompt (first turn included) would leave less than 256 of 512 tokens.
  auto r = chat_piped("-t 1 --json chat -m '" + test::stories_dir().string() + "' --temp 0 -n 400",
                      "Hello\nTell me a story\n");
  REQUIRE(r.code == 0);
  auto replies = json_lines(r.out);
  REQUIRE(replies.size() == 2);
  REQUIRE(replies[0]["completion_tokens"] == 400);
  CHECK(replies[1]["dropped_turns"] == 1);
  CHECK(replies[1]["token_ids"] == generate_chat("Tell me a story", 400)["token_ids"]);
  CHECK_THAT(r.err, Catch::Contains("dropped the oldest 1 turn (2 messages)"));
}

TEST_CASE("chat with piped stdin: /save and /load carry a conversation across runs, a bad file is an error",
          "[cli][chat]") {
  const fs::path dir = test::scratch("chat_files");
  const std::string args = "-t 1 --json chat -m '" + test::stories_dir().string() + "' --temp 0 -n 20";
  const auto saved = dir / "saved.json";
  auto first = chat_piped(args + " --system 'Be kind.'", "Hello\n/save " + saved.string() + "\n");
  REQUIRE(first.code == 0);
  auto conversation = io::json_read(saved);
  REQUIRE(conversation.size() == 3);
  CHECK(conversation[0] == nlohmann::json({{"role", "system"}, {"content", "Be kind."}}));

  // Loaded in another run, the conversation goes on: the same prompt as one that never stopped.
  auto loaded = chat_piped(args, "/load " + saved.string() + "\nTell me a story\n");
  auto straight = chat_piped(args + " --system 'Be kind.'", "Hello\nTell me a story\n");
  REQUIRE(loaded.code == 0);
  REQUIRE(straight.code == 0);
  CHECK_THAT(loaded.err, Catch::Contains("loaded 3 messages"));
  CHECK(json_lines(loaded.out).at(0)["token_ids"] == json_lines(straight.out).at(1)["token_ids"]);

  io::atomic_write(dir / "bad.json", R"([{"role": "user", "content": "x"}, {"role": "user", "content": "y"}])");
  auto bad = chat_piped(args, "/load " + (dir / "bad.json").string() + "\nHello\n");
  CHECK(bad.code == 4);
  CHECK_THAT(bad.err, Catch::Contains("messages[1]: role 'user'; expected 'assistant'"));
  REQUIRE(json_lines(bad.out).size() == 1);  // it stopped there: no reply, the error object
  CHECK(json_lines(bad.out)[0]["error"]["exit_code"] == 4);
  auto missing = chat_piped(args, "/load " + (dir / "missing.json").string() + "\n");
  CHECK(missing.code == 3);
  auto unknown = chat_piped(args, "/quit\n");
  CHECK(unknown.code == 2);
  CHECK_THAT(unknown.err, Catch::Contains("unknown command '/quit'; the commands are /help"));
}

TEST_CASE("hearth help lists chat, and chat has generate's sampling flags", "[cli][chat]") {
  auto help = run_hearth("help");
  REQUIRE(help.code == 0);
  CHECK_THAT(help.out, Catch::Contains("Chat with a model in the terminal"));
  auto chat = run_hearth("help chat");
  REQUIRE(chat.code == 0);
  for (const char* flag : {"--temperature", "--temp", "--top-k", "--top-p", "--min-p", "--repeat-penalty",
                           "--repeat-last-n", "--seed", "--stop", "--max-tokens", "--adapter", "--system"})
    CHECK_THAT(chat.out, Catch::Contains(flag));
  auto bad = run_hearth("chat -m '" + test::stories_dir().string() + "' --temperature -1 < /dev/null");
  CHECK(bad.code == 2);
  CHECK(run_hearth("chat -m /nonexistent < /dev/null").code == 3);
}
