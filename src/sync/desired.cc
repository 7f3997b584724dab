#include "sync/desired.h"

namespace enrolsync::sync {
namespace {

// The cells are moved out of the table, and each row of the table is freed
// once converted, so a source's rows never exist twice (at district scale
// the table is hundreds of MB).
std::string Text(sources::SqlValue&& v) { return v ? std::move(*v) : std::string(); }

// Optional cells: NULL and "" mean the same (a CSV file cannot tell them apart).
std::optional<std::string> Optional(sources::SqlValue&& v) {
  if (!v || v->empty()) return std::nullopt;
  return std::move(v);
}

void Free(sources::SqlRow& r) { sources::SqlRow().swap(r); }

}  // namespace

Result<model::DesiredState> ReadDesired(sources::Source& source, const config::Config& cfg) {
  model::DesiredState d;
  d.have_courses = cfg.courses.enabled;
  if (cfg.courses.enabled) {
    const auto& c = cfg.courses;
    std::vector<std::string> cols = {c.fullname, c.shortname};
    int idnumber_col = -1, category_col = -1;
    if (!c.idnumber.empty()) {
      idnumber_col = static_cast<int>(cols.size());
      cols.push_back(c.idnumber);
    }
    if (!c.category.empty()) {
      category_col = static_cast<int>(cols.size());
      cols.push_back(c.category);
    }
    int start_col = -1, end_col = -1;
    if (!c.startdate.empty()) {
      start_col = static_cast<int>(cols.size());
      cols.push_back(c.startdate);
    }
    if (!c.enddate.empty()) {
      end_col = static_cast<int>(cols.size());
      cols.push_back(c.enddate);
    }
    auto table = source.ReadTable(c.table, cols);
    if (!table) return Fail(table.error().Wrap("[courses] table '" + c.table + "'"));
    d.courses_table = table->name;
    d.course_columns = {c.fullname, c.shortname, c.idnumber.empty() ? "idnumber" : c.idnumber,
                        c.category.empty() ? "category" : c.category, c.startdate, c.enddate};
    d.courses.reserve(table->rows.size());
    for (std::size_t i = 0; i < table->rows.size(); ++i) {
      auto& r = table->rows[i];
      model::CourseRow row;
      row.row = table->row_numbers[i];
      row.fullname = Text(std::move(r[0]));
      row.shortname = Text(std::move(r[1]));
      if (idnumber_col >= 0) row.idnumber = Text(std::move(r[idnumber_col]));
      if (category_col >= 0) row.category = Optional(std::move(r[category_col]));
      if (start_col >= 0) row.startdate = Optional(std::move(r[start_col]));
      if (end_col >= 0) row.enddate = Optional(std::move(r[end_col]));
      d.courses.push_back(std::move(row));
      Free(r);
    }
  }
  const auto& e = cfg.enrolments;
  std::vector<std::string> cols = {e.course_field, e.user_field};
  if (!e.role_field.empty()) cols.push_back(e.role_field);
  auto table = source.ReadTable(e.table, cols);
  if (!table) return Fail(table.error().Wrap("[enrolments] table '" + e.table + "'"));
  d.enrolments_table = table->name;
  d.enrolment_columns = {e.course_field, e.user_field, e.role_field.empty() ? "role" : e.role_field};
  d.enrolments.reserve(table->rows.size());
  for (std::size_t i = 0; i < table->rows.size(); ++i) {
    auto& r = table->rows[i];
    model::EnrolmentRow row;
    row.row = table->row_numbers[i];
    row.course = Text(std::move(r[0]));
    row.user = Text(std::move(r[1]));
    if (!e.role_field.empty()) row.role = Optional(std::move(r[2]));
    d.enrolments.push_back(std::move(row));
    Free(r);
  }
  return d;
}

}  // namespace enrolsync::sync
