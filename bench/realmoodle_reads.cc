// realmoodle_reads: what each candidate read costs a real Moodle 5.1, to
// choose how a run reads users, courses and participants (issue "Nightly runs
// that cost Moodle almost nothing"). Syncs the generated school into a fresh
// site (tests/real_school.h), then times each candidate call REPEAT times
// and prints the median wall time, the answer's size and how many records it
// returned. Not a test: bench/README.md records the numbers and where they
// were measured.
//
//   realmoodle_reads [--pupils 800] [--staff 90] [--repeat 3]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "moodle/client.h"
#include "real_school.h"

using namespace enrolsync;
using json = nlohmann::json;

namespace {

struct Candidate {
  std::string name;      // what is read
  std::string function;  // the web-service function
  moodle::FormFields params;
};

// Records in an answer: top-level list items, or the items of the first
// list found one level down (users, courses).
std::size_t Records(const json& doc) {
  if (doc.is_array()) {
    std::size_t n = 0;
    bool nested = false;
    for (const auto& x : doc) {
      if (x.is_object() && x.contains("users") && x["users"].is_array()) {
        n += x["users"].size();
        nested = true;
      }
    }
    return nested ? n : doc.size();
  }
  if (doc.is_object()) {
    for (const char* key : {"users", "courses", "profiles"})
      if (doc.contains(key) && doc[key].is_array()) return doc[key].size();
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  schoolgen::Options size{800, 90};
  int repeat = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--pupils") size.pupils = std::atoi(argv[i + 1]);
    else if (a == "--staff") size.staff = std::atoi(argv[i + 1]);
    else if (a == "--repeat") repeat = std::max(1, std::atoi(argv[i + 1]));
  }
  testing::RealSchoolOptions o;
  o.size = size;
  auto school = testing::RealSchool::Start(o);
  if (!school) {
    std::fprintf(stderr, "realmoodle_reads: %s\n", school.error().message.c_str());
    return 1;
  }
  auto first = (*school)->Sync();
  if (first.exit_code != 0 && first.exit_code != 4) {
    std::fprintf(stderr, "realmoodle_reads: first sync exit %d: %s\n", first.exit_code, first.error.c_str());
    return 1;
  }
  auto& m = (*school)->moodle();
  auto courses = m.Query("SELECT id FROM mdl_course WHERE id > 1 ORDER BY id");
  auto users = m.Query("SELECT id FROM mdl_user WHERE auth = 'ldap' ORDER BY id");
  auto idnumber = m.Query("SELECT idnumber FROM mdl_course WHERE id > 1 AND idnumber <> '' ORDER BY id LIMIT 1");
  if (!courses || !users || !idnumber || courses->empty() || users->size() < 100 || idnumber->empty()) {
    std::fprintf(stderr, "realmoodle_reads: the synced site has too few courses or users\n");
    return 1;
  }
  std::printf("site: %zu courses, %zu ldap users\n", courses->size(), users->size());

  moodle::ClientOptions co;
  co.url = m.url();
  co.token = m.token();
  moodle::Client client(co);

  auto course_ids = [&](std::size_t n) {
    std::vector<std::string> ids;
    for (std::size_t i = 0; i < n && i < courses->size(); ++i) ids.push_back((*courses)[i][0]);
    return ids;
  };
  auto with_capability = [&](std::size_t n, const std::string& userfields, bool onlyactive) {
    moodle::FormFields f;
    auto ids = course_ids(n);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      f.emplace_back("coursecapabilities[" + std::to_string(i) + "][courseid]", ids[i]);
      f.emplace_back("coursecapabilities[" + std::to_string(i) + "][capabilities][0]", "");
    }
    int k = 0;
    f.emplace_back("options[" + std::to_string(k) + "][name]", "userfields");
    f.emplace_back("options[" + std::to_string(k++) + "][value]", userfields);
    if (onlyactive) {
      f.emplace_back("options[" + std::to_string(k) + "][name]", "onlyactive");
      f.emplace_back("options[" + std::to_string(k++) + "][value]", "1");
    }
    return f;
  };
  auto users_by_id = [&](std::size_t n) {
    moodle::FormFields f{{"field", "id"}};
    for (std::size_t i = 0; i < n && i < users->size(); ++i)
      f.emplace_back("values[" + std::to_string(i) + "]", (*users)[i][0]);
    return f;
  };
  auto ids_csv = [&](std::size_t n) {
    std::string s;
    for (const auto& id : course_ids(n)) s += (s.empty() ? "" : ",") + id;
    return s;
  };
  const std::string kUserFields = "id,username,email,idnumber,firstname,lastname,auth,suspended,roles";

  std::vector<Candidate> candidates = {
      {"site info (bootstrap)", "core_webservice_get_site_info", {}},
      {"1 user by id", "core_user_get_users_by_field", users_by_id(1)},
      {"100 users by id", "core_user_get_users_by_field", users_by_id(100)},
      {"every ldap user", "core_user_get_users", {{"criteria[0][key]", "auth"}, {"criteria[0][value]", "ldap"}}},
      {"1 course, participants id,roles", "core_enrol_get_enrolled_users",
       {{"courseid", course_ids(1)[0]}, {"options[0][name]", "userfields"}, {"options[0][value]", "id,roles"}}},
      {"1 course, participants with user fields", "core_enrol_get_enrolled_users",
       {{"courseid", course_ids(1)[0]}, {"options[0][name]", "userfields"}, {"options[0][value]", kUserFields}}},
      {"1 course, participants default fields", "core_enrol_get_enrolled_users", {{"courseid", course_ids(1)[0]}}},
      {"10 courses, with_capability id,roles", "core_enrol_get_enrolled_users_with_capability",
       with_capability(10, "id,roles", false)},
      {"66 courses, with_capability id,roles", "core_enrol_get_enrolled_users_with_capability",
       with_capability(66, "id,roles", false)},
      {"66 courses, with_capability id onlyactive", "core_enrol_get_enrolled_users_with_capability",
       with_capability(66, "id", true)},
      {"66 courses, with_capability user fields", "core_enrol_get_enrolled_users_with_capability",
       with_capability(66, kUserFields, false)},
      {"every course, with_capability id,roles", "core_enrol_get_enrolled_users_with_capability",
       with_capability(courses->size(), "id,roles", false)},
      {"every course, by_field (none)", "core_course_get_courses_by_field", {}},
      {"66 courses, by_field ids", "core_course_get_courses_by_field", {{"field", "ids"}, {"value", ids_csv(66)}}},
      {"1 course, by_field idnumber", "core_course_get_courses_by_field",
       {{"field", "idnumber"}, {"value", (*idnumber)[0][0]}}},
      {"every course, get_courses", "core_course_get_courses", {}},
      {"search courses by name (page of 100)", "core_course_search_courses",
       {{"criterianame", "search"}, {"criteriavalue", "a"}, {"perpage", "100"}}},
  };

  std::printf("%-46s %-48s %8s %8s %9s\n", "read", "function", "median s", "records", "bytes");
  for (const auto& c : candidates) {
    std::vector<double> times;
    std::size_t records = 0, bytes = 0;
    std::string error;
    for (int r = 0; r < repeat; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      auto body = client.Call(c.function, c.params);
      times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      if (!body) {
        error = body.error().message;
        break;
      }
      bytes = body->size();
      records = Records(json::parse(*body, nullptr, false));
    }
    std::sort(times.begin(), times.end());
    if (!error.empty()) {
      std::printf("%-46s %-48s   error: %s\n", c.name.c_str(), c.function.c_str(), error.substr(0, 200).c_str());
    } else {
      std::printf("%-46s %-48s %8.3f %8zu %9zu\n", c.name.c_str(), c.function.c_str(), times[times.size() / 2],
                  records, bytes);
    }
    std::fflush(stdout);
  }
  return 0;
}
