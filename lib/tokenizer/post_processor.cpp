// Post-processors (single sequence). See post_processor.h.
#include "tokenizer/post_processor.h"

namespace hearth::tokenizer {

void PostProcessor::apply(std::vector<TokenId>& ids) const {
  if (!prefix.empty()) ids.insert(ids.begin(), prefix.begin(), prefix.end());
  ids.insert(ids.end(), suffix.begin(), suffix.end());
}

namespace {

std::vector<TokenId> special_ids(const nlohmann::json& specials, const std::string& name, const Where& where) {
  if (!specials.is_object() || !specials.contains(name)) {
    throw_format(where / "special_tokens", "template names an undefined special token", "an entry for \"" + name + "\"",
                 "none");
  }
  const auto& ids = json_member(specials[name], "ids", (where / "special_tokens") / name);
  std::vector<TokenId> out;
  for (const auto& id : ids) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
      throw_format((where / "special_tokens") / name, "bad id", "an integer in 0..2147483647", json_brief(id));
    out.push_back(id.get<TokenId>());
  }
  return out;
}

PostProcessor template_from_json(const nlohmann::json& j, const Where& where) {
  const auto& single = json_member(j, "single", where);
  if (!single.is_array()) throw_format(where / "single", "wrong type", "an array", json_brief(single));
  const nlohmann::json specials = j.contains("special_tokens") ? j["special_tokens"] : nlohmann::json::object();
  PostProcessor p;
  bool seen_sequence = false;
  for (size_t i = 0; i < single.size(); ++i) {
    const auto& item = single[i];
    if (item.is_object() && item.contains("SpecialToken")) {
      const std::string name = json_string(item["SpecialToken"], "id", (where / "single").at(i));
      auto ids = special_ids(specials, name, where);
      auto& target = seen_sequence ? p.suffix : p.prefix;
      target.insert(target.end(), ids.begin(), ids.end());
    } else if (item.is_object() && item.contains("Sequence")) {
      const std::string id = json_string(item["Sequence"], "id", (where / "single").at(i));
      if (id != "A" || seen_sequence) {
        throw_format((where / "single").at(i), "bad sequence in single template", "one \"A\"", "\"" + id + "\"");
      }
      seen_sequence = true;
    } else {
      throw_format((where / "single").at(i), "bad template piece", "SpecialToken or Sequence", json_brief(item));
    }
  }
  if (!seen_sequence) throw_format(where / "single", "template without the sequence", "a Sequence \"A\"", "none");
  return p;
}

// "cls": ["[CLS]", 101] style pair -> id.
TokenId pair_id(const nlohmann::json& j, const char* key, const Where& where) {
  const auto& v = json_member(j, key, where);
  if (!v.is_array() || v.size() != 2 || !v[1].is_number_integer() || v[1].get<int64_t>() < 0 ||
      v[1].get<int64_t>() > INT32_MAX) {
    throw_format(where / key, "bad special token", "[\"token\", id]", json_brief(v));
  }
  return v[1].get<TokenId>();
}

}  // namespace

PostProcessor post_processor_from_json(const nlohmann::json& j, const Where& where) {
  if (j.is_null()) return {};
  const std::string type = json_type(j, where);
  if (type == "TemplateProcessing") return template_from_json(j, where);
  if (type == "ByteLevel") return {};
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    return PostProcessor{{pair_id(j, "cls", where)}, {pair_id(j, "sep", where)}};
  }
  if (type == "Sequence") {
    const auto& list = json_member(j, "processors", where);
    if (!list.is_array()) throw_format(where / "processors", "wrong type", "an array", json_brief(list));
    PostProcessor all;
    for (size_t i = 0; i < list.size(); ++i) {
      // Each processor wraps what the previous ones produced.
      PostProcessor p = post_processor_from_json(list[i], (where / "processors").at(i));
      all.prefix.insert(all.prefix.begin(), p.prefix.begin(), p.prefix.end());
      all.suffix.insert(all.suffix.end(), p.suffix.begin(), p.suffix.end());
    }
    return all;
  }
  throw_format(where / "type", "unsupported post_processor",
               "one of TemplateProcessing, ByteLevel, Sequence, BertProcessing, RobertaProcessing", "\"" + type + "\"");
}

PostProcessor post_processor_from_flags(std::optional<TokenId> bos, bool add_bos, std::optional<TokenId> eos,
                                        bool add_eos, const Where& where) {
  PostProcessor p;
  if (add_bos) {
    if (!bos)
      throw_format(where / "add_bos_token", "add_bos_token is set but there is no bos_token", "a bos_token", "none");
    p.prefix.push_back(*bos);
  }
  if (add_eos) {
    if (!eos)
      throw_format(where / "add_eos_token", "add_eos_token is set but there is no eos_token", "an eos_token", "none");
    p.suffix.push_back(*eos);
  }
  return p;
}

}  // namespace hearth::tokenizer
