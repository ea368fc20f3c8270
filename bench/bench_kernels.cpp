// bench_kernels: the block matrix-vector kernels alone (quant/matvec.h), one thread, per type and variant.
//
//   bench_kernels [--rows 4096] [--cols 4096] [--batch 1] [--reps 20] [--types Q4_0x16,F32] [--variants avx512vnni]
// Prints the weight bytes read per second for a [rows, cols] matrix times `batch` activation rows (decode:
// batch 1), for every variant this CPU runs. Compare with the read bandwidth of ../shared/tools/stream.c
// (one thread) to see whether a kernel is bandwidth- or compute-bound. The default matrix fits in a large last-level
// cache; --rows 65536 --cols 2048 reads from memory, as decode does. The block matrices lie in huge pages, as a
// model's do once loaded (io/huge_pages.h). "Q4_0x16", "Q8_0x16", "Q4_Kx16", "Q6_Kx16" are those types in the
// interleaved layout models load them into (quant/interleave.h). "F32" is quant::matmul_f32, the float32 product
// serve uses for 2-12 rows (its weights in ordinary pages). --types and --variants keep the listed rows only (a
// scalar row from memory takes minutes); types whose blocks do not divide --cols are skipped (576 columns: the
// 135M shape's, no 256-weight K-quant blocks).
#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "io/huge_pages.h"
#include "quant/codec.h"
#include "quant/matvec.h"

using namespace hearth::quant;

int main(int argc, char** argv) {
  int64_t rows = 4096, cols = 4096, batch = 1;
  int reps = 20;
  std::vector<std::string> types, variants;
  const std::pair<GgmlType, bool> kinds[] = {
      {GgmlType::kQ8_0, false}, {GgmlType::kQ8_0, true},  {GgmlType::kQ4_0, false}, {GgmlType::kQ4_0, true},
      {GgmlType::kQ5_0, false}, {GgmlType::kQ4_K, false}, {GgmlType::kQ4_K, true},  {GgmlType::kQ5_K, false},
      {GgmlType::kQ6_K, false}, {GgmlType::kQ6_K, true}};
  const auto kind_name = [](GgmlType type, bool interleaved) {
    return std::string(ggml_type_name(type)) + (interleaved ? "x16" : "");
  };
  std::vector<std::string> type_names{"F32"};
  for (auto [type, interleaved] : kinds) type_names.push_back(kind_name(type, interleaved));
  CLI::App app{"hearth block-kernel benchmark"};
  app.add_option("--rows", rows);
  app.add_option("--cols", cols);
  app.add_option("--batch", batch);
  app.add_option("--reps", reps);
  app.add_option("--types", types, "Rows to run, e.g. Q4_0x16,Q6_K,F32 (default: all)")
      ->delimiter(',')
      ->check(CLI::IsMember(type_names));
  app.add_option("--variants", variants, "Variants to run: scalar, avx2, avx512, avx512vnni (default: all)")
      ->delimiter(',')
      ->check(CLI::IsMember({"scalar", "avx2", "avx512", "avx512vnni"}));
  CLI11_PARSE(app, argc, argv);
  const auto wanted = [](const std::vector<std::string>& list, const std::string& name) {
    return list.empty() || std::find(list.begin(), list.end(), name) != list.end();
  };
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> w(static_cast<size_t>(rows * cols)), x(static_cast<size_t>(cols * batch));
  for (auto& v : w) v = normal(rng);
  for (auto& v : x) v = normal(rng) * 50;
  std::cout << fmt::format("{:<7} {:<11} {:>9} {:>10} {:>9}\n", "type", "variant", "MiB", "ms/product", "GB/s");
  for (auto [type, interleaved] : kinds) {
    const std::string name = kind_name(type, interleaved);
    if (!wanted(types, name) || cols % ggml_type_block_size(type) != 0) continue;
    // The weights in huge pages, as a model's are once loaded (io/huge_pages.h).
    const size_t bytes = ggml_type_nbytes(type, rows * cols);
    const std::shared_ptr<uint8_t> blocks = hearth::io::huge_page_buffer(bytes);
    quantize(type, w.data(), blocks.get(), rows * cols);
    if (interleaved) {
      const std::vector<uint8_t> plain(blocks.get(), blocks.get() + bytes);
      interleave_rows(type, plain.data(), blocks.get(), rows, cols, 0, rows);
    }
    std::vector<Activations> acts(static_cast<size_t>(batch));
    for (int64_t i = 0; i < batch; ++i) activations_prepare(type, x.data() + i * cols, cols, acts[i]);
    std::vector<float> y(static_cast<size_t>(rows * batch));
    const size_t row_bytes = ggml_type_nbytes(type, cols);
    for (const char* variant : {"scalar", "avx2", "avx512", "avx512vnni"}) {
      if (!wanted(variants, variant)) continue;
      double best = 1e9;
      bool ran = true;
      for (int r = 0; r < reps && ran; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        ran = interleaved ? detail::matmul_interleaved_with(variant, type, blocks.get(), rows, acts.data(), batch,
                                                            y.data(), rows, 0, rows)
                          : detail::matmul_rows_with(variant, type, blocks.get(), row_bytes, acts.data(), batch,
                                                     y.data(), rows, 0, rows);
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      if (!ran) continue;
      std::cout << fmt::format("{:<7} {:<11} {:>9.1f} {:>10.3f} {:>9.2f}\n", name, variant, bytes / 1048576.0,
                               best * 1e3, bytes / best / 1e9);
    }
  }
  // Float32 rows: the same matrix, unquantized.
  for (const char* variant : {"scalar", "avx2", "avx512", "avx512vnni"}) {
    if (!wanted(types, "F32") || !wanted(variants, variant)) continue;
    std::vector<float> y(static_cast<size_t>(rows * batch));
    double best = 1e9;
    bool ran = true;
    for (int r = 0; r < reps && ran; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      ran = detail::matmul_f32_with(variant, w.data(), cols, x.data(), batch, y.data(), rows, 0, rows);
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    if (!ran) continue;
    const double bytes = static_cast<double>(w.size() * sizeof(float));
    std::cout << fmt::format("{:<7} {:<11} {:>9.1f} {:>10.3f} {:>9.2f}\n", "F32", variant, bytes / 1048576.0,
                             best * 1e3, bytes / best / 1e9);
  }
  return 0;
}
