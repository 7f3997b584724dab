// A small version of Moodle's external_description: each function declares
// its parameters, and Validate() applies Moodle's rules (required keys,
// defaults, no unexpected keys, PARAM_* cleaning must not change the value).
// Any failure is invalid_parameter_exception, as in Moodle.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace enrolsync::sandbox {

using Json = nlohmann::ordered_json;

enum class PType { kInt, kBool, kRaw, kText, kAlpha, kAlphanumext, kUsername, kEmail, kPlugin };
enum class Need { kRequired, kOptional, kDefault };

struct Desc {
  enum Kind { kValue, kSingle, kMultiple } kind = kValue;
  PType type = PType::kRaw;
  Need need = Need::kRequired;
  Json def;                                         // for Need::kDefault
  std::vector<std::pair<std::string, Desc>> fields;  // kSingle
  std::vector<Desc> content;                        // kMultiple: one element
};

inline Desc Req(PType t) { return Desc{Desc::kValue, t, Need::kRequired, nullptr, {}, {}}; }
inline Desc Opt(PType t) { return Desc{Desc::kValue, t, Need::kOptional, nullptr, {}, {}}; }
inline Desc Def(PType t, Json v) { return Desc{Desc::kValue, t, Need::kDefault, std::move(v), {}, {}}; }
inline Desc Single(std::vector<std::pair<std::string, Desc>> f, Need n = Need::kRequired) {
  return Desc{Desc::kSingle, PType::kRaw, n, nullptr, std::move(f), {}};
}
inline Desc Multi(Desc c, Need n = Need::kRequired, Json def = nullptr) {
  return Desc{Desc::kMultiple, PType::kRaw, n, std::move(def), {}, {std::move(c)}};
}

// Validates the request tree (strings and objects from BuildTree) against
// `desc`; returns the cleaned tree with typed leaves (ints as numbers, bools
// as booleans) and multiple structures as JSON arrays. Throws WsException.
Json Validate(const Desc& desc, const Json& input);

// Moodle's clean_param(PARAM_USERNAME) with extendedusernamechars off.
std::string CleanUsername(const std::string& s);
bool IsValidEmail(const std::string& s);

}  // namespace enrolsync::sandbox
