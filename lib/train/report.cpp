#include "train/report.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_file.h"

namespace hearth::train {
namespace fs = std::filesystem;

namespace {

struct Series {
  std::string name, color;
  std::vector<std::pair<double, double>> points;  // (step, value)
};

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// A line chart of one or more series sharing axes, as inline SVG.
std::string svg_chart(const std::string& title, const std::vector<Series>& series) {
  const double W = 720, H = 280, L = 72, R = 20, T = 30, B = 40;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const auto& s : series)
    for (auto [x, y] : s.points) {
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  std::string svg = fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}">)",
      W, H, W, H, escape(title));
  svg += fmt::format(R"(<text x="{}" y="20" font-size="14" font-weight="bold">{}</text>)", L, escape(title));
  if (x0 > x1) return svg + R"(<text x="60" y="140">no data</text></svg>)";
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1e-9 + std::abs(y0) * 0.01;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };
  svg += fmt::format(R"(<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#ccc"/>)", L, T, W - L - R,
                     H - T - B);
  for (int i = 0; i <= 4; ++i) {
    double y = y0 + (y1 - y0) * i / 4, x = x0 + (x1 - x0) * i / 4;
    svg += fmt::format(R"(<text x="{}" y="{}" font-size="11" text-anchor="end">{:.3g}</text>)", L - 4, py(y) + 4, y);
    svg += fmt::format(R"(<text x="{}" y="{}" font-size="11" text-anchor="middle">{:.0f}</text>)", px(x), H - B + 16,
                       x);
  }
  svg += fmt::format(R"(<text x="{}" y="{}" font-size="11" text-anchor="middle">step</text>)", (L + W - R) / 2, H - 6);
  double legend_x = L + 10;
  for (const auto& s : series) {
    std::string pts;
    for (auto [x, y] : s.points) pts += fmt::format("{:.2f},{:.2f} ", px(x), py(y));
    svg += fmt::format(R"(<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>)", s.color, pts);
    if (s.points.size() <= 40)
      for (auto [x, y] : s.points)
        svg += fmt::format(R"(<circle cx="{:.2f}" cy="{:.2f}" r="2.5" fill="{}"/>)", px(x), py(y), s.color);
    svg += fmt::format(R"(<text x="{}" y="{}" font-size="12" fill="{}">{}</text>)", legend_x, T + 16, s.color,
                       escape(s.name));
    legend_x += 120;
  }
  return svg + "</svg>";
}

// Rows from RUN_DIR/run.json (the last invocation's plan and result, written by finetune_run): why it stopped,
// steps done of planned, the data. Empty when the run has none (a run from before it was written).
nlohmann::json run_record(const fs::path& run_dir) {
  if (!fs::exists(run_dir / "run.json")) return nullptr;
  return io::json_read(run_dir / "run.json");
}

std::string run_record_html(const fs::path& run_dir) {
  const nlohmann::json rec = run_record(run_dir);
  if (rec.is_null()) return "";
  const auto& plan = rec["plan"];
  const auto& result = rec["result"];
  std::string html;
  html += fmt::format("<tr><td>stop reason</td><td>{}</td></tr>", escape(result.value("stop_reason", "")));
  html += fmt::format("<tr><td>steps done</td><td>{} of {} planned ({} in the last run; {})</td></tr>",
                      result.value("steps", 0), plan.value("total_steps", 0), result.value("steps_trained", 0),
                      result.value("published", false) ? "published" : "nothing published");
  std::string sources;
  for (const auto& d : rec["datasets"])
    sources += fmt::format("{}{} (weight {})", sources.empty() ? "" : ", ", escape(d.value("path", "")),
                           d.value("weight", 1.0));
  html += fmt::format("<tr><td>data</td><td>{} training sequences per epoch, {} validation, {} tokens each; {}</td></tr>",
                      plan.value("epoch_sequences", 0), plan.value("validation_sequences", 0), plan.value("seq_len", 0),
                      sources);
  return html;
}

std::string warnings_html(const fs::path& run_dir) {
  const nlohmann::json rec = run_record(run_dir);
  if (rec.is_null() || rec["result"].value("warnings", nlohmann::json::array()).empty()) return "";
  std::string html = "<h2>Warnings</h2><ul class=\"warnings\">";
  for (const auto& w : rec["result"]["warnings"]) html += "<li>" + escape(w.get<std::string>()) + "</li>";
  return html + "</ul>";
}

}  // namespace

std::string report_html(const fs::path& run_dir) {
  fs::path metrics_path = run_dir / "metrics.jsonl";
  std::istringstream in(io::file_read(metrics_path));
  Series loss{"train loss", "#1f77b4", {}}, eval{"eval loss", "#d62728", {}}, lr{"learning rate", "#2ca02c", {}};
  std::string line;
  int line_no = 0;
  double last_tps = 0, last_elapsed = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    nlohmann::json j = io::json_parse(line, fmt::format("{}:{}", metrics_path.string(), line_no));
    double step = j.value("step", 0.0);
    if (j.contains("loss")) loss.points.emplace_back(step, j["loss"].get<double>());
    if (j.contains("lr")) lr.points.emplace_back(step, j["lr"].get<double>());
    if (j.contains("eval_loss") && j["eval_loss"].get<double>() >= 0)
      eval.points.emplace_back(step, j["eval_loss"].get<double>());
    if (j.contains("tokens_per_s")) last_tps = j["tokens_per_s"].get<double>();
    if (j.contains("elapsed_s")) last_elapsed = j["elapsed_s"].get<double>();
  }
  nlohmann::json recipe;
  if (fs::exists(run_dir / "recipe.resolved.json")) recipe = io::json_read(run_dir / "recipe.resolved.json");
  std::string html =
      "<!doctype html><html><head><meta charset=\"utf-8\"><title>hearth run report</title><style>"
      "body{font-family:system-ui,sans-serif;max-width:800px;margin:2em auto;color:#222}"
      "pre{background:#f6f6f6;padding:1em;overflow:auto}td{padding:2px 12px}"
      ".warnings{background:#fff4e0;border-left:4px solid #e69500;padding:0.5em 2em}</style></head><body>";
  html += fmt::format("<h1>Run report</h1><p>{}</p>", escape(fs::absolute(run_dir).string()));
  html += "<table>";
  html += fmt::format("<tr><td>steps</td><td>{}</td></tr>", loss.points.empty() ? 0 : loss.points.back().first);
  if (!loss.points.empty())
    html += fmt::format("<tr><td>last train loss</td><td>{:.4f}</td></tr>", loss.points.back().second);
  if (!eval.points.empty())
    html += fmt::format("<tr><td>last eval loss</td><td>{:.4f}</td></tr>", eval.points.back().second);
  html += fmt::format("<tr><td>tokens/s</td><td>{:.1f}</td></tr><tr><td>time</td><td>{:.1f} s</td></tr>", last_tps,
                      last_elapsed);
  html += run_record_html(run_dir) + "</table>";
  html += warnings_html(run_dir);
  html += svg_chart("Loss", {loss, eval});
  html += svg_chart("Learning rate", {lr});
  html += "<h2>Settings</h2><pre>" +
          escape(recipe.is_null() ? std::string("(recipe.resolved.json missing)") : recipe.dump(2)) +
          "</pre></body></html>\n";
  return html;
}

}  // namespace hearth::train
