// Ollama Modelfiles: the text side of `hearth export ollama` — which prompt family a model's Jinja chat
// template is, the Ollama TEMPLATE (Go text/template) and stop strings that reproduce it, and the Modelfile
// itself. Not here: writing the GGUF files or the folder (lib/convert, apps/export.cpp), running `ollama`.
//
// Formats: Ollama's docs/modelfile.md (instructions, `"""` strings) and docs/template.md (the variables a
// TEMPLATE sees), https://github.com/ollama/ollama/tree/main/docs. How Ollama fills them, as assumed here:
// a Modelfile SYSTEM is prepended as a system message when a request has none; .System is every system
// message's content joined by "\n\n"; .Messages is the conversation (system messages included) with
// consecutive messages of the same role merged by "\n\n".
//
// What "reproduces" means: for conversations of system/user/assistant messages (no tools, no images) whose
// roles alternate (an optional leading system message, then user/assistant/.../user) and whose contents have
// no leading or trailing whitespace, Ollama's rendering of ollama_template(f) equals the family's Jinja
// template rendered with add_generation_prompt=true, minus the leading BOS text (llama.cpp and Ollama add
// BOS as a token themselves). Outside that: the Llama 3 and Mistral templates `trim` message contents and
// Go templates cannot; Ollama merges consecutive same-role messages and the Jinja templates do not (Mistral's
// raises); a template's default system prompt is reproduced only when passed as SYSTEM (chat_default_system).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace hearth::chat {

enum class ChatFamily {
  kLlama3,   // <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> (Meta-Llama-3-*-Instruct)
  kChatML,   // <|im_start|>role\n...<|im_end|>\n (Qwen2/2.5/3 without thinking, SmolLM2)
  kMistral,  // [INST] ...[/INST] ...</s>, system folded into the last user turn (Mistral-7B-Instruct-v0.3)
};

// "llama3", "chatml", "mistral".
const char* chat_family_name(ChatFamily family);

// The family whose Ollama template reproduces `jinja_source` (a tokenizer_config.json chat_template), or
// std::nullopt. The markers pick a candidate (<|start_header_id|> or <|eot_id|>: Llama 3; <|im_start|>:
// ChatML; [INST]: Mistral); the candidate is claimed only when the template, rendered by hearth's Jinja
// engine with the family's usual special tokens (Llama 3: <|begin_of_text|>/<|eot_id|>; Mistral: <s>/</s>;
// ChatML: none) and its default system prompt passed as a system message (see chat_default_system),
// renders probe conversations (with and without a system message, multi-turn) exactly as the family's
// Ollama template does. So look-alikes are not claimed: Llama 3.1/3.2/3.3 (their system header carries
// "Cutting Knowledge Date" and a "Today Date" that 3.2 takes from the clock), Llama 2 and Mistral v0.1/v0.2
// ([INST] with other spacing or <<SYS>>), Mistral Nemo, and templates that raise on a system message.
// Throws hearth::FormatError when the source does not parse.
std::optional<ChatFamily> chat_family_detect(const std::string& jinja_source);

// The system prompt the template writes when a conversation has none (Qwen2.5's "You are Qwen, created by
// Alibaba Cloud. You are a helpful assistant.", SmolLM2's), found by rendering a one-user-message
// conversation with and without a probe system message and taking the text the template wrote in its place.
// std::nullopt when the template writes none (or nothing that a system message would replace), or raises.
// Pass the result as the Modelfile's SYSTEM so that Ollama's prompt matches. Throws hearth::FormatError when
// the source does not parse.
std::optional<std::string> chat_default_system(const std::string& jinja_source);

// The Ollama TEMPLATE text for `family` (see the top of this file for what it reproduces). It uses .Messages
// (.Role, .Content) and $.System only.
std::string ollama_template(ChatFamily family);

// The `PARAMETER stop` strings for `family`: the end-of-turn markers (Llama 3: <|eot_id|>, <|start_header_id|>,
// <|end_header_id|>; ChatML: <|im_end|>, <|im_start|>; Mistral: </s>, [INST], [/INST]).
std::vector<std::string> ollama_stops(ChatFamily family);

struct Modelfile {
  std::string from;                    // FROM: a path ("./model.gguf") or a model name
  std::optional<std::string> adapter;  // ADAPTER: a LoRA GGUF, when the adapter is not merged
  std::string template_text;           // TEMPLATE; left out when empty
  std::optional<std::string> system;   // SYSTEM
  std::vector<std::string> stops;      // one `PARAMETER stop` line each
  // Other PARAMETER lines (name, value), e.g. {"num_ctx", "8192"}.
  std::vector<std::pair<std::string, std::string>> parameters;
};

// The Modelfile text (docs/modelfile.md): one instruction a line in the order FROM, ADAPTER, TEMPLATE, SYSTEM,
// PARAMETER stop..., PARAMETER name value..., ending in a newline. TEMPLATE and SYSTEM are always written as
// `"""` strings, so are other values with a line break; other values are bare, or in quotes when they are
// empty, start with a quote or have leading or trailing blanks (stops are always quoted). Every value is
// checked to read back exactly under Ollama's parser rules: a value ends at the first line end where the text
// so far is a complete quoted string (its closing quotes are the last three of the line, so a value ending in
// a quote, written `..."""""`, reads back); characters Go's strconv.IsPrint rejects are dropped, tab, CR and
// LF inside quotes excepted.
// Throws hearth::ConfigError "modelfile: <field>: ..." when a value cannot be written so: one containing `"""`
// (Ollama would read some back, but a reader going by the docs would end the string there), a FROM or ADAPTER
// with a line break, an empty FROM, a parameter name other than [A-Za-z0-9_]+, control or other non-printing
// characters (C0/C1 controls but tab/CR/LF, non-ASCII spaces, format characters such as U+200B or U+FEFF,
// private-use characters), or invalid UTF-8. Unassigned code points are not checked.
std::string modelfile_render(const Modelfile& modelfile);

}  // namespace hearth::chat
