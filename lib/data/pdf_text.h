// The text layer of a PDF, through poppler-cpp (Debian's libpoppler-cpp). Pages are separated by a blank
// line. Encrypted PDFs and PDFs without a text layer (scans, image-only) are reported, not OCR'd.
#pragma once

#include <string>
#include <string_view>

namespace hearth::data {

struct PdfText {
  std::string text;         // UTF-8, pages separated by "\n\n"
  std::string skip_reason;  // "encrypted PDF ...", "no text layer ...", "not a readable PDF ..."; "" on success
  int pages = 0;
};

// Extracts the text of the PDF in `bytes`. Never throws for bad input (it sets skip_reason). Thread-safe
// (calls into poppler are serialized: poppler's global state is not safe to share).
PdfText pdf_text(std::string_view bytes);

}  // namespace hearth::data
