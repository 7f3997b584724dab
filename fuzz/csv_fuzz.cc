// The CSV reader (sources/csv/csv_source.h): ParseCsv on any bytes, then the
// column matching a CSV Source does (internal::MatchColumns).
// Properties: every record has as many fields as the header, every field is
// valid UTF-8, record lines increase, and writing the parsed file back out
// (every field quoted) parses to the same header and records.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "sources/csv/csv_source.h"
#include "sources/sql_util.h"

namespace {

using enrolsync::sources::CsvFile;

void AppendQuotedRow(std::string* out, const std::vector<std::string>& fields) {
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i) *out += ',';
    *out += '"';
    for (char c : fields[i]) {
      if (c == '"') *out += '"';
      *out += c;
    }
    *out += '"';
  }
  *out += "\r\n";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = enrolsync::sources::ParseCsv(text, "fuzz.csv");
  if (!parsed) {
    FUZZ_CHECK(!parsed.error().message.empty());
    return 0;
  }
  const CsvFile& f = *parsed;
  std::size_t last_line = f.header_line;
  for (const auto& rec : f.records) {
    FUZZ_CHECK(rec.fields.size() == f.header.size());
    FUZZ_CHECK(rec.line > last_line);
    last_line = rec.line;
    for (const auto& field : rec.fields) {
      std::size_t bad = 0;
      FUZZ_CHECK(enrolsync::sources::internal::IsValidUtf8(field, &bad));
    }
  }

  std::string again;
  AppendQuotedRow(&again, f.header);
  for (const auto& rec : f.records) AppendQuotedRow(&again, rec.fields);
  auto reparsed = enrolsync::sources::ParseCsv(again, "fuzz.csv");
  FUZZ_CHECK(reparsed);
  FUZZ_CHECK(reparsed->header == f.header);
  FUZZ_CHECK(reparsed->records.size() == f.records.size());
  for (std::size_t i = 0; i < f.records.size(); ++i) {
    FUZZ_CHECK(reparsed->records[i].fields == f.records[i].fields);
  }

  // The columns a config would ask for: the header's own names in another
  // case, and one that is not there.
  std::vector<std::string> requested;
  for (const auto& h : f.header) {
    std::string u = h;
    for (char& c : u) {
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
    }
    requested.push_back(u);
  }
  std::vector<std::size_t> idx;
  std::string problem;
  if (enrolsync::sources::internal::MatchColumns(f.header, requested, &idx, &problem)) {
    FUZZ_CHECK(idx.size() == requested.size());
    for (auto i : idx) FUZZ_CHECK(i < f.header.size());
  } else {
    FUZZ_CHECK(!problem.empty());
  }
  requested.push_back("txtNoSuchColumn\x01");
  idx.clear();
  problem.clear();
  FUZZ_CHECK(!enrolsync::sources::internal::MatchColumns(f.header, requested, &idx, &problem) ||
             idx.size() == requested.size());
  return 0;
}
