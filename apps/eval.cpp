// hearth eval: mean negative log-likelihood and perplexity of a model on a text file.
#include <iostream>
#include <optional>

#include <fmt/format.h>

#include "apps/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "infer/evaluate.h"
#include "infer/generator.h"
#include "model/causal_lm.h"
#include "tokenizer/tokenizer.h"

namespace hearth::app {
namespace {

struct EvalOptions {
  std::string model;
  std::string text_file;
  std::optional<int64_t> ctx;     // unset: the model's context
  std::optional<int64_t> stride;  // unset: ctx / 2
  std::string dtype = "float32";
  std::string reference;  // a model to compare against (KL divergence, top-1 agreement)
};

void run_eval(const EvalOptions& o, const GlobalOptions& g) {
  // Given explicitly, 0 or a negative number is an error, not "the default".
  if (o.ctx && *o.ctx <= 0)
    throw ConfigError(fmt::format("--ctx: expected a positive number of tokens, got {}", *o.ctx));
  if (o.stride && *o.stride <= 0)
    throw ConfigError(fmt::format("--stride: expected a positive number of tokens, got {}", *o.stride));
  model_dir_check(o.model);
  std::string text = text_file_read(o.text_file, "--text-file");
  model::LoadOptions load{model::device_parse(g.device, "--device"), model::dtype_parse(o.dtype, "--dtype")};
  auto tokenizer = tokenizer::Tokenizer::load(o.model);
  auto model_owner = model::causal_lm_load(o.model, load);
  const model::CausalLM& model = *model_owner;
  infer::vocab_check(tokenizer, model.config(), o.model);
  std::unique_ptr<model::CausalLM> reference;
  if (!o.reference.empty()) {
    model_dir_check(o.reference);
    reference = model::causal_lm_load(o.reference, load);
  }
  auto ids = tokenizer.encode(text);
  int64_t ctx = o.ctx ? *o.ctx : model.config().max_position_embeddings;
  int64_t stride = o.stride ? *o.stride : std::max<int64_t>(1, ctx / 2);
  Progress progress("eval", 0, "windows");
  auto r = infer::evaluate_nll(
      model, ids, ctx, stride, [&](int64_t done, int64_t total) { progress.update(done); }, reference.get());
  progress.finish();
  if (g.json) {
    nlohmann::json j = {{"mean_nll", r.mean_nll}, {"perplexity", r.perplexity},
                        {"tokens", ids.size()},   {"tokens_scored", r.tokens_scored},
                        {"windows", r.windows},   {"ctx", ctx},
                        {"stride", stride}};
    if (reference) {
      j["reference"] = o.reference;
      j["reference_perplexity"] = r.reference_perplexity;
      j["mean_kl"] = r.mean_kl;
      j["top1_agreement"] = r.top1_agreement;
    }
    json_print(j);
  } else {
    std::cout << fmt::format(
                     "mean NLL {:.6f} nats/token, perplexity {:.4f} ({} tokens scored, {} windows, ctx {}, "
                     "stride {})",
                     r.mean_nll, r.perplexity, r.tokens_scored, r.windows, ctx, stride)
              << std::endl;
    if (reference)
      std::cout << fmt::format(
                       "against {}: its perplexity {:.4f}, mean KL divergence {:.6f} nats/token, top-1 "
                       "agreement {:.2f}%",
                       o.reference, r.reference_perplexity, r.mean_kl, 100 * r.top1_agreement)
                << std::endl;
  }
}

}  // namespace

void add_eval(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto o = std::make_shared<EvalOptions>();
  auto* cmd = app.add_subcommand("eval", "Mean NLL and perplexity of a model on a text file");
  model_option_add(cmd, o->model, "Model folder (Hugging Face layout)")->required();
  cmd->add_option("--text-file", o->text_file, "Text to score")->required();
  cmd->add_option("--ctx", o->ctx, "Window length in tokens (default: the model's context)");
  cmd->add_option("--stride", o->stride, "Window step in tokens (default: ctx / 2)");
  cmd->add_option("--dtype", o->dtype, "float32|bfloat16 (default float32)");
  cmd->add_option("--reference", o->reference,
                  "Also compare with this model (e.g. the float32 original of a quantized file): its perplexity, "
                  "KL divergence and top-1 agreement on the same windows");
  cmd->callback([o, &g, &run] { run = [o, &g] { run_eval(*o, g); }; });
}

}  // namespace hearth::app
