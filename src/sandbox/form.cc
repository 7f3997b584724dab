#include "sandbox/form.h"

#include "util/strings.h"

namespace enrolsync::sandbox {

ParsedForm ParseUrlEncoded(std::string_view body, std::size_t max_vars, bool post) {
  ParsedForm out;
  std::size_t keep = max_vars == 0 ? static_cast<std::size_t>(-1) : (post ? max_vars + 1 : max_vars);
  std::size_t pos = 0;
  while (pos <= body.size()) {
    std::size_t amp = body.find('&', pos);
    if (amp == std::string_view::npos) amp = body.size();
    std::string_view part = body.substr(pos, amp - pos);
    pos = amp + 1;
    if (part.empty()) continue;
    ++out.total;
    if (out.vars.size() >= keep) {
      out.truncated = true;
      continue;
    }
    std::size_t eq = part.find('=');
    std::string name = UrlDecode(part.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : UrlDecode(part.substr(eq + 1));
    out.vars.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

namespace {

// Splits a PHP variable name into its base and bracket indices.
// Returns false when the variable must be ignored (empty name).
bool SplitName(const std::string& raw, std::string* base, std::vector<std::string>* idx) {
  std::size_t start = raw.find_first_not_of(' ');
  if (start == std::string::npos) return false;
  std::string name = raw.substr(start);
  std::size_t br = name.find('[');
  std::string b = name.substr(0, br);
  // PHP turns ' ' and '.' in the base name into '_'.
  for (char& c : b) {
    if (c == ' ' || c == '.') c = '_';
  }
  if (br != std::string::npos) {
    std::size_t close = name.find(']', br);
    if (close == std::string::npos) {
      // An unmatched '[' becomes '_' and the rest is part of the name.
      b += '_' + name.substr(br + 1);
      br = std::string::npos;
    }
  }
  if (b.empty()) return false;
  *base = b;
  idx->clear();
  std::size_t p = br;
  while (p != std::string::npos && p < name.size() && name[p] == '[') {
    std::size_t close = name.find(']', p);
    if (close == std::string::npos) break;  // ignore the rest
    idx->push_back(name.substr(p + 1, close - p - 1));
    p = close + 1;
  }
  return true;
}

std::string NextIndex(const nlohmann::ordered_json& obj) {
  long long next = 0;
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    long long v = 0;
    if (ParseInt64(it.key(), &v) && v >= next) next = v + 1;
  }
  return std::to_string(next);
}

}  // namespace

nlohmann::ordered_json BuildTree(const std::vector<FormVar>& vars) {
  nlohmann::ordered_json root = nlohmann::ordered_json::object();
  for (const auto& [raw, value] : vars) {
    std::string base;
    std::vector<std::string> idx;
    if (!SplitName(raw, &base, &idx)) continue;
    nlohmann::ordered_json* node = &root;
    std::string key = base;
    for (const std::string& i : idx) {
      nlohmann::ordered_json& child = (*node)[key];
      if (!child.is_object()) child = nlohmann::ordered_json::object();
      node = &child;
      key = i.empty() ? NextIndex(child) : i;
    }
    (*node)[key] = value;
  }
  return root;
}

}  // namespace enrolsync::sandbox
