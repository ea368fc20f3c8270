#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_file.h"

namespace hearth::io {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct DtypeEntry {
  Dtype dtype;
  const char* name;
  size_t size;
};
constexpr DtypeEntry kDtypes[] = {
    {Dtype::kBool, "BOOL", 1}, {Dtype::kU8, "U8", 1},          {Dtype::kI8, "I8", 1},          {Dtype::kI16, "I16", 2},
    {Dtype::kU16, "U16", 2},   {Dtype::kF16, "F16", 2},        {Dtype::kBF16, "BF16", 2},      {Dtype::kI32, "I32", 4},
    {Dtype::kU32, "U32", 4},   {Dtype::kF32, "F32", 4},        {Dtype::kF64, "F64", 8},        {Dtype::kI64, "I64", 8},
    {Dtype::kU64, "U64", 8},   {Dtype::kF8E4M3, "F8_E4M3", 1}, {Dtype::kF8E5M2, "F8_E5M2", 1},
};

const DtypeEntry& dtype_entry(Dtype d) {
  for (const auto& e : kDtypes)
    if (e.dtype == d) return e;
  throw Error("safetensors: unknown dtype enum");
}

// Parses one tensor entry of the header into `out` (offsets still relative to the data section).
TensorView parse_entry(const std::string& origin, const std::string& name, const json& entry, uint64_t data_size,
                       uint64_t* begin_out) {
  std::string where = fmt::format("{}: tensor '{}'", origin, name);
  if (!entry.is_object()) throw FormatError(fmt::format("{}: expected an object, got {}", where, entry.type_name()));
  auto dt = entry.find("dtype");
  auto sh = entry.find("shape");
  auto off = entry.find("data_offsets");
  if (dt == entry.end() || !dt->is_string())
    throw FormatError(fmt::format("{}: field 'dtype' missing or not a string", where));
  if (sh == entry.end() || !sh->is_array())
    throw FormatError(fmt::format("{}: field 'shape' missing or not an array", where));
  if (off == entry.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
      !(*off)[1].is_number_unsigned())
    throw FormatError(fmt::format("{}: field 'data_offsets' must be [begin, end] of unsigned integers", where));
  TensorView view;
  view.name = name;
  view.dtype = dtype_parse(dt->get<std::string>(), where);
  uint64_t numel = 1;
  for (const auto& d : *sh) {
    if (!d.is_number_unsigned()) throw FormatError(fmt::format("{}: shape entries must be unsigned integers", where));
    uint64_t v = d.get<uint64_t>();
    if (v != 0 && numel > (uint64_t(1) << 62) / v) throw FormatError(fmt::format("{}: shape overflows", where));
    numel *= v;
    view.shape.push_back(static_cast<int64_t>(v));
  }
  uint64_t begin = (*off)[0].get<uint64_t>(), end = (*off)[1].get<uint64_t>();
  if (begin > end || end > data_size)
    throw FormatError(
        fmt::format("{}: data_offsets [{}, {}] outside the data section of {} bytes", where, begin, end, data_size));
  uint64_t expected = numel * dtype_size(view.dtype);
  if (end - begin != expected)
    throw FormatError(
        fmt::format("{}: byte length does not match shape × dtype; expected {}, got {}", where, expected, end - begin));
  view.nbytes = static_cast<size_t>(end - begin);
  *begin_out = begin;
  return view;
}

}  // namespace

size_t dtype_size(Dtype dtype) { return dtype_entry(dtype).size; }
std::string_view dtype_name(Dtype dtype) { return dtype_entry(dtype).name; }

Dtype dtype_parse(std::string_view name, std::string_view where) {
  for (const auto& e : kDtypes)
    if (name == e.name) return e.dtype;
  throw FormatError(
      fmt::format("{}: unknown dtype; expected one of F32, F16, BF16, F64, I8, U8, I16, U16, I32, U32, "
                  "I64, U64, BOOL, F8_E4M3, F8_E5M2, got '{}'",
                  where, name));
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const fs::path& path) { return open(MappedFile::open(path)); }

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(std::shared_ptr<MappedFile> file) {
  auto result = std::make_shared<SafetensorsFile>();
  result->file_ = std::move(file);
  const std::string origin = result->file_->path().string();
  const auto size = static_cast<uint64_t>(result->file_->size());
  if (size < 8) throw FormatError(fmt::format("{}: truncated; expected at least 8 bytes, got {}", origin, size));
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | result->file_->data()[i];
  if (header_len > kSafetensorsMaxHeader)
    throw FormatError(
        fmt::format("{}: header length {} exceeds the {} byte limit", origin, header_len, kSafetensorsMaxHeader));
  if (8 + header_len > size)
    throw FormatError(fmt::format("{}: truncated; header of {} bytes but file has {} bytes", origin, header_len, size));
  std::string header_text(reinterpret_cast<const char*>(result->file_->data()) + 8, header_len);
  json header = json_parse(header_text, origin + " (header)");
  if (!header.is_object()) throw FormatError(fmt::format("{}: header must be a JSON object", origin));
  const unsigned char* data = result->file_->data() + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) throw FormatError(fmt::format("{}: __metadata__ must be an object", origin));
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string())
          throw FormatError(fmt::format("{}: __metadata__ value '{}' must be a string", origin, m.key()));
        result->metadata_[m.key()] = m->get<std::string>();
      }
      continue;
    }
    uint64_t begin = 0;
    TensorView view = parse_entry(origin, it.key(), *it, data_size, &begin);
    view.data = data + begin;
    if (view.nbytes > 0) ranges.emplace_back(begin, begin + view.nbytes);
    result->tensors_.push_back(std::move(view));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second)
      throw FormatError(
          fmt::format("{}: tensor data ranges overlap at byte {} of the data section", origin, ranges[i].first));
  std::sort(result->tensors_.begin(), result->tensors_.end(),
            [](const TensorView& a, const TensorView& b) { return a.name < b.name; });
  return result;
}

const TensorView* SafetensorsFile::find(std::string_view name) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                             [](const TensorView& t, std::string_view n) { return t.name < n; });
  return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

SafetensorsArchive SafetensorsArchive::open(const fs::path& dir) {
  SafetensorsArchive archive;
  fs::path single = dir / "model.safetensors";
  fs::path index = dir / "model.safetensors.index.json";
  std::vector<fs::path> shards;
  if (fs::exists(index)) {
    json idx = json_read(index);
    auto wm = idx.find("weight_map");
    if (!idx.is_object() || wm == idx.end() || !wm->is_object())
      throw FormatError(fmt::format("{}: field 'weight_map' missing or not an object", index.string()));
    std::set<std::string> names;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it->is_string())
        throw FormatError(fmt::format("{}: weight_map['{}'] must be a file name", index.string(), it.key()));
      std::string file = it->get<std::string>();
      if (file.find('/') != std::string::npos || file.find("..") != std::string::npos)
        throw FormatError(
            fmt::format("{}: weight_map['{}'] = '{}' must be a plain file name", index.string(), it.key(), file));
      names.insert(file);
    }
    for (const auto& n : names) shards.push_back(dir / n);
  } else if (fs::exists(single)) {
    shards.push_back(single);
  } else {
    throw IoError(fmt::format("{}: no model.safetensors or model.safetensors.index.json", dir.string()));
  }
  for (size_t f = 0; f < shards.size(); ++f) {
    archive.files_.push_back(SafetensorsFile::open(shards[f]));
    for (const auto& t : archive.files_.back()->tensors()) {
      if (!archive.index_.emplace(t.name, std::make_pair(&t, f)).second)
        throw FormatError(fmt::format("{}: tensor '{}' appears in more than one shard", dir.string(), t.name));
    }
  }
  return archive;
}

const TensorView* SafetensorsArchive::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second.first;
}

std::vector<std::string> SafetensorsArchive::names() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : index_) out.push_back(name);
  return out;
}

std::string SafetensorsArchive::origin(std::string_view name) const {
  auto it = index_.find(name);
  if (it != index_.end()) return files_[it->second.second]->path().string();
  return files_.empty() ? std::string("(no files)") : files_.front()->path().parent_path().string();
}

uint64_t TensorSpec::nbytes() const {
  uint64_t n = dtype_size(dtype);
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

void safetensors_write_streamed(const fs::path& path, const std::vector<TensorSpec>& specs,
                                const std::map<std::string, std::string>& metadata,
                                const std::function<void(const TensorSpec&, const SafetensorsEmit&)>& produce) {
  std::vector<const TensorSpec*> order;
  for (const auto& t : specs) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->name < b->name; });
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    const TensorSpec& t = *order[i];
    if (i > 0 && order[i - 1]->name == t.name)
      throw ConfigError(fmt::format("{}: duplicate tensor name '{}'", path.string(), t.name));
    if (t.name == "__metadata__") throw ConfigError(fmt::format("{}: reserved tensor name", path.string()));
    for (int64_t d : t.shape)
      if (d < 0) throw ConfigError(fmt::format("{}: tensor '{}' has a negative dimension", path.string(), t.name));
    header[t.name] = {
        {"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // pad so the data section is 8-byte aligned
  unsigned char len[8];
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
  AtomicWriter writer(path);
  writer.write(len, 8);
  writer.write(text.data(), text.size());
  for (const auto* t : order) {
    uint64_t emitted = 0;
    produce(*t, [&](const void* data, size_t size) {
      emitted += size;
      if (emitted > t->nbytes())
        throw IoError(fmt::format("{}: tensor '{}': producer emitted more than its {} bytes", path.string(), t->name,
                                  t->nbytes()));
      writer.write(data, size);
    });
    if (emitted != t->nbytes())
      throw IoError(fmt::format("{}: tensor '{}': producer emitted {} bytes; expected {}", path.string(), t->name,
                                emitted, t->nbytes()));
  }
  writer.commit();
}

void safetensors_write(const fs::path& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<TensorSpec> specs;
  std::map<std::string, const TensorView*> views;
  for (const auto& t : tensors) {
    if (static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype) != t.nbytes)
      throw ConfigError(fmt::format("{}: tensor '{}' has {} bytes; expected {} for its shape and dtype", path.string(),
                                    t.name, t.nbytes, t.numel() * dtype_size(t.dtype)));
    specs.push_back({t.name, t.dtype, t.shape});
    views[t.name] = &t;
  }
  safetensors_write_streamed(path, specs, metadata, [&views](const TensorSpec& spec, const SafetensorsEmit& emit) {
    const TensorView* v = views.at(spec.name);
    emit(v->data, v->nbytes);
  });
}

}  // namespace hearth::io
