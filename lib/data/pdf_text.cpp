#include "data/pdf_text.h"

#include <memory>
#include <mutex>

#include <poppler/cpp/poppler-document.h>
#include <poppler/cpp/poppler-global.h>
#include <poppler/cpp/poppler-page.h>

#include "core/log.h"

namespace hearth::data {
namespace {

std::mutex g_poppler_mutex;

// poppler prints parse complaints on stderr by default; route them to the debug log.
void poppler_quiet(const std::string& message, void*) { log::debug("poppler: {}", message); }

}  // namespace

PdfText pdf_text(std::string_view bytes) {
  std::lock_guard<std::mutex> lock(g_poppler_mutex);
  poppler::set_debug_error_function(poppler_quiet, nullptr);
  PdfText out;
  if (bytes.substr(0, 1024).find("%PDF-") == std::string_view::npos) {
    out.skip_reason = "not a PDF; expected a file starting with %PDF-";
    return out;
  }
  std::unique_ptr<poppler::document> doc(
      poppler::document::load_from_raw_data(bytes.data(), static_cast<int>(bytes.size())));
  if (!doc) {
    out.skip_reason = "not a readable PDF (damaged or unsupported)";
    return out;
  }
  if (doc->is_locked()) {
    out.skip_reason = "encrypted PDF; expected one that opens without a password";
    return out;
  }
  out.pages = doc->pages();
  bool any_text = false;
  for (int i = 0; i < out.pages; ++i) {
    std::unique_ptr<poppler::page> page(doc->create_page(i));
    if (!page) continue;
    auto utf8 = page->text().to_utf8();
    std::string text(utf8.begin(), utf8.end());
    for (auto& c : text)
      if (c == '\f') c = '\n';
    if (text.find_first_not_of(" \t\r\n") != std::string::npos) any_text = true;
    if (!out.text.empty()) out.text += "\n\n";
    out.text += text;
  }
  if (!any_text) {
    out.text.clear();
    out.skip_reason = out.pages == 0 ? "PDF has no pages"
                                     : "PDF has no text layer (image-only or scanned); OCR it first";
  }
  return out;
}

}  // namespace hearth::data
