#include "school_site.h"

#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "moodle/client.h"
#include "util/strings.h"

namespace enrolsync::testing {

namespace {
std::vector<std::vector<std::string>> SqliteQuery(const std::string& path, const std::string& sql) {
  std::vector<std::vector<std::string>> out;
  sqlite3* db = nullptr;
  sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        auto t = sqlite3_column_text(st, i);
        row.push_back(t ? reinterpret_cast<const char*>(t) : "");
      }
      out.push_back(std::move(row));
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}
}  // namespace

SchoolSite::SchoolSite(SiteOptions options) : options_(std::move(options)) {
  token_ = "e2e-token-" + std::to_string(::getpid()) + "-7f3a9c";
}

SchoolSite::~SchoolSite() {
  if (sandbox_) sandbox_->Stop();
}

Status SchoolSite::RestartMoodle() {
  const int port = sandbox_->port();
  sandbox_->Stop();
  sandbox_.reset();
  sandbox::Options so;
  so.state_dir = dir_.File("moodle");
  so.token = token_;
  so.latency_ms = options_.latency_ms;
  so.max_input_vars = options_.max_input_vars;
  so.port = port;
  auto sb = sandbox::Sandbox::Start(so);
  if (!sb) return Fail(sb.error());
  sandbox_ = std::move(*sb);
  return Ok();
}

Status SchoolSite::Setup() {
  school_ = schoolgen::Generate(options_.school);
  if (auto st = schoolgen::WriteSqlite(school_, dir_.File("school.db")); !st) return st;
  sandbox::Options so;
  so.state_dir = dir_.File("moodle");
  so.token = token_;
  so.latency_ms = options_.latency_ms;
  so.max_input_vars = options_.max_input_vars;
  auto sb = sandbox::Sandbox::Start(so);
  if (!sb) return Fail(sb.error());
  sandbox_ = std::move(*sb);

  moodle::ClientOptions co;
  co.url = sandbox_->url();
  co.token = token_;
  moodle::Client client(co);
  // Categories: create them in id order so the sandbox gives the ids the
  // school's view refers to (category 1 exists already).
  int max_id = 1;
  std::map<int, std::string> cats;
  for (const auto& [id, name] : school_.categories) {
    cats[id] = name;
    max_id = std::max(max_id, id);
  }
  for (int id = 2; id <= max_id; ++id) {
    std::string name = cats.count(id) ? cats[id] : "Spare " + std::to_string(id);
    auto r = client.Call("core_course_create_categories",
                         {{"categories[0][name]", name}, {"categories[0][parent]", "0"}});
    if (!r) return Fail(r.error().Wrap("seeding category " + name));
    if (r->find("\"id\":" + std::to_string(id)) == std::string::npos)
      return Fail(ErrorCode::kInternal, "seeded category got an unexpected id: " + *r);
  }
  // Users, as auth_ldap would have created them.
  const auto& people = school_.people;
  for (std::size_t start = 0; start < people.size(); start += 200) {
    moodle::FormFields f;
    for (std::size_t i = start; i < std::min(people.size(), start + 200); ++i) {
      std::string p = "users[" + std::to_string(i - start) + "]";
      f.push_back({p + "[username]", people[i].username});
      f.push_back({p + "[firstname]", people[i].firstname});
      f.push_back({p + "[lastname]", people[i].lastname});
      f.push_back({p + "[email]", people[i].email});
      f.push_back({p + "[idnumber]", people[i].idnumber});
      f.push_back({p + "[auth]", "ldap"});
    }
    auto r = client.Call("core_user_create_users", f);
    if (!r) return Fail(r.error().Wrap("seeding users"));
  }
  sandbox_->ResetCallCounts();
  std::ofstream(dir_.File("moodle.token")) << token_ << "\n";
  WriteConfig(options_.extra_config);
  return Ok();
}

void SchoolSite::WriteConfig(const std::string& extra) {
  std::ofstream out(dir_.File("enrolsync.toml"));
  out << "state_dir = \"state\"\n\n"
      << "[moodle]\nurl = \"" << sandbox_->url() << "\"\ntoken_file = \"moodle.token\"\n"
      << "max_input_vars = " << options_.max_input_vars << "\n\n"
      << "[source]\ntype = \"sqlite\"\ndatabase = \"school.db\"\n\n"
      << "[courses]\ntable = \"VwMoodleCourseData\"\nfullname = \"txtFullName\"\nshortname = \"txtShortName\"\n"
      << "idnumber = \"txtCourseID\"\ncategory = \"intCategoryID\"\ncategory_field = \"id\"\ndefault_category = 2\n\n"
      << "[courses.defaults]\nvisible = false\nformat = \"topics\"\ncoursedisplay = 1\nshowreports = true\n"
      << "enablecompletion = true\n\n"
      << "[enrolments]\ntable = \"VwMoodleEnrolData\"\ncourse_field = \"txtSetCode\"\n"
      << "user_field = \"txtEmailAddress\"\nrole_field = \"intRoleID\"\nlocal_course_field = \"idnumber\"\n"
      << "local_user_field = \"email\"\nlocal_role_field = \"id\"\ndefault_role = \"student\"\n"
      << "unenrol_action = \"" << options_.unenrol_action << "\"\nignore_hidden_courses = false\n\n"
      << "[safety]\nmax_removals = " << options_.max_removals << "\n"
      << extra;
}

Result<config::Config> SchoolSite::Config() const { return config::LoadConfig(config_path()); }

sync::RunReport SchoolSite::Sync(bool apply, long long allow_removals, bool verify_all,
                                 std::vector<std::string>* trace) {
  auto cfg = Config();
  if (!cfg) {
    sync::RunReport r;
    r.exit_code = sync::kExitConfig;
    r.error = cfg.error().message;
    return r;
  }
  sync::RunOptions opt;
  opt.apply = apply;
  opt.allow_removals = allow_removals;
  opt.verify_all = verify_all;
  if (trace) opt.trace = [trace](const std::string& l) { trace->push_back(l); };
  return sync::RunOnce(*cfg, opt);
}

Status SchoolSite::Exec(const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open(dir_.File("school.db").c_str(), &db) != SQLITE_OK) return Fail(ErrorCode::kIo, "open school.db");
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  if (rc != SQLITE_OK) return Fail(ErrorCode::kIo, "school.db: " + msg + " in: " + sql);
  return Ok();
}


std::vector<std::vector<std::string>> SchoolSite::Query(const std::string& sql) {
  return SqliteQuery(dir_.File("school.db"), sql);
}

std::vector<std::tuple<std::string, std::string, int>> SchoolSite::EnrolFeed() {
  std::vector<std::tuple<std::string, std::string, int>> out;
  for (auto& r : SqliteQuery(dir_.File("school.db"),
                       "SELECT txtSetCode, txtEmailAddress, intRoleID FROM VwMoodleEnrolData"))
    out.emplace_back(r[0], r[1], std::stoi(r[2]));
  return out;
}

std::vector<std::tuple<std::string, std::string, std::string>> SchoolSite::CourseFeed() {
  std::vector<std::tuple<std::string, std::string, std::string>> out;
  for (auto& r : SqliteQuery(dir_.File("school.db"), "SELECT txtCourseID, txtShortName, intCategoryID FROM VwMoodleCourseData"))
    out.emplace_back(r[0], r[1], r[2]);
  return out;
}

MoodleState SchoolSite::Moodle() {
  std::map<long long, std::string> course, email;
  for (const auto& c : sandbox_->Courses()) course[c.id] = c.idnumber;
  for (const auto& u : sandbox_->Users()) email[u.id] = u.email;
  MoodleState s;
  for (const auto& e : sandbox_->Enrolments()) {
    if (e.method != "manual") continue;
    s[{course[e.courseid], email[e.userid]}].status = e.status;
  }
  for (const auto& ra : sandbox_->RoleAssignments()) {
    auto key = std::make_pair(course[ra.courseid], email[ra.userid]);
    s[key].roles.insert(ra.roleid);
  }
  return s;
}

void Oracle::Sync(const std::vector<std::tuple<std::string, std::string, std::string>>& courses,
                  const std::vector<std::tuple<std::string, std::string, int>>& enrols) {
  for (const auto& [idnumber, shortname, category] : courses) {
    if (category.empty() || categories_.count(category)) created_.insert(idnumber);
  }
  std::map<std::pair<std::string, std::string>, std::set<long long>> want;
  for (const auto& [set, email, role] : enrols) {
    if (!created_.count(set) || !users_.count(ToLower(email))) continue;
    want[{set, email}].insert(role);
  }
  for (auto it = state_.begin(); it != state_.end();) {
    auto w = want.find(it->first);
    if (w != want.end()) {
      it->second.status = 0;
      it->second.roles = w->second;
      ++it;
      continue;
    }
    if (action_ == "unenrol") {
      it = state_.erase(it);
      continue;
    }
    if (action_ == "suspend") it->second.status = 1;
    if (action_ == "suspend_remove_roles") {
      it->second.status = 1;
      it->second.roles.clear();
    }
    ++it;
  }
  for (const auto& [key, roles] : want) {
    if (!state_.count(key)) state_[key] = Held{0, roles};
  }
}

CliOutput RunEnrolsync(const std::string& args) {
  std::string cmd = std::string(ENROLSYNC_BINARY_DIR) + "/src/cli/enrolsync " + args + " 2>&1";
  CliOutput o;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return o;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) o.out.append(buf, n);
  int status = ::pclose(p);
  o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return o;
}

std::string CapitalisedEmail(const std::string& email) {
  std::string out = email;
  bool start = true;
  for (char& c : out) {
    if (start && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    start = c == '.' || c == '@';
  }
  return out;
}

std::string Describe(const MoodleState& expected, const MoodleState& actual) {
  std::ostringstream o;
  int shown = 0;
  auto show = [](const Held& h) {
    std::string s = h.status ? "suspended" : "active";
    s += " roles{";
    for (auto r : h.roles) s += std::to_string(r) + ",";
    return s + "}";
  };
  for (const auto& [k, v] : expected) {
    auto it = actual.find(k);
    if (it == actual.end()) {
      if (shown++ < 15) o << "  missing in Moodle: " << k.first << " " << k.second << " " << show(v) << "\n";
    } else if (!(it->second == v)) {
      if (shown++ < 15)
        o << "  differs: " << k.first << " " << k.second << " expected " << show(v) << " got " << show(it->second) << "\n";
    }
  }
  for (const auto& [k, v] : actual) {
    if (!expected.count(k) && shown++ < 15)
      o << "  unexpected in Moodle: " << k.first << " " << k.second << " " << show(v) << "\n";
  }
  o << "  (" << expected.size() << " expected, " << actual.size() << " in Moodle)";
  return o.str();
}

}  // namespace enrolsync::testing
