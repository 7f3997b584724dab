#include "util/secrets.h"

#include <mutex>
#include <vector>

#include "util/strings.h"

namespace enrolsync {
namespace {

std::mutex& Mu() {
  static std::mutex mu;
  return mu;
}
std::vector<std::string>& Secrets() {
  static std::vector<std::string> s;
  return s;
}

void ReplaceAll(std::string& text, const std::string& needle) {
  if (needle.empty()) return;
  std::size_t pos = 0;
  while ((pos = text.find(needle, pos)) != std::string::npos) {
    text.replace(pos, needle.size(), "[REDACTED]");
    pos += 10;
  }
}

}  // namespace

void RegisterSecret(std::string_view secret) {
  if (secret.size() < 4) return;
  std::lock_guard<std::mutex> lock(Mu());
  Secrets().emplace_back(secret);
  std::string encoded = UrlEncode(secret);
  if (encoded != secret) Secrets().push_back(std::move(encoded));
}

std::string Redact(std::string_view text) {
  std::string out(text);
  std::lock_guard<std::mutex> lock(Mu());
  for (const auto& s : Secrets()) ReplaceAll(out, s);
  return out;
}

void ClearSecretsForTesting() {
  std::lock_guard<std::mutex> lock(Mu());
  Secrets().clear();
}

}  // namespace enrolsync
