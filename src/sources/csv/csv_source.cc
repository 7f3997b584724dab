#include "sources/csv/csv_source.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "sources/sql_util.h"
#include "util/strings.h"

namespace enrolsync::sources {
namespace {

std::string FieldLabel(std::size_t index, const std::vector<std::string>* header) {
  std::string out = "field " + std::to_string(index + 1);
  if (header && index < header->size()) out += " (" + (*header)[index] + ")";
  return out;
}

}  // namespace

Result<CsvFile> ParseCsv(std::string_view text, const std::string& file_name) {
  auto fail = [&](std::size_t line, const std::string& what) {
    return Fail(ErrorCode::kSource, file_name + " line " + std::to_string(line) + ": " + what);
  };
  if (text.size() >= 2 && ((text[0] == '\xFF' && text[1] == '\xFE') ||
                           (text[0] == '\xFE' && text[1] == '\xFF'))) {
    return fail(1, "file is UTF-16; save it as CSV UTF-8");
  }
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);

  CsvFile out;
  bool have_header = false;
  std::size_t pos = 0, n = text.size(), line = 1;
  while (pos < n) {
    CsvRecord rec;
    rec.line = line;
    bool any_quoted = false;
    const std::vector<std::string>* header = have_header ? &out.header : nullptr;
    for (;;) {
      std::string field;
      std::size_t field_line = line;
      if (pos < n && text[pos] == '"') {
        any_quoted = true;
        ++pos;
        for (;;) {
          if (pos >= n) {
            return fail(field_line, FieldLabel(rec.fields.size(), header) +
                                        ": quoted field is never closed (missing '\"')");
          }
          char c = text[pos];
          if (c == '"') {
            if (pos + 1 < n && text[pos + 1] == '"') {
              field += '"';
              pos += 2;
              continue;
            }
            ++pos;
            break;
          }
          if (c == '\n') ++line;
          field += c;
          ++pos;
        }
        if (pos < n && text[pos] != ',' && text[pos] != '\r' && text[pos] != '\n') {
          return fail(line, FieldLabel(rec.fields.size(), header) + ": unexpected character '" +
                                std::string(1, text[pos]) +
                                "' after a closing quote (quotes inside a field must be doubled)");
        }
      } else {
        std::size_t end = text.find_first_of(",\r\n", pos);
        if (end == std::string_view::npos) end = n;
        field.assign(text.substr(pos, end - pos));
        pos = end;
      }
      std::size_t bad = 0;
      if (!internal::IsValidUtf8(field, &bad)) {
        return fail(field_line, FieldLabel(rec.fields.size(), header) +
                                    ": invalid UTF-8 at byte " + std::to_string(bad + 1) +
                                    " of the field (save the file as CSV UTF-8)");
      }
      rec.fields.push_back(std::move(field));
      if (pos < n && text[pos] == ',') {
        ++pos;
        continue;
      }
      // End of record: CRLF, LF, lone CR or end of text.
      if (pos < n && text[pos] == '\r') ++pos;
      if (pos < n && text[pos] == '\n') ++pos;
      ++line;
      break;
    }
    if (rec.fields.size() == 1 && rec.fields[0].empty() && !any_quoted) continue;  // blank line
    if (!have_header) {
      out.header = std::move(rec.fields);
      out.header_line = rec.line;
      have_header = true;
      continue;
    }
    if (rec.fields.size() != out.header.size()) {
      std::string what = std::to_string(rec.fields.size()) + " fields, but the header has " +
                         std::to_string(out.header.size());
      if (rec.fields.size() < out.header.size()) {
        what += "; " + FieldLabel(rec.fields.size(), &out.header) + " is missing";
      } else {
        what += "; " + FieldLabel(out.header.size(), nullptr) + " is extra";
      }
      return fail(rec.line, what);
    }
    out.records.push_back(std::move(rec));
  }
  if (!have_header) return fail(1, "file is empty; expected a header row naming the columns");
  return out;
}

Result<CsvFile> ReadCsvFile(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return Fail(ErrorCode::kNotFound, "CSV file \"" + path + "\" does not exist");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(ErrorCode::kIo, "cannot open CSV file \"" + path + "\"");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Fail(ErrorCode::kIo, "cannot read CSV file \"" + path + "\"");
  return ParseCsv(ss.str(), std::filesystem::path(path).filename().string());
}

namespace {

class CsvSource final : public Source {
 public:
  explicit CsvSource(std::string directory) : directory_(std::move(directory)) {}

  std::string Describe() const override { return "csv " + directory_; }

  Result<Table> ReadTable(const std::string& table,
                          const std::vector<std::string>& columns) override {
    auto file = Load(table);
    if (!file) return Fail(file.error());
    std::vector<std::size_t> idx;
    std::string problem;
    if (!internal::MatchColumns(file->header, columns, &idx, &problem)) {
      return Fail(ErrorCode::kNotFound,
                  "source " + Describe() + ": " + FileName(table) + " line " +
                      std::to_string(file->header_line) + " (header) " + problem);
    }
    Table out;
    out.name = FileName(table);
    out.columns = columns;
    out.rows.reserve(file->records.size());
    for (auto& rec : file->records) {
      SqlRow row;
      row.reserve(idx.size());
      for (auto i : idx) row.emplace_back(std::move(rec.fields[i]));
      out.rows.push_back(std::move(row));
      out.row_numbers.push_back(rec.line);
    }
    return out;
  }

  Result<Inspection> Inspect(const std::string& table, int sample) override {
    auto file = Load(table);
    if (!file) return Fail(file.error());
    Inspection out;
    out.columns = file->header;
    out.row_count = static_cast<long long>(file->records.size());
    for (std::size_t i = 0; i < file->records.size() && static_cast<int>(i) < sample; ++i) {
      SqlRow row;
      for (auto& f : file->records[i].fields) row.emplace_back(std::move(f));
      out.sample.push_back(std::move(row));
    }
    return out;
  }

 private:
  static std::string FileName(const std::string& table) {
    if (table.size() > 4 && IEquals(std::string_view(table).substr(table.size() - 4), ".csv")) {
      return table;
    }
    return table + ".csv";
  }

  Result<CsvFile> Load(const std::string& table) {
    if (auto ok = ValidateIdentifier(table, "table"); !ok) {
      return Fail(ok.error().Wrap("source " + Describe()));
    }
    std::string path = (std::filesystem::path(directory_) / FileName(table)).string();
    auto file = ReadCsvFile(path);
    if (!file) {
      if (file.error().code == ErrorCode::kNotFound) {
        return Fail(ErrorCode::kNotFound, "source " + Describe() + ": table \"" + table +
                                              "\" not found (no file " + path + ")");
      }
      return Fail(file.error().Wrap("source " + Describe()));
    }
    return file;
  }

  std::string directory_;
};

}  // namespace

Result<std::unique_ptr<Source>> OpenCsvSource(const std::string& directory) {
  std::error_code ec;
  if (!std::filesystem::is_directory(directory, ec)) {
    return Fail(ErrorCode::kNotFound, "CSV source directory \"" + directory +
                                          "\" does not exist or is not a directory");
  }
  return std::unique_ptr<Source>(std::make_unique<CsvSource>(directory));
}

}  // namespace enrolsync::sources
