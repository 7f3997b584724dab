// Decoding of application/x-www-form-urlencoded bodies the way PHP fills
// $_POST: "a[0][b]=x" becomes {"a": {"0": {"b": "x"}}}, and variables past
// max_input_vars are silently lost.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace enrolsync::sandbox {

using FormVar = std::pair<std::string, std::string>;  // decoded name, value

struct ParsedForm {
  std::vector<FormVar> vars;  // in order, after the limit was applied
  std::size_t total = 0;      // variables present in the input
  bool truncated = false;     // some were dropped
};

// Splits and URL-decodes `body`. PHP's POST parser registers a variable and
// only then checks its counter, so it keeps max_vars + 1 variables before it
// gives up ("Input variables exceeded N"); for the query string it keeps
// max_vars. `post` selects which of the two rules applies. 0 = no limit.
ParsedForm ParseUrlEncoded(std::string_view body, std::size_t max_vars, bool post);

// Builds the nested PHP array from decoded variables. Arrays are JSON objects
// whose keys keep their insertion order ("a[]" appends the next integer key);
// leaves are strings. A later variable with the same name wins.
nlohmann::ordered_json BuildTree(const std::vector<FormVar>& vars);

}  // namespace enrolsync::sandbox
