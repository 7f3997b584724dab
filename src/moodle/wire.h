// Internal to src/moodle: the wire format of Moodle's REST protocol
// (form encoding of requests, classification of response bodies) and lenient
// JSON accessors. Not part of the public interface (client.h keeps nlohmann
// and httplib out).
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "moodle/client.h"
#include "util/result.h"

namespace enrolsync::moodle::wire {

// Path of the REST endpoint below the site root. moodlewsrestformat travels in
// the query string so that the POST body is byte-for-byte what the
// transcripts record (wstoken, wsfunction, then the parameters).
inline constexpr std::string_view kEndpoint = "/webservice/rest/server.php?moodlewsrestformat=json";

// Form variables the body carries besides the parameters (wstoken, wsfunction)
// plus one for moodlewsrestformat, as the README's "max_input_vars - 3" counts.
inline constexpr int kFixedVars = 3;
// Extra head-room kept below max_input_vars.
inline constexpr int kReserveVars = 8;

// "wstoken=<token>&wsfunction=<function>&k1=v1&…", application/x-www-form-urlencoded.
std::string EncodeBody(std::string_view token, std::string_view function, const FormFields& params);

// Classifies the body of an HTTP 200 answer: malformed JSON -> kIo; a Moodle
// exception -> kMoodle (kAuth for invalidtoken). Every message is redacted.
Result<nlohmann::json> ParseResponse(std::string_view function, std::string_view body);

// Turns Moodle's message text (which may be "error/<div>…</div>") into one
// readable line: strips the "error/" prefix and HTML tags, collapses spaces.
std::string CleanText(std::string_view text);

// Undoes the HTML escaping Moodle applies to names it returns (format_string
// on course fullname/shortname and category names, s() elsewhere): decodes
// exactly &amp; &lt; &gt; &quot; &#039; (and &#39;) and numeric entities
// (&#NNN; &#xHH;, as UTF-8), in one pass, so "&amp;lt;" becomes "&lt;".
// Any other '&' sequence (a named entity such as &nbsp;, a bare '&') is kept
// verbatim. Not invertible for values whose raw form already contained an
// entity or HTML tags (format_string strips tags): those cannot round-trip.
std::string DecodeHtml(std::string_view text);

// JStr() of a name Moodle escaped, decoded with DecodeHtml().
std::string JName(const nlohmann::json& obj, const char* key);

// Lenient accessors: Moodle sends ids as numbers (and sometimes as strings),
// booleans as true/false or 0/1, and omits empty optional fields.
model::MoodleId JId(const nlohmann::json& obj, const char* key);
std::string JStr(const nlohmann::json& obj, const char* key);
bool JBool(const nlohmann::json& obj, const char* key, bool dflt);

}  // namespace enrolsync::moodle::wire
