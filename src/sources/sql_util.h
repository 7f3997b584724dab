// Helpers shared by the SQL back ends (not part of the public interface).
#pragma once

#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace enrolsync::sources::internal {

inline constexpr std::size_t kAllRows = std::numeric_limits<std::size_t>::max();

// "schema.table" -> {"schema", "table"}; "table" -> {"table"}.
std::vector<std::string> SplitQualifiedName(std::string_view name);

// Wraps each dot-separated part of `name` in `quote` (doubling any `quote`
// inside). An empty `quote` leaves the name as it is.
std::string QuoteParts(std::string_view name, std::string_view quote);

// "a, b, c" for messages.
std::string ListNames(const std::vector<std::string>& names);

// A driver message on one line: newlines and tabs become one space, no
// trailing whitespace.
std::string TrimMessage(std::string_view message);

// true when `text` is well-formed UTF-8; otherwise *bad_offset is the first
// offending byte.
bool IsValidUtf8(std::string_view text, std::size_t* bad_offset);

// Finds each of `requested` in `available`: an exact match, else the one
// case-insensitive match. Returns the indexes into `available`, or false
// with *problem set to e.g. `has no column "txtEmail" (columns: a, b)`.
bool MatchColumns(const std::vector<std::string>& available,
                  const std::vector<std::string>& requested, std::vector<std::size_t>* indexes,
                  std::string* problem);

}  // namespace enrolsync::sources::internal
