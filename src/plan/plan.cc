#include "plan/plan.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <iterator>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>

#include "util/moodle_values.h"
#include "util/strings.h"

namespace enrolsync::plan {
namespace {

using model::CourseUser;
using model::OwnedEnrolment;
using model::Participant;
using model::Participants;

const char* CategoryFieldName(LocalCategoryField f) { return f == LocalCategoryField::kId ? "id" : "idnumber"; }

const char* UserFieldName(LocalUserField f) {
  switch (f) {
    case LocalUserField::kId: return "id";
    case LocalUserField::kIdnumber: return "idnumber";
    case LocalUserField::kEmail: return "email";
    case LocalUserField::kUsername: return "username";
  }
  return "?";
}

// A course date cell (enrol_database's newcoursestartdate/newcourseenddate):
// PHP's empty() means no date; a number (is_number) is unix seconds; anything
// else goes through strtotime(). Here: the forms a MIS or SQL export gives,
// YYYY-MM-DD[( |T)hh:mm[:ss[.fff]]][Z|±hh[[:]mm]]; without an offset the
// time is local (TZ), as strtotime reads it in the server's timezone.
struct DateCell {
  bool given = false;
  bool ok = true;
  long long value = 0;
};

bool Digits(const std::string& s, std::size_t pos, std::size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

DateCell ParseDateCell(const std::optional<std::string>& cell) {
  DateCell d;
  if (!cell) return d;
  const std::string v = Trim(*cell);
  if (v.empty() || v == "0") return d;
  d.given = true;
  long long n = 0;
  if (ParseInt64(v, &n)) {
    d.value = n;
    return d;
  }
  {  // "1725148800.000000" (extract(epoch …)), "1.7e9"
    char* end = nullptr;
    double x = std::strtod(v.c_str(), &end);
    if (end && *end == '\0' && (v[0] == '-' || v[0] == '+' || (v[0] >= '0' && v[0] <= '9')) && x > -1e15 &&
        x < 1e15) {
      d.value = static_cast<long long>(x);
      return d;
    }
  }
  d.ok = false;
  int year = 0, mon = 0, day = 0, hour = 0, min = 0, sec = 0;
  if (!Digits(v, 0, 4, &year) || v.size() < 10 || v[4] != '-' || !Digits(v, 5, 2, &mon) || v[7] != '-' ||
      !Digits(v, 8, 2, &day))
    return d;
  std::size_t pos = 10;
  if (pos < v.size() && (v[pos] == ' ' || v[pos] == 'T')) {
    if (!Digits(v, pos + 1, 2, &hour) || pos + 3 >= v.size() || v[pos + 3] != ':' || !Digits(v, pos + 4, 2, &min))
      return d;
    pos += 6;
    if (pos < v.size() && v[pos] == ':') {
      if (!Digits(v, pos + 1, 2, &sec)) return d;
      pos += 3;
      if (pos < v.size() && v[pos] == '.') {
        ++pos;
        while (pos < v.size() && v[pos] >= '0' && v[pos] <= '9') ++pos;
      }
    }
  }
  bool have_offset = false;
  long long offset = 0;
  if (pos < v.size() && v[pos] == ' ') ++pos;
  if (pos < v.size() && (v[pos] == 'Z' || v[pos] == 'z')) {
    have_offset = true;
    ++pos;
  } else if (pos < v.size() && (v[pos] == '+' || v[pos] == '-')) {
    int oh = 0, om = 0;
    int sign = v[pos] == '-' ? -1 : 1;
    if (!Digits(v, pos + 1, 2, &oh)) return d;
    pos += 3;
    if (pos < v.size() && v[pos] == ':') ++pos;
    if (pos < v.size()) {
      if (!Digits(v, pos, 2, &om)) return d;
      pos += 2;
    }
    if (oh > 14 || om > 59) return d;
    have_offset = true;
    offset = sign * (oh * 3600LL + om * 60LL);
  }
  if (pos != v.size()) return d;
  static const int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (year < 1900 || mon < 1 || mon > 12 || day < 1 || day > kDays[mon - 1] || (mon == 2 && day == 29 && !leap) ||
      hour > 23 || min > 59 || sec > 59)
    return d;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  if (have_offset) {
    d.value = static_cast<long long>(timegm(&tm)) - offset;
  } else {
    tm.tm_isdst = -1;
    d.value = static_cast<long long>(std::mktime(&tm));
  }
  d.ok = true;
  return d;
}

// What ties a row that could not be resolved to the enrolment it made
// before: the value lower-cased, without whitespace, control characters or
// the characters Moodle refuses in an address ("<>,;()[]\), so a value that
// became malformed ('two\nlines@…', 'bad"quote@…') still protects it.
std::string LooseKey(const std::string& value) {
  std::string out;
  for (char c : ToLower(value)) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F) continue;
    switch (c) {
      case '"': case '<': case '>': case ',': case ';': case '(': case ')': case '[': case ']': case '\\':
        continue;
      default: out += c;
    }
  }
  return out;
}

// Where an enrolment row points: an existing course or one created this run.
struct Target {
  MoodleId courseid = 0;
  int create_index = -1;
  auto operator<=>(const Target&) const = default;
};

struct Want {
  std::vector<MoodleId> roles;  // in order of first appearance
  std::string course_key;
  std::string user_key;
};

class Planner {
 public:
  Planner(const model::DesiredState& desired, const model::MoodleSnapshot& moodle, const model::Ownership& owned,
          const Policy& policy)
      : desired_(desired), moodle_(moodle), owned_(owned), policy_(policy) {}

  Adoption Adopt() {
    IndexMoodle();
    Adoption a;
    if (desired_.have_courses) {
      for (const auto& row : desired_.courses) {
        if (row.idnumber.empty()) continue;
        auto it = course_by_idnumber_.find(row.idnumber);
        if (it == course_by_idnumber_.end() || owned_.created_courses.count(it->second->id)) continue;
        if (std::any_of(a.courses.begin(), a.courses.end(),
                        [&](const AdoptCourse& c) { return c.courseid == it->second->id; }))
          continue;
        a.courses.push_back(AdoptCourse{it->second->id, it->second->shortname, row.idnumber});
      }
    }
    ReadEnrolmentRows();
    for (const auto& [t, users] : wants_) {
      if (t.create_index >= 0) continue;  // a course still to be made holds nothing
      auto vit = moodle_.verified.find(t.courseid);
      if (vit == moodle_.verified.end()) {
        a.unread_courses.push_back(t.courseid);
        continue;
      }
      const model::Course& course = *course_by_id_.at(t.courseid);
      for (const auto& [userid, w] : users) {
        auto o = owned_.enrolments.find(CourseUser{t.courseid, userid});
        if (o != owned_.enrolments.end() && o->second.owns_enrolment) {
          ++a.already_owned;
          continue;
        }
        auto p = vit->second.find(userid);
        if (p == vit->second.end()) {
          ++a.not_participants;
          continue;
        }
        AdoptEnrolment e{t.courseid, userid, course.shortname, w.course_key, w.user_key, {}, {}, p->second.active};
        for (MoodleId r : w.roles)
          if (p->second.roles.count(r)) {
            e.roles.push_back(r);
            e.role_names.push_back(role_name_.count(r) ? role_name_.at(r) : std::to_string(r));
          }
        if (e.roles.empty()) {
          ++a.without_feed_role;
          continue;
        }
        a.enrolments.push_back(std::move(e));
      }
    }
    std::sort(a.enrolments.begin(), a.enrolments.end(), [](const AdoptEnrolment& x, const AdoptEnrolment& y) {
      return std::tie(x.course_shortname, x.user_key) < std::tie(y.course_shortname, y.user_key);
    });
    std::sort(a.unread_courses.begin(), a.unread_courses.end());
    a.problems = std::move(plan_.problems);
    return a;
  }

  Plan Run() {
    IndexMoodle();
    if (desired_.have_courses) PlanCourses();
    ReadEnrolmentRows();
    PlanEnrolments();
    Finish();
    return std::move(plan_);
  }

 private:
  // ---- indexes over Moodle's state ----
  void IndexMoodle() {
    for (const auto& c : moodle_.categories) {
      cat_by_id_[std::to_string(c.id)] = c.id;
      if (!c.idnumber.empty()) cat_by_idnumber_[c.idnumber] = c.id;
    }
    for (const auto& r : moodle_.roles) {
      role_name_[r.id] = r.shortname;
      role_by_shortname_[r.shortname] = r.id;
    }
    for (const auto& c : moodle_.courses) {
      course_by_id_[c.id] = &c;
      course_by_shortname_[c.shortname] = &c;
      if (!c.idnumber.empty()) course_by_idnumber_[c.idnumber] = &c;
    }
    for (const auto& u : moodle_.users) {
      switch (policy_.local_user_field) {
        case LocalUserField::kId: users_[std::to_string(u.id)].push_back(&u); break;
        case LocalUserField::kIdnumber:
          if (!u.idnumber.empty()) users_[u.idnumber].push_back(&u);
          break;
        case LocalUserField::kEmail:
          // Moodle's own lookup is case-sensitive on PostgreSQL; an email
          // typed in another case in the MIS is still the same person.
          if (!u.email.empty()) users_[ToLower(u.email)].push_back(&u);
          break;
        case LocalUserField::kUsername: users_[u.username].push_back(&u); break;
      }
    }
    for (const auto& [key, e] : owned_.enrolments) {
      if (e.owns_enrolment && course_by_id_.count(key.courseid)) ++plan_.managed_enrolments;
    }
  }

  std::vector<std::pair<std::string, std::string>> CourseValues(const model::CourseRow& r) const {
    const auto& cols = desired_.course_columns;
    auto col = [&](std::size_t i, const char* fallback) { return i < cols.size() ? cols[i] : std::string(fallback); };
    std::vector<std::pair<std::string, std::string>> v = {
        {col(0, "fullname"), ShownValue(r.fullname)},
        {col(1, "shortname"), ShownValue(r.shortname)},
        {col(2, "idnumber"), ShownValue(r.idnumber)}};
    v.emplace_back(col(3, "category"), ShownValue(r.category.value_or("NULL")));
    if (cols.size() > 4 && !cols[4].empty()) v.emplace_back(cols[4], ShownValue(r.startdate.value_or("NULL")));
    if (cols.size() > 5 && !cols[5].empty()) v.emplace_back(cols[5], ShownValue(r.enddate.value_or("NULL")));
    return v;
  }

  std::vector<std::pair<std::string, std::string>> EnrolValues(const model::EnrolmentRow& r) const {
    const auto& cols = desired_.enrolment_columns;
    auto col = [&](std::size_t i, const char* fallback) { return i < cols.size() ? cols[i] : std::string(fallback); };
    return {{col(0, "course"), ShownValue(r.course)},
            {col(1, "user"), ShownValue(r.user)},
            {col(2, "role"), ShownValue(r.role.value_or("NULL"))}};
  }

  void CourseProblem(const model::CourseRow& r, std::string reason, bool skipped = true) {
    plan_.problems.push_back(Problem{desired_.courses_table, r.row, CourseValues(r), std::move(reason), skipped});
  }
  void EnrolProblem(const model::EnrolmentRow& r, std::string reason, bool skipped = true) {
    plan_.problems.push_back(Problem{desired_.enrolments_table, r.row, EnrolValues(r), std::move(reason), skipped});
  }

  // ---- courses (enrol_database's sync_courses) ----
  void PlanCourses() {
    std::map<std::string, const model::CourseRow*> feed_shortnames;
    std::map<std::string, std::string> pending_idnumbers;  // idnumber -> shortname
    for (const auto& row : desired_.courses) {
      if (Trim(row.fullname).empty() || Trim(row.shortname).empty()) {
        CourseProblem(row, "invalid external course record, shortname and fullname are mandatory");
        continue;
      }
      const std::string shortname = ShownValue(row.shortname);
      auto [it, inserted] = feed_shortnames.emplace(row.shortname, &row);
      if (!inserted) {
        const auto& first = *it->second;
        bool same = first.fullname == row.fullname && first.idnumber == row.idnumber &&
                    first.category.value_or("") == row.category.value_or("");
        CourseProblem(row,
                      "duplicate shortname '" + shortname + "' (first at row " + std::to_string(first.row) +
                          (same ? "); identical, counted once" : "); this row is ignored"),
                      !same);
        continue;
      }
      if (course_by_shortname_.count(row.shortname)) continue;  // exists: never renamed or moved
      if (!CourseLengthsOk(row, shortname)) continue;
      if (!row.idnumber.empty()) {
        if (auto c = course_by_idnumber_.find(row.idnumber); c != course_by_idnumber_.end()) {
          CourseProblem(row, "duplicate idnumber, can not create course: " + shortname + " [" + ShownValue(row.idnumber) +
                                 "] (idnumber used by course '" + c->second->shortname + "', id " +
                                 std::to_string(c->second->id) + ")");
          continue;
        }
        if (auto p = pending_idnumbers.find(row.idnumber); p != pending_idnumbers.end()) {
          CourseProblem(row, "duplicate idnumber, can not create course: " + shortname + " [" + ShownValue(row.idnumber) +
                                 "] (also wanted by new course '" + p->second + "')");
          continue;
        }
      }
      std::string cat = Trim(row.category.value_or(""));
      bool by_default = cat.empty();
      if (by_default) cat = policy_.default_category;
      const auto& index = policy_.category_field == LocalCategoryField::kId ? cat_by_id_ : cat_by_idnumber_;
      auto c = index.find(cat);
      MoodleId categoryid = 0;
      if (c != index.end()) {
        categoryid = c->second;
      } else if (by_default) {
        categoryid = FallbackCategory(row);
        if (!categoryid) continue;
      } else {
        CourseProblem(row, std::string("invalid category ") + CategoryFieldName(policy_.category_field) + " '" +
                               ShownValue(cat) + "', can not create course: " + shortname);
        continue;
      }
      // Course dates: a broken value stops this course, as in enrol_database.
      DateCell start = ParseDateCell(row.startdate), end = ParseDateCell(row.enddate);
      bool dates_ok = true;
      for (auto [cell, which, index] : {std::tuple{&start, "start", 4}, std::tuple{&end, "end", 5}}) {
        if (cell->ok) continue;
        const auto& raw = index == 4 ? row.startdate : row.enddate;
        const std::string column = static_cast<std::size_t>(index) < desired_.course_columns.size()
                                       ? desired_.course_columns[index]
                                       : std::string(which) + "date";
        CourseProblem(row, std::string("invalid external course ") + which + " date value: " +
                               desired_.courses_table + " row " + std::to_string(row.row) + " column '" + column +
                               "' = '" + ShownValue(raw.value_or("")) +
                               "' (expected unix seconds or a date such as 2026-09-01 or 2026-09-01 08:30:00+01:00), "
                               "can not create course: " + shortname);
        dates_ok = false;
      }
      if (!dates_ok) continue;
      if (start.given && end.given && end.value > 0 && start.value > end.value) {
        CourseProblem(row, "can not insert new course, the end date must be after the start date: " + shortname);
        continue;
      }
      PlanItem item;
      item.action = Action::kCreateCourse;
      if (start.given) item.startdate = start.value;
      if (end.given) item.enddate = end.value;
      item.create_index = static_cast<int>(plan_.items.size());
      item.course_shortname = row.shortname;
      item.course_fullname = row.fullname;
      item.course_key = row.shortname;
      item.idnumber = row.idnumber;
      item.categoryid = categoryid;
      item.reason = "course is in the feed but not in Moodle";
      if (!row.idnumber.empty()) pending_idnumbers[row.idnumber] = row.shortname;
      switch (policy_.local_course_field) {
        case LocalCourseField::kIdnumber:
          if (!row.idnumber.empty()) pending_by_key_[row.idnumber] = item.create_index;
          break;
        case LocalCourseField::kShortname: pending_by_key_[row.shortname] = item.create_index; break;
        case LocalCourseField::kId: break;  // a new course has no id yet
      }
      plan_.items.push_back(std::move(item));
    }
  }

  // A new course's values must fit Moodle's columns (course.shortname 255,
  // fullname 254, idnumber 100 characters): core_course_create_courses
  // would fail the whole batch for one that does not.
  bool CourseLengthsOk(const model::CourseRow& row, const std::string& shortname) {
    const auto& cols = desired_.course_columns;
    auto col = [&](std::size_t i, const char* fallback) { return i < cols.size() ? cols[i] : std::string(fallback); };
    for (auto [value, column, max] : {std::tuple{&row.shortname, col(1, "shortname"), kCourseShortnameMax},
                                      std::tuple{&row.fullname, col(0, "fullname"), kCourseFullnameMax},
                                      std::tuple{&row.idnumber, col(2, "idnumber"), kCourseIdnumberMax}}) {
      std::size_t n = Utf8Length(*value);
      if (n <= max) continue;
      CourseProblem(row, desired_.courses_table + " row " + std::to_string(row.row) + " column '" + column +
                             "' = '" + ShownValue(*value) + "' is " + std::to_string(n) +
                             " characters, longer than Moodle's " + std::to_string(max) +
                             ", can not create course: " + shortname);
      return false;
    }
    return true;
  }

  // enrol_database: when the default category does not exist it says so and
  // uses the first category in Moodle's sort order (categories come in that
  // order, see moodle::Client::GetCategories). Said once per run, as a warning.
  MoodleId FallbackCategory(const model::CourseRow& row) {
    const std::string what = std::string("default category ") + CategoryFieldName(policy_.category_field) + " '" +
                             policy_.default_category + "' does not exist in Moodle";
    if (moodle_.categories.empty()) {
      CourseProblem(row, what + " and Moodle lists no category, can not create course: " + ShownValue(row.shortname));
      return 0;
    }
    const model::Category& first = moodle_.categories.front();
    if (!fallback_reported_) {
      fallback_reported_ = true;
      plan_.problems.push_back(Problem{"", 0,
                                       {{"default_category", policy_.default_category}},
                                       what + ": courses without a category go to the first category, '" +
                                           first.name + "' (id " + std::to_string(first.id) +
                                           "), as enrol_database does",
                                       false});
    }
    return first.id;
  }

  // ---- enrolment rows -> wants ----
  bool ResolveCourse(const std::string& key, Target* t) {
    const model::Course* c = nullptr;
    switch (policy_.local_course_field) {
      case LocalCourseField::kId: {
        long long id = 0;
        if (ParseInt64(key, &id)) {
          if (auto it = course_by_id_.find(id); it != course_by_id_.end()) c = it->second;
        }
        break;
      }
      case LocalCourseField::kIdnumber:
        if (auto it = course_by_idnumber_.find(key); it != course_by_idnumber_.end()) c = it->second;
        break;
      case LocalCourseField::kShortname:
        if (auto it = course_by_shortname_.find(key); it != course_by_shortname_.end()) c = it->second;
        break;
    }
    if (c) {
      *t = Target{c->id, -1};
      return true;
    }
    if (auto it = pending_by_key_.find(key); it != pending_by_key_.end()) {
      *t = Target{0, it->second};
      return true;
    }
    return false;
  }

  void ReadEnrolmentRows() {
    // Default role for empty role cells.
    MoodleId default_role = 0;
    if (auto it = role_by_shortname_.find(policy_.default_role); it != role_by_shortname_.end())
      default_role = it->second;
    default_role_ = default_role;

    // (course value, user lookup value, role) -> first row; lookups only.
    std::unordered_map<std::string, std::size_t> seen;
    seen.reserve(desired_.enrolments.size());
    std::set<std::string> unknown_courses_reported;
    for (const auto& row : desired_.enrolments) {
      // Printed values are cut short: a 1 MB cell is not echoed whole.
      const std::string user = ShownValue(row.user), course = ShownValue(row.course);
      if (Trim(row.course).empty()) {
        EnrolProblem(row, "skipping row without a course value");
        continue;
      }
      if (Trim(row.user).empty()) {
        EnrolProblem(row, std::string("skipping user without mandatory ") + UserFieldName(policy_.local_user_field) +
                              " in course '" + course + "'");
        continue;
      }
      // A value Moodle would refuse is this row's problem, not the lookup
      // call's: it still protects what the row made (Protect).
      std::string why;
      std::optional<std::string> value = UserLookupValue(row.user, policy_.local_user_field, &why);
      if (!value) {
        const std::string column = desired_.enrolment_columns.size() > 1 ? desired_.enrolment_columns[1] : "user";
        EnrolProblem(row, "skipping user in course '" + course + "': column '" + column + "' = '" + user + "': " + why);
        Protect(row);
        continue;
      }
      Target target;
      bool have_course = ResolveCourse(row.course, &target);

      // Role.
      MoodleId roleid = 0;
      std::string role_cell = Trim(row.role.value_or(""));
      if (role_cell.empty()) {
        roleid = default_role;
        if (!roleid) {
          EnrolProblem(row, "skipping user '" + user + "' in course '" + course +
                                "' - no role in the row and default_role '" + policy_.default_role +
                                "' is not a Moodle role");
          Protect(row);
          continue;
        }
      } else if (policy_.local_role_field == LocalRoleField::kId) {
        long long id = 0;
        if (ParseInt64(role_cell, &id) && role_name_.count(id)) roleid = id;
      } else if (auto it = role_by_shortname_.find(role_cell); it != role_by_shortname_.end()) {
        roleid = it->second;
      }
      if (!roleid) {
        EnrolProblem(row, "skipping user '" + user + "' in course '" + course + "' - unknown role " +
                              (policy_.local_role_field == LocalRoleField::kId ? "id" : "shortname") + " '" +
                              role_cell + "'");
        Protect(row);
        continue;
      }

      if (!have_course) {
        EnrolProblem(row, "course '" + course + "' does not exist in Moodle");
        continue;
      }

      // User.
      std::string lookup = policy_.local_user_field == LocalUserField::kEmail ? ToLower(*value) : *value;
      auto u = users_.find(lookup);
      if (u == users_.end()) {
        EnrolProblem(row, std::string("skipping unknown user ") + UserFieldName(policy_.local_user_field) + " '" +
                              user + "' in course '" + course + "'");
        Protect(row);
        continue;
      }
      if (u->second.size() > 1) {
        std::vector<std::string> ids;
        for (const auto* x : u->second) ids.push_back(std::to_string(x->id));
        EnrolProblem(row, std::string("skipping ambiguous user ") + UserFieldName(policy_.local_user_field) + " '" +
                              user + "' in course '" + course + "': matches Moodle users " + Join(ids, ", "));
        Protect(row);
        continue;
      }
      MoodleId userid = u->second.front()->id;

      // The role's 8 bytes, the course value's length, the course value,
      // then the lookup value: unambiguous whatever bytes the values hold.
      std::string key;
      const std::size_t course_len = row.course.size();
      key.reserve(2 * sizeof(std::uint64_t) + course_len + lookup.size());
      key.append(reinterpret_cast<const char*>(&roleid), sizeof roleid);
      key.append(reinterpret_cast<const char*>(&course_len), sizeof course_len);
      key.append(row.course).append(lookup);
      if (auto [it, inserted] = seen.emplace(std::move(key), row.row); !inserted) {
        EnrolProblem(row, "duplicate of row " + std::to_string(it->second) + "; counted once", false);
        continue;
      }
      Want& w = wants_[target][userid];
      if (w.roles.empty()) {
        w.course_key = row.course;
        w.user_key = *value;
      }
      if (std::find(w.roles.begin(), w.roles.end(), roleid) == w.roles.end()) w.roles.push_back(roleid);
    }
  }

  // A row that names a person we could not resolve (unknown, ambiguous, or a
  // value Moodle would refuse) still protects an enrolment we made from the
  // same values, compared loosely (LooseKey): an unreadable row is not a
  // leaver.
  void Protect(const model::EnrolmentRow& row) { protected_.insert({row.course, LooseKey(row.user)}); }
  bool IsProtected(const OwnedEnrolment& e) const {
    return protected_.count({e.source_course, LooseKey(e.source_user)}) > 0;
  }

  // ---- per-course diff (enrol_database's sync_enrolments) ----
  std::string RoleName(MoodleId id) const {
    auto it = role_name_.find(id);
    return it == role_name_.end() ? std::to_string(id) : it->second;
  }

  PlanItem Item(Action a, const Target& t, MoodleId userid, const std::string& course_key,
                const std::string& user_key, MoodleId roleid, std::string reason) const {
    PlanItem item;
    item.action = a;
    item.course_key = course_key;
    item.courseid = t.courseid;
    item.create_index = t.create_index;
    // Only the shortname: the fullname is a kCreateCourse item's (one copy a
    // course, not one a row).
    if (t.create_index >= 0) {
      item.course_shortname = plan_.items[t.create_index].course_shortname;
    } else if (auto it = course_by_id_.find(t.courseid); it != course_by_id_.end()) {
      item.course_shortname = it->second->shortname;
    }
    item.userid = userid;
    item.user_key = user_key;
    item.roleid = roleid;
    if (roleid) item.role = RoleName(roleid);
    item.reason = std::move(reason);
    return item;
  }

  void Add(PlanItem item) { pending_.push_back(std::move(item)); }

  // Removals go through here so a blocked run withholds them all.
  void AddRemoval(PlanItem item) {
    if (!policy_.block_removals.empty()) {
      ++plan_.removals_withheld;
      return;
    }
    Add(std::move(item));
  }

  Participants Believed(MoodleId courseid) const {
    Participants p;
    auto lo = owned_.enrolments.lower_bound(CourseUser{courseid, 0});
    for (auto it = lo; it != owned_.enrolments.end() && it->first.courseid == courseid; ++it) {
      Participant& part = p[it->first.userid];
      part.userid = it->first.userid;
      part.active = !it->second.owns_enrolment || it->second.status == model::EnrolStatus::kActive;
      part.roles = it->second.roles;
    }
    return p;
  }

  void PlanEnrolments() {
    // Every existing course that is wanted or where we own something.
    std::set<MoodleId> courses;
    for (const auto& [t, _] : wants_)
      if (t.create_index < 0) courses.insert(t.courseid);
    for (const auto& [key, e] : owned_.enrolments) {
      if (course_by_id_.count(key.courseid)) {
        courses.insert(key.courseid);
      } else {
        plan_.forget.push_back(Forget{key, "course " + std::to_string(key.courseid) + " no longer exists in Moodle"});
      }
    }

    // New courses: everything is an enrolment.
    bool any_new = false;
    for (const auto& [t, users] : wants_) {
      if (t.create_index < 0) continue;
      any_new = true;
      if (policy_.ignore_hidden_courses && policy_.new_courses_visible == false) {
        plan_.notes.push_back("new course '" + plan_.items[t.create_index].course_shortname +
                              "' will be hidden: no enrolments (ignore_hidden_courses)");
        continue;
      }
      for (const auto& [userid, w] : users) {
        Add(Item(Action::kEnrol, t, userid, w.course_key, w.user_key, w.roles.front(), "new course"));
        for (std::size_t i = 1; i < w.roles.size(); ++i)
          Add(Item(Action::kRoleAssign, t, userid, w.course_key, w.user_key, w.roles[i], "second role in the feed"));
      }
    }
    if (any_new && policy_.ignore_hidden_courses && !policy_.new_courses_visible.has_value()) {
      plan_.recheck_new_course_visibility = true;
      plan_.notes.push_back(
          "new courses get Moodle's default visibility ([courses.defaults] visible is not set): their enrolments "
          "are applied only where Moodle creates them visible (ignore_hidden_courses)");
    }

    static const std::map<MoodleId, Want> kNoWants;
    for (MoodleId courseid : courses) {
      const model::Course& course = *course_by_id_.at(courseid);
      if (policy_.ignore_hidden_courses && !course.visible) {
        plan_.notes.push_back("course '" + course.shortname + "' is hidden: skipped (ignore_hidden_courses)");
        continue;
      }
      Target t{courseid, -1};
      auto wit = wants_.find(t);
      const auto& wanted = wit == wants_.end() ? kNoWants : wit->second;
      auto vit = moodle_.verified.find(courseid);
      bool verified = vit != moodle_.verified.end();
      Participants believed;
      if (!verified) believed = Believed(courseid);
      const Participants& current = verified ? vit->second : believed;
      std::size_t before = pending_.size();
      if (verified) {
        std::size_t unsure = 0;
        for (const auto& [userid, p] : current) unsure += p.roles_known ? 0 : 1;
        if (unsure)
          plan_.notes.push_back("course '" + course.shortname + "': " + std::to_string(unsure) +
                                " user(s) were enrolled while it was being read (roles not seen): left alone "
                                "until a run reads it again");
      }

      for (const auto& [userid, w] : wanted) PlanWanted(t, userid, w, current, verified);

      auto lo = owned_.enrolments.lower_bound(CourseUser{courseid, 0});
      for (auto it = lo; it != owned_.enrolments.end() && it->first.courseid == courseid; ++it) {
        if (wanted.count(it->first.userid)) continue;
        PlanLeaver(t, it->second, current, verified);
      }
      if (pending_.size() != before) plan_.touched_courses.push_back(courseid);
    }
  }

  // Whether enrolsync's own manual enrolment is active. Moodle's participant
  // list says only whether *some* enrolment of the user is active (a meta or
  // self enrolment counts too) and never which method it came from. None
  // active: ours is not. Some active: ours is as enrolsync last set it.
  static bool OursActive(const OwnedEnrolment& o, const Participant& p) {
    return p.active && o.status == model::EnrolStatus::kActive;
  }

  void PlanWanted(const Target& t, MoodleId userid, const Want& w, const Participants& current, bool verified) {
    auto oit = owned_.enrolments.find(CourseUser{t.courseid, userid});
    const OwnedEnrolment* o = oit == owned_.enrolments.end() ? nullptr : &oit->second;
    auto pit = current.find(userid);
    if (pit == current.end()) {
      std::string why = o && o->owns_enrolment ? "drift: the enrolment enrolsync made is missing in Moodle"
                                               : "new row in the feed";
      Add(Item(Action::kEnrol, t, userid, w.course_key, w.user_key, w.roles.front(), why));
      for (std::size_t i = 1; i < w.roles.size(); ++i)
        Add(Item(Action::kRoleAssign, t, userid, w.course_key, w.user_key, w.roles[i], "second role in the feed"));
      return;
    }
    const Participant& p = pit->second;
    if (!p.roles_known) return;  // noted per course
    bool owns_enrolment = o && o->owns_enrolment;
    if (!owns_enrolment && policy_.take_over_existing) {
      // The enrol call adds a manual enrolment beside the existing one (or
      // sets a teacher's manual one active): from now on it is ours.
      Add(Item(Action::kEnrol, t, userid, w.course_key, w.user_key, w.roles.front(),
               "taking over an existing enrolment (take_over_existing)"));
      for (std::size_t i = 1; i < w.roles.size(); ++i)
        if (!p.roles.count(w.roles[i]))
          Add(Item(Action::kRoleAssign, t, userid, w.course_key, w.user_key, w.roles[i], "second role in the feed"));
      return;
    }
    std::set<MoodleId> covered = p.roles;
    if (owns_enrolment && !OursActive(*o, p)) {
      MoodleId role = w.roles.front();
      for (MoodleId r : w.roles)
        if (p.roles.count(r)) {
          role = r;
          break;
        }
      std::string why = o->status == model::EnrolStatus::kSuspended
                            ? "row is back in the feed"
                            : "drift: the enrolment was suspended in Moodle";
      Add(Item(Action::kUnsuspend, t, userid, w.course_key, w.user_key, role, why));
      covered.insert(role);
    }
    for (MoodleId r : w.roles) {
      if (covered.count(r)) continue;
      std::string why = o && o->roles.count(r) ? "drift: the role enrolsync assigned is missing in Moodle"
                                               : (p.roles.empty() ? "role in the feed" : "role changed in the feed");
      if (!verified && !o) why = "role in the feed";
      Add(Item(Action::kRoleAssign, t, userid, w.course_key, w.user_key, r, why));
    }
    if (o) {
      for (MoodleId r : o->roles) {
        if (!p.roles.count(r)) continue;
        if (std::find(w.roles.begin(), w.roles.end(), r) != w.roles.end()) continue;
        // A role change's unassign is not an enrolment removal: never withheld.
        Add(Item(Action::kRoleUnassign, t, userid, w.course_key, w.user_key, r, "role changed in the feed"));
      }
    }
  }

  void PlanLeaver(const Target& t, const OwnedEnrolment& o, const Participants& current, bool verified) {
    auto pit = current.find(o.userid);
    if (pit == current.end()) {
      if (verified)
        plan_.forget.push_back(Forget{CourseUser{o.courseid, o.userid},
                                      "not enrolled in Moodle any more and no longer in the feed"});
      return;
    }
    if (IsProtected(o)) {
      plan_.notes.push_back("kept " + o.source_user + " in '" + o.source_course +
                            "': the row is still in the feed but could not be resolved");
      return;
    }
    const Participant& p = pit->second;
    if (!p.roles_known) return;  // noted per course
    std::vector<MoodleId> our_roles;
    for (MoodleId r : o.roles)
      if (p.roles.count(r)) our_roles.push_back(r);
    const std::string why = "row left the feed";
    if (!o.owns_enrolment) {
      // Someone else's enrolment: we only ever take back our own roles.
      if (policy_.unenrol_action == UnenrolAction::kUnenrol ||
          policy_.unenrol_action == UnenrolAction::kSuspendRemoveRoles) {
        for (MoodleId r : our_roles) AddRemoval(Item(Action::kRoleUnassign, t, o.userid, o.source_course, o.source_user, r, why));
      }
      return;
    }
    switch (policy_.unenrol_action) {
      case UnenrolAction::kKeep: return;
      case UnenrolAction::kUnenrol:
        // Moodle drops the manual enrolment's roles with it only when no
        // other enrolment (meta, self…) keeps the user in the course, and the
        // web services do not say which methods a user has. Take back the
        // roles enrolsync assigned first, as enrol_database's unenrol does
        // (role_unassign_all for its own instance), so a teacher taken off a
        // set never keeps editingteacher through a meta link.
        for (MoodleId r : our_roles)
          AddRemoval(Item(Action::kRoleUnassign, t, o.userid, o.source_course, o.source_user, r, why));
        AddRemoval(Item(Action::kUnenrol, t, o.userid, o.source_course, o.source_user, 0, why));
        return;
      case UnenrolAction::kSuspend:
      case UnenrolAction::kSuspendRemoveRoles: {
        if (OursActive(o, p)) {
          // enrol_manual_enrol_users needs a role Moodle lets the token
          // assign (0 is refused: wsusercannotassign) and role_assigns it.
          // Send a role enrolsync assigned and the user still holds. Failing
          // that, a role the user does not hold at all (the enrolment's own,
          // then default_role), taken back right after, so the suspension
          // changes no role. Never a role the user holds another way: the
          // call would add a manual copy of it that outlives the other
          // method.
          MoodleId role = 0;
          bool temporary = false;
          if (!our_roles.empty()) {
            role = our_roles.front();
          } else {
            std::vector<MoodleId> candidates(o.roles.begin(), o.roles.end());
            if (default_role_) candidates.push_back(default_role_);
            for (MoodleId r : candidates) {
              if (r && !p.roles.count(r)) {
                role = r;
                temporary = true;
                break;
              }
            }
          }
          if (!role) {
            std::string held;
            for (MoodleId r : p.roles) held += (held.empty() ? "" : ", ") + RoleName(r);
            plan_.problems.push_back(Problem{
                "", 0,
                {{"course", o.source_course}, {"user", o.source_user}},
                "can not suspend '" + o.source_user + "' in course '" + o.source_course +
                    "': enrol_manual_enrol_users needs a role to send, the user holds no role enrolsync assigned, "
                    "and every other role it could send (" + (held.empty() ? std::string("none") : held) +
                    ") is held through another enrolment; the enrolment stays active"});
          } else {
            AddRemoval(Item(Action::kSuspend, t, o.userid, o.source_course, o.source_user, role, why));
            if (temporary)
              AddRemoval(Item(Action::kRoleUnassign, t, o.userid, o.source_course, o.source_user, role,
                              "the suspend call had to send a role the user did not hold"));
          }
        }
        if (policy_.unenrol_action == UnenrolAction::kSuspendRemoveRoles) {
          for (MoodleId r : our_roles) AddRemoval(Item(Action::kRoleUnassign, t, o.userid, o.source_course, o.source_user, r, why));
        }
        return;
      }
    }
  }

  void Finish() {
    // Sorted through an index (4 bytes an item): a stable sort of the items
    // themselves moves ~300-byte objects and takes a buffer as big as the
    // plan. The order is then applied in place, cycle by cycle, and the
    // creates (few) go in front, so the items never exist twice.
    std::vector<std::uint32_t> order(pending_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::uint32_t>(i);
    std::stable_sort(order.begin(), order.end(), [this](std::uint32_t x, std::uint32_t y) {
      const PlanItem& a = pending_[x];
      const PlanItem& b = pending_[y];
      const int oa = static_cast<int>(a.action), ob = static_cast<int>(b.action);
      return std::tie(oa, a.course_shortname, a.user_key, a.roleid) <
             std::tie(ob, b.course_shortname, b.user_key, b.roleid);
    });
    std::vector<bool> placed(order.size(), false);
    for (std::size_t start = 0; start < order.size(); ++start) {
      if (placed[start]) continue;
      PlanItem held = std::move(pending_[start]);
      std::size_t to = start;
      while (order[to] != start) {
        pending_[to] = std::move(pending_[order[to]]);
        placed[to] = true;
        to = order[to];
      }
      pending_[to] = std::move(held);
      placed[to] = true;
    }
    // create_index points into the creates, which keep positions 0..n-1.
    std::vector<PlanItem> creates = std::move(plan_.items);
    plan_.items = std::move(pending_);
    plan_.items.insert(plan_.items.begin(), std::make_move_iterator(creates.begin()),
                       std::make_move_iterator(creates.end()));
    pending_.clear();
    plan_.summary = Summarize(plan_.items);
    std::sort(plan_.touched_courses.begin(), plan_.touched_courses.end());

    // Removal guard.
    plan_.removal_block_reasons = policy_.block_removals;
    const long long limit = RemovalLimit(policy_.max_removals, policy_.max_removals_percent, policy_.allow_removals,
                                         plan_.managed_enrolments);
    plan_.removal_limit = limit;
    plan_.guard_tripped = limit >= 0 && plan_.summary.Removals() > limit;
  }

  const model::DesiredState& desired_;
  const model::MoodleSnapshot& moodle_;
  const model::Ownership& owned_;
  const Policy& policy_;
  Plan plan_;
  std::vector<PlanItem> pending_;  // non-create items, sorted in Finish()

  std::map<std::string, MoodleId> cat_by_id_, cat_by_idnumber_;
  std::map<MoodleId, std::string> role_name_;
  std::map<std::string, MoodleId> role_by_shortname_;
  bool fallback_reported_ = false;
  MoodleId default_role_ = 0;  // policy_.default_role's id; 0 = not a Moodle role
  std::map<MoodleId, const model::Course*> course_by_id_;
  // Lookups only, never walked in order: hashed (a district has 1M users).
  std::unordered_map<std::string, const model::Course*> course_by_shortname_, course_by_idnumber_;
  std::unordered_map<std::string, std::vector<const model::User*>> users_;
  std::unordered_map<std::string, int> pending_by_key_;  // local course key -> create index
  std::map<Target, std::map<MoodleId, Want>> wants_;
  std::set<std::pair<std::string, std::string>> protected_;
};

}  // namespace

Adoption PlanAdoption(const model::DesiredState& desired, const model::MoodleSnapshot& moodle,
                      const model::Ownership& owned, const Policy& policy) {
  return Planner(desired, moodle, owned, policy).Adopt();
}

const char* UnenrolActionName(UnenrolAction a) {
  switch (a) {
    case UnenrolAction::kUnenrol: return "unenrol";
    case UnenrolAction::kKeep: return "keep";
    case UnenrolAction::kSuspend: return "suspend";
    case UnenrolAction::kSuspendRemoveRoles: return "suspend_remove_roles";
  }
  return "?";
}

long long RemovalLimit(long long max_removals, double max_removals_percent, long long allow_removals,
                       long long managed) {
  if (allow_removals >= 0) return allow_removals;
  long long limit = max_removals;
  if (max_removals_percent >= 0) {
    auto pct = static_cast<long long>(max_removals_percent * static_cast<double>(managed) / 100.0);
    limit = limit < 0 ? pct : std::min(limit, pct);
  }
  return limit;
}

const char* ActionName(Action a) {
  switch (a) {
    case Action::kCreateCourse: return "create_course";
    case Action::kEnrol: return "enrol";
    case Action::kUnsuspend: return "unsuspend";
    case Action::kRoleAssign: return "role_assign";
    case Action::kSuspend: return "suspend";
    case Action::kRoleUnassign: return "role_unassign";
    case Action::kUnenrol: return "unenrol";
  }
  return "?";
}

Summary Summarize(const std::vector<PlanItem>& items) {
  Summary s;
  for (const auto& i : items) {
    switch (i.action) {
      case Action::kCreateCourse: ++s.courses_create; break;
      case Action::kEnrol: ++s.enrol; break;
      case Action::kUnsuspend: ++s.unsuspend; break;
      case Action::kRoleAssign: ++s.role_assign; break;
      case Action::kSuspend: ++s.suspend; break;
      case Action::kRoleUnassign: ++s.role_unassign; break;
      case Action::kUnenrol: ++s.unenrol; break;
    }
  }
  return s;
}

std::optional<std::string> UserLookupValue(const std::string& raw, LocalUserField field, std::string* why) {
  auto too_long = [&](const std::string& v, std::size_t max, const char* what) {
    std::size_t n = Utf8Length(v);
    if (n <= max) return false;
    *why = std::string("the ") + what + " is " + std::to_string(n) + " characters, longer than Moodle's " +
           std::to_string(max);
    return true;
  };
  switch (field) {
    case LocalUserField::kEmail: {
      std::string v = Trim(raw);
      if (too_long(v, kUserEmailMax, "email")) return std::nullopt;
      if (!IsMoodleEmail(v)) {
        *why = "not an email address Moodle accepts (PARAM_EMAIL)";
        return std::nullopt;
      }
      return v;
    }
    case LocalUserField::kUsername:
      // Matched exactly, as enrol_database does; Moodle keeps usernames
      // cleaned, so one its cleaning would change names no one.
      if (too_long(raw, kUserUsernameMax, "username")) return std::nullopt;
      if (CleanMoodleUsername(raw) != raw) {
        *why = "not a username Moodle accepts (PARAM_USERNAME: lower-case a-z 0-9 - . _ @ only; cleaned it is '" +
               ShownValue(CleanMoodleUsername(raw)) + "')";
        return std::nullopt;
      }
      return raw;
    case LocalUserField::kIdnumber:
      if (too_long(raw, kUserIdnumberMax, "idnumber")) return std::nullopt;
      return raw;
    case LocalUserField::kId: {
      long long id = 0;
      if (!ParseInt64(Trim(raw), &id) || id <= 0) {
        *why = "not a Moodle user id (a whole number)";
        return std::nullopt;
      }
      return std::to_string(id);
    }
  }
  return raw;
}

Plan BuildPlan(const model::DesiredState& desired, const model::MoodleSnapshot& moodle,
               const model::Ownership& owned, const Policy& policy) {
  return Planner(desired, moodle, owned, policy).Run();
}

std::string MoodleTraceLine(const PlanItem& i) {
  const std::string uid = std::to_string(i.userid);
  switch (i.action) {
    case Action::kCreateCourse:
      return "creating course: " + std::to_string(i.courseid) + ", " + i.course_fullname + ", " + i.course_shortname +
             ", " + i.idnumber + ", " + std::to_string(i.categoryid);
    case Action::kEnrol: return "enrolling: " + uid + " ==> " + i.course_shortname + " as " + i.role;
    case Action::kUnsuspend: return "unsuspending: " + uid + " ==> " + i.course_shortname;
    case Action::kRoleAssign: return "assigning roles: " + uid + " ==> " + i.course_shortname + " as " + i.role;
    case Action::kSuspend: return "suspending: " + uid + " ==> " + i.course_shortname;
    // "unsassigning" is Moodle's own spelling; log parsers depend on it.
    case Action::kRoleUnassign: return "unsassigning roles: " + uid + " ==> " + i.course_shortname;
    case Action::kUnenrol: return "unenrolling: " + uid + " ==> " + i.course_shortname;
  }
  return "";
}

std::string PlanLine(const PlanItem& i) {
  const std::string where = i.course_shortname + ": " + i.user_key;
  switch (i.action) {
    case Action::kCreateCourse:
      return "+ course " + i.course_shortname + " \"" + i.course_fullname + "\" idnumber " +
             (i.idnumber.empty() ? "-" : i.idnumber) + " in category " + std::to_string(i.categoryid);
    case Action::kEnrol: return "+ enrol " + where + " as " + i.role;
    case Action::kUnsuspend: return "+ unsuspend " + where;
    case Action::kRoleAssign: return "~ role " + where + " +" + i.role;
    case Action::kSuspend: return "- suspend " + where;
    case Action::kRoleUnassign: return "~ role " + where + " -" + i.role;
    case Action::kUnenrol: return "- unenrol " + where;
  }
  return "";
}

}  // namespace enrolsync::plan
