// hearth report RUN_DIR [--out FILE]: a self-contained HTML report of a training run.
#include <iostream>

#include "apps/commands.h"
#include "io/atomic_file.h"
#include "train/report.h"

namespace hearth::app {
namespace {

struct ReportOptions {
  std::string run_dir;
  std::string out;  // default RUN_DIR/report.html
};

void run_report(const ReportOptions& o, const GlobalOptions& g) {
  std::string html = train::report_html(o.run_dir);
  std::filesystem::path out = o.out.empty() ? std::filesystem::path(o.run_dir) / "report.html"
                                            : std::filesystem::path(o.out);
  io::atomic_write(out, html);
  if (g.json) json_print({{"report", out.string()}});
  else std::cout << out.string() << std::endl;
}

}  // namespace

void add_report(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto o = std::make_shared<ReportOptions>();
  auto* cmd = app.add_subcommand("report", "Write an HTML report (loss curves, settings) of a training run");
  cmd->add_option("run_dir", o->run_dir, "Run directory (output_dir of the recipe)")->required();
  cmd->add_option("--out", o->out, "Output file (default RUN_DIR/report.html)");
  cmd->callback([o, &g, &run] { run = [o, &g] { run_report(*o, g); }; });
}

}  // namespace hearth::app
