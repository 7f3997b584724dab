// Keeps secrets (tokens, passwords) out of logs and error messages.
// Thread-safe: the registry is guarded by a mutex.
#pragma once

#include <string>
#include <string_view>

namespace enrolsync {

// Registers a secret value; every later call to Redact() replaces it with
// "[REDACTED]". Values shorter than 4 characters are ignored (they would
// match ordinary text).
void RegisterSecret(std::string_view secret);

// Returns `text` with every registered secret, and its URL-encoded form,
// replaced by "[REDACTED]".
std::string Redact(std::string_view text);

// Clears the registry (tests only).
void ClearSecretsForTesting();

}  // namespace enrolsync
