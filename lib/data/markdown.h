// Markdown notes: front matter, and the syntax of note vaults (Obsidian, Logseq) that is markup rather than
// text. Not here: the file-level dispatch (extract.h).
#pragma once

#include <string>
#include <string_view>

namespace hearth::data {

// Markdown without its front matter (a leading "---" YAML or "+++" TOML block).
std::string_view markdown_body(std::string_view text);

// Vault syntax reduced to what a reader sees, outside code (fenced blocks and `inline code` are kept as written):
//   [[Note]] -> Note   [[Note|shown]] -> shown   [[Note#Heading]] -> Note > Heading   [[#Heading]] -> Heading
//   [[Note#^block]] -> Note   #[[tag words]] -> tag words
//   removed: ![[embeds]] (notes, images, PDFs), Logseq {{embed ...}} / {{query ...}} macros, ((block-uuid))
//   references, %% comments %% (also across lines), Logseq property lines ("key:: value", also as a bullet).
// Text without any of "[[", "((", "{{", "%%" or "::" is returned unchanged.
std::string markdown_vault_text(std::string_view text);

}  // namespace hearth::data
