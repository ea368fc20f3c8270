// `hearth report RUN_DIR`: a self-contained HTML page (no external assets, no scripts) with the training and
// eval loss curves and the learning rate as inline SVG, and the run's resolved recipe.
#pragma once

#include <filesystem>
#include <string>

namespace hearth::train {

// Renders the report of RUN_DIR (reads metrics.jsonl and recipe.resolved.json). Throws IoError when the
// run directory has no metrics.jsonl, FormatError for a malformed line (naming the line number).
std::string report_html(const std::filesystem::path& run_dir);

}  // namespace hearth::train
