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
  auto dist = testsupport::FindMoodleDistribution();
  if (!dist) return Fail(ErrorCode::kNotFound, dist.error().message);
  std::unique_ptr<RealSchool> s(new RealSchool());
  if (auto st = s->Setup(options); !st) return Fail(st.error());
  return s;
}

Status RealSchool::Setup(const RealSchoolOptions& options) {
  auto server = testsupport::MoodleServer::Start();
  if (!server) return Fail(server.error().Wrap("starting Moodle"));
  moodle_ = std::move(*server);

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
  co.url = moodle_->url();
  co.token = moodle_->token();
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

  std::ofstream(dir_.File("moodle.token")) << moodle_->token() << "\n";
  std::ofstream(dir_.File("ldap.password")) << slapd_->reader_password() << "\n";
  std::ofstream(config_path())
      << "state_dir = \"state\"\n\n"
      << "[moodle]\nurl = \"" << moodle_->url() << "\"\ntoken_file = \"moodle.token\"\nmax_input_vars = 5000\n"
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

}  // namespace enrolsync::testing
