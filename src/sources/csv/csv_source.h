// CSV back end: the configured directory holds one file per table, T.csv.
// RFC 4180 (quoted fields, doubled quotes, embedded commas and newlines, CRLF
// or LF), UTF-8 with or without a BOM, header row names the columns.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sources/source.h"
#include "util/result.h"

namespace enrolsync::sources {

struct CsvRecord {
  std::size_t line = 0;  // file line where the record starts (1-based)
  std::vector<std::string> fields;
};

struct CsvFile {
  std::vector<std::string> header;
  std::size_t header_line = 1;
  std::vector<CsvRecord> records;  // data records, header excluded
};

// Parses `text`. `file_name` is only used in messages, which name the file,
// line and field: ragged rows, unterminated quotes, stray characters after a
// closing quote, invalid UTF-8, a missing header. Blank lines are skipped.
// An empty field is "" (never NULL).
Result<CsvFile> ParseCsv(std::string_view text, const std::string& file_name);

// Reads and parses a file. A missing file is kNotFound naming the path.
Result<CsvFile> ReadCsvFile(const std::string& path);

// A Source over `directory` (checked to exist now; files are read per call).
Result<std::unique_ptr<Source>> OpenCsvSource(const std::string& directory);

}  // namespace enrolsync::sources
