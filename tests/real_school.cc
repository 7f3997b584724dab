#include "real_school.h"

#include <fstream>

#include "config/config.h"
#include "moodle/client.h"
#include "school_site.h"

namespace enrolsync::testing {

using testsupport::LdifLine;
using testsupport::SlapdServer;

std::string RealSchool::Dn(const std::string& uid, const DirectoryPerson& p) {
  return "uid=" + uid + ",ou=" + p.ou + ",dc=school,dc=test";
}

std::string RealSchool::Entry(const std::string& uid, const DirectoryPerson& p) {
  return "dn: " + Dn(uid, p) + "\nobjectClass: inetOrgPerson\nuid: " + uid + "\n" + LdifLine("givenName", p.firstname) +
         "\n" + LdifLine("sn", p.lastname) + "\n" + LdifLine("cn", p.firstname + " " + p.lastname) + "\n" +
         LdifLine("mail", p.email) + "\nemployeeNumber: " + p.idnumber + "\n\n";
}

Result<std::unique_ptr<RealSchool>> RealSchool::Start(const RealSchoolOptions& options) {
  if (options.real_moodle) {
    auto dist = testsupport::FindMoodleDistribution();
    if (!dist) return Fail(ErrorCode::kNotFound, dist.error().message);
  }
  std::unique_ptr<RealSchool> s(new RealSchool());
  if (auto st = s->Setup(options); !st) return Fail(st.error());
  return s;
}

Status RealSchool::Setup(const RealSchoolOptions& options) {
  if (options.real_moodle) {
    auto server = testsupport::MoodleServer::Start();
    if (!server) return Fail(server.error().Wrap("starting Moodle"));
    moodle_ = std::move(*server);
    url_ = moodle_->url();
    token_ = moodle_->token();
  } else {
    sandbox::Options so;
    so.state_dir = dir_.File("sandbox");
    so.cost_model = options.sandbox_cost_model;
    // As the harness's site is set up (tests/support/moodle/setup_site.php).
    so.manual_welcome_message = false;
    auto sb = sandbox::Sandbox::Start(so);
    if (!sb) return Fail(sb.error().Wrap("starting the sandbox"));
    sandbox_ = std::move(*sb);
    url_ = sandbox_->url();
    token_ = so.token;
  }
  capitalised_mail_ = options.capitalised_mail;

  school_ = schoolgen::Generate(options.size);
  if (auto st = schoolgen::WriteSqlite(school_, mis_path()); !st) return st;
  std::string ldif = "dn: ou=Students,dc=school,dc=test\nobjectClass: organizationalUnit\nou: Students\n\n"
                     "dn: ou=Staff,dc=school,dc=test\nobjectClass: organizationalUnit\nou: Staff\n\n";
  for (std::size_t i = 0; i < school_.people.size(); ++i) {
    const auto& p = school_.people[i];
    DirectoryPerson e{p.staff ? "Staff" : "Students", p.firstname, p.lastname, p.email, p.idnumber};
    if (static_cast<int>(i) == options.capitalised_mail) e.email = CapitalisedEmail(p.email);
    people_[p.username] = e;
    ldif += Entry(p.username, e);
  }
  testsupport::SlapdOptions so;
  so.ldif = ldif;
  auto slapd = SlapdServer::Start(so);
  if (!slapd) return Fail(slapd.error().Wrap("starting slapd"));
  slapd_ = std::move(*slapd);

  moodle::ClientOptions co;
  co.url = url_;
  co.token = token_;
  moodle::Client client(co);
  int max_id = 1;
  std::map<int, std::string> cats;
  for (const auto& [id, name] : school_.categories) {
    cats[id] = name;
    max_id = std::max(max_id, id);
  }
  categories_.push_back("1");
  for (int id = 2; id <= max_id; ++id) {
    std::string name = cats.count(id) ? cats[id] : "Spare " + std::to_string(id);
    auto r = client.Call("core_course_create_categories", {{"categories[0][name]", name}, {"categories[0][parent]", "0"}});
    if (!r) return Fail(r.error().Wrap("creating category " + name));
    if (r->find("\"id\":" + std::to_string(id)) == std::string::npos)
      return Fail(ErrorCode::kInternal, "category " + name + " got an unexpected id: " + *r);
    categories_.push_back(std::to_string(id));
  }

  std::ofstream(dir_.File("moodle.token")) << token_ << "\n";
  std::ofstream(dir_.File("ldap.password")) << slapd_->reader_password() << "\n";
  std::ofstream(config_path())
      << "state_dir = \"state\"\n\n"
      << "[moodle]\nurl = \"" << url_ << "\"\ntoken_file = \"moodle.token\"\nmax_input_vars = 5000\n"
      << options.moodle_extra << "\n\n"
      << "[source]\ntype = \"sqlite\"\ndatabase = \"school.db\"\n\n"
      << "[courses]\ntable = \"VwMoodleCourseData\"\nfullname = \"txtFullName\"\nshortname = \"txtShortName\"\n"
      << "idnumber = \"txtCourseID\"\ncategory = \"intCategoryID\"\ncategory_field = \"id\"\ndefault_category = 2\n\n"
      << "[courses.defaults]\nvisible = false\nformat = \"topics\"\n\n"
      << "[enrolments]\ntable = \"VwMoodleEnrolData\"\ncourse_field = \"txtSetCode\"\n"
      << "user_field = \"txtEmailAddress\"\nrole_field = \"intRoleID\"\nlocal_course_field = \"idnumber\"\n"
      << "local_user_field = \"email\"\nlocal_role_field = \"id\"\ndefault_role = \"student\"\n"
      << "unenrol_action = \"" << options.unenrol_action << "\"\nignore_hidden_courses = false\n\n"
      << "[safety]\nmax_removals = " << options.max_removals << "\n\n"
      << "[users]\nsource = \"ldap\"\nurl = \"" << slapd_->url() << "\"\nbind_dn = \"" << SlapdServer::reader_dn()
      << "\"\nbind_password_file = \"ldap.password\"\n"
      << "contexts = [\"ou=Students,dc=school,dc=test\", \"ou=Staff,dc=school,dc=test\"]\n"
      << "search_sub = false\nuser_attribute = \"uid\"\nobject_class = \"inetOrgPerson\"\nuser_type = \"default\"\n"
      << "removed_user_action = \"suspend\"\nauth = \"ldap\"\npage_size = 500\n\n"
      << "[users.map]\nfirstname = \"givenName\"\nlastname = \"sn\"\nemail = \"mail\"\nidnumber = \"employeeNumber\"\n";
  return Ok();
}

sync::RunReport RealSchool::Sync(bool verify_all) {
  auto cfg = config::LoadConfig(config_path());
  if (!cfg) {
    sync::RunReport r;
    r.exit_code = sync::kExitConfig;
    r.error = cfg.error().message;
    return r;
  }
  sync::RunOptions opt;
  opt.apply = true;
  opt.verify_all = verify_all;
  return sync::RunOnce(*cfg, opt);
}

namespace {

std::string Q(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

}  // namespace

Result<std::vector<std::vector<std::string>>> RealSchool::Mis(const std::string& sql) {
  return testsupport::QuerySqlite(mis_path(), sql);
}

Result<std::string> RealSchool::MisOne(const std::string& sql) {
  auto rows = Mis(sql);
  if (!rows) return Fail(rows.error());
  if (rows->empty() || (*rows)[0].empty()) return Fail(ErrorCode::kNotFound, "no row for " + sql);
  return (*rows)[0][0];
}

Status RealSchool::DayOfChanges(int moves) {
  auto exec = [&](const std::string& sql) { return testsupport::ExecSqlite(mis_path(), sql); };
  auto rows = Mis("SELECT l.TblTeachingManagerSetListsID, l.txtSchoolID, s.intYear, s.TblTeachingManagerSetsID "
                  "FROM TblTeachingManagerSetLists l JOIN TblTeachingManagerSets s "
                  "ON s.TblTeachingManagerSetsID = l.intSetID ORDER BY l.TblTeachingManagerSetListsID");
  if (!rows) return Fail(rows.error());
  int moved = 0;
  for (std::size_t i = 3; i < rows->size() && moved < moves; i += 17) {
    const auto& r = (*rows)[i];
    auto target = Mis("SELECT TblTeachingManagerSetsID FROM TblTeachingManagerSets WHERE intYear = " + r[2] +
                      " AND TblTeachingManagerSetsID <> " + r[3] +
                      " AND TblTeachingManagerSetsID NOT IN (SELECT intSetID FROM TblTeachingManagerSetLists "
                      "WHERE txtSchoolID = " + Q(r[1]) + ") ORDER BY TblTeachingManagerSetsID LIMIT 1");
    if (!target) return Fail(target.error());
    if (target->empty()) continue;
    if (auto st = exec("UPDATE TblTeachingManagerSetLists SET intSetID = " + (*target)[0][0] +
                       " WHERE TblTeachingManagerSetListsID = " + r[0]);
        !st)
      return st;
    ++moved;
  }
  if (moved != moves)
    return Fail(ErrorCode::kInternal, "moved " + std::to_string(moved) + " pupils, not " + std::to_string(moves));
  auto set_with_teacher = MisOne("SELECT TblTeachingManagerSetsID FROM TblTeachingManagerSets "
                                 "WHERE txtTeacher IS NOT NULL ORDER BY TblTeachingManagerSetsID LIMIT 1 OFFSET 5");
  if (!set_with_teacher) return Fail(set_with_teacher.error());
  if (auto st = exec("UPDATE TblTeachingManagerSets SET txtTeacher = NULL WHERE TblTeachingManagerSetsID = " +
                     *set_with_teacher);
      !st)
    return st;
  auto next = MisOne("SELECT MAX(TblTeachingManagerSetsID) + 1 FROM TblTeachingManagerSets");
  // A new subject (renaming one would rename its sets' shortnames, which
  // enrol_database reports as "duplicate idnumber" rows).
  auto subject = MisOne("SELECT MAX(TblTeachingManagerSubjectsID) + 1 FROM TblTeachingManagerSubjects");
  auto teacher = MisOne("SELECT User_Code FROM TblStaff WHERE SystemStatus = 1 LIMIT 1");
  if (!next || !subject || !teacher) return Fail(ErrorCode::kInternal, "the MIS has no sets, subjects or staff");
  if (auto st = exec("INSERT INTO TblTeachingManagerSubjects SELECT " + *subject +
                     ", 'Art & Design: O''Keeffe', 'ADK', txtDepartment, intMoodleCategoryID "
                     "FROM TblTeachingManagerSubjects WHERE intMoodleCategoryID IS NOT NULL AND "
                     "intMoodleCategoryID < 100 LIMIT 1");
      !st)
    return st;
  auto pupils = Mis("SELECT txtSchoolID FROM TblPupilManagementPupils WHERE intSystemStatus = 1 "
                    "ORDER BY txtSchoolID LIMIT 12");
  if (!pupils) return Fail(pupils.error());
  if (pupils->size() != 12u) return Fail(ErrorCode::kInternal, "fewer than 12 pupils");
  const char* codes[] = {"10/Zz1", "9/E/ZZ", "12/Z/QQ"};
  for (int k = 0; k < 3; ++k) {
    std::string id = std::to_string(std::stoi(*next) + k);
    if (auto st = exec("INSERT INTO TblTeachingManagerSets VALUES (" + id + ", " + *subject + ", 10, " +
                       Q(codes[k]) + ", " + Q(*teacher) + ")");
        !st)
      return st;
    for (int p = 0; p < 4; ++p) {
      if (auto st = exec("INSERT INTO TblTeachingManagerSetLists (intSetID, txtSchoolID) VALUES (" + id + ", " +
                         Q((*pupils)[k * 4 + p][0]) + ")");
          !st)
        return st;
    }
  }
  auto doomed = MisOne("SELECT intSetID FROM TblTeachingManagerSetLists GROUP BY intSetID "
                       "HAVING COUNT(*) >= 5 ORDER BY intSetID LIMIT 1 OFFSET 2");
  if (!doomed) return Fail(doomed.error());
  if (auto st = exec("DELETE FROM TblTeachingManagerSetLists WHERE intSetID = " + *doomed +
                     "; DELETE FROM TblTeachingManagerSetAssociatedTeachers WHERE intSetID = " + *doomed +
                     "; DELETE FROM TblTeachingManagerSets WHERE TblTeachingManagerSetsID = " + *doomed);
      !st)
    return st;
  auto pupil = MisOne("SELECT txtSchoolID FROM TblTeachingManagerSetLists ORDER BY TblTeachingManagerSetListsID "
                      "LIMIT 1 OFFSET 40");
  auto view = MisOne("SELECT sql FROM sqlite_master WHERE name = 'VwMoodleEnrolData'");
  if (!pupil || !view) return Fail(ErrorCode::kInternal, "the MIS has no enrolment view");
  const std::string from = "SELECT s.\"txtSetCode\", p.\"txtEmailAddress\", 5";
  auto pos = view->find(from);
  if (pos == std::string::npos) return Fail(ErrorCode::kInternal, "unexpected enrolment view: " + *view);
  view->replace(pos, from.size(), "SELECT s.\"txtSetCode\", p.\"txtEmailAddress\", CASE WHEN p.\"txtSchoolID\" = " +
                                      Q(*pupil) + " THEN 4 ELSE 5 END");
  return exec("DROP VIEW VwMoodleEnrolData; " + *view);
}

Result<std::vector<std::string>> RealSchool::Leave(int n) {
  std::vector<std::string> leavers;
  for (std::size_t i = 0; i < school_.people.size() && static_cast<int>(leavers.size()) < n; ++i) {
    const auto& p = school_.people[i];
    if (!p.staff && static_cast<int>(i) != capitalised_mail_) leavers.push_back(p.username);
  }
  for (const auto& uid : leavers) {
    if (auto st = slapd_->Delete(Dn(uid, people_[uid])); !st) return Fail(st.error());
    people_[uid].suspended = true;
  }
  return leavers;
}

Status RealSchool::Rename(const std::string& username, const std::string& lastname) {
  DirectoryPerson& p = people_.at(username);
  p.lastname = lastname;
  return slapd_->Modify("dn: " + Dn(username, p) + "\nchangetype: modify\nreplace: sn\n" + LdifLine("sn", lastname) +
                        "\n");
}

}  // namespace enrolsync::testing
