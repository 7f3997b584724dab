// The directory user sync against a real OpenLDAP slapd and the sandbox:
// 800 pupils and 90 staff in two OUs, then mutations and failures, each
// synced and asserted.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <chrono>
#include <map>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.h"
#include "moodle/client.h"
#include "sandbox/sandbox.h"
#include "support/pg_server.h"
#include "school_site.h"
#include "support/slapd_server.h"
#include "sync/runner.h"
#include "sync/user_sync.h"
#include "util/strings.h"

namespace enrolsync::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using testsupport::SlapdServer;
using testsupport::TempDir;

// An independent reading of the LDIF the directory was loaded from.
struct Entry {
  std::string uid, given, sn, mail, number, ou;
};

std::string Base64Decode(const std::string& in) {
  static const std::string chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -8;
  for (char c : in) {
    auto pos = chars.find(c);
    if (pos == std::string::npos) continue;
    val = (val << 6) + static_cast<int>(pos);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

std::map<std::string, Entry> ParseLdif(const std::string& ldif) {
  std::map<std::string, Entry> out;
  Entry e;
  auto flush = [&] {
    if (!e.uid.empty()) out[e.uid] = e;
    e = Entry{};
  };
  for (const auto& raw : Split(ldif, '\n')) {
    if (raw.empty()) {
      flush();
      continue;
    }
    auto colon = raw.find(':');
    if (colon == std::string::npos) continue;
    std::string attr = raw.substr(0, colon);
    std::string value = raw[colon + 1] == ':' ? Base64Decode(Trim(raw.substr(colon + 2))) : Trim(raw.substr(colon + 1));
    if (attr == "dn") e.ou = value.find("ou=Staff") != std::string::npos ? "Staff" : "Students";
    if (attr == "uid") e.uid = value;
    if (attr == "givenName") e.given = value;
    if (attr == "sn") e.sn = value;
    if (attr == "mail") e.mail = value;
    if (attr == "employeeNumber") e.number = value;
  }
  flush();
  return out;
}

std::string RunCli(const std::string& args, int* exit_code = nullptr);

class UsersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ldif_ = testsupport::SchoolLdif(800, 90);
    expected_ = ParseLdif(ldif_);
    ASSERT_EQ(expected_.size(), 890u);
    testsupport::SlapdOptions so;
    so.ldif = ldif_;
    so.size_limit = 500;  // below the directory: only paged reads see everyone
    auto slapd = SlapdServer::Start(so);
    ASSERT_TRUE(slapd) << slapd.error().message;
    slapd_ = std::move(*slapd);
    sandbox::Options o;
    o.state_dir = dir_.File("moodle");
    o.token = "users-token-5f1e2d3c4b";
    auto sb = sandbox::Sandbox::Start(o);
    ASSERT_TRUE(sb) << sb.error().message;
    moodle_ = std::move(*sb);
    // The MIS: one set per 20 pupils, with a teacher from the staff OU.
    std::string sql =
        "CREATE TABLE c (fullname TEXT, shortname TEXT, idnumber TEXT, category TEXT);"
        "CREATE TABLE e (setcode TEXT, email TEXT, role INTEGER);";
    for (int s = 0; s < 10; ++s) {
      std::string code = "10/Ma" + std::to_string(s + 1);
      sql += "INSERT INTO c VALUES ('Mathematics - " + code + "', 'Mathematics - " + code + "', '" + code + "', '1');";
      sql += "INSERT INTO e VALUES ('" + code + "', 'staff0" + (s + 1 < 10 ? "0" : "") + std::to_string(s + 1) +
             "@school.test', 3);";
      for (int p = s * 20 + 1; p <= s * 20 + 20; ++p) {
        char uid[16];
        std::snprintf(uid, sizeof uid, "pupil%04d", p);
        sql += "INSERT INTO e VALUES ('" + code + "', '" + uid + "@school.test', 5);";
      }
    }
    ASSERT_TRUE(testsupport::ExecSqlite(dir_.File("mis.db"), sql));
    std::ofstream(dir_.File("moodle.token")) << o.token << "\n";
    std::ofstream(dir_.File("ldap.password")) << slapd_->reader_password() << "\n";
    WriteConfig();
  }

  void WriteConfig(const std::string& users_extra = "", const std::string& contexts =
                       "[\"ou=Students,dc=school,dc=test\", \"ou=Staff,dc=school,dc=test\"]") {
    std::ofstream out(dir_.File("enrolsync.toml"));
    out << "state_dir = \"state\"\n[moodle]\nurl = \"" << moodle_->url() << "\"\ntoken_file = \"moodle.token\"\n"
        << "[source]\ntype = \"sqlite\"\ndatabase = \"mis.db\"\n"
        << "[courses]\ntable = \"c\"\nfullname = \"fullname\"\nshortname = \"shortname\"\nidnumber = \"idnumber\"\n"
        << "category = \"category\"\n"
        << "[enrolments]\ntable = \"e\"\ncourse_field = \"setcode\"\nuser_field = \"email\"\nrole_field = \"role\"\n"
        << "[safety]\nmax_removals = \"10%\"\n"
        << "[users]\nsource = \"ldap\"\nurl = \"" << slapd_->url() << "\"\nbind_dn = \"" << SlapdServer::reader_dn()
        << "\"\nbind_password_file = \"ldap.password\"\ncontexts = " << contexts << "\n"
        << "search_sub = false\nuser_attribute = \"uid\"\nobject_class = \"inetOrgPerson\"\nuser_type = \"default\"\n"
        << "removed_user_action = \"suspend\"\nauth = \"ldap\"\npage_size = 100\n" << users_extra << "\n"
        << "[users.map]\nfirstname = \"givenName\"\nlastname = \"sn\"\nemail = \"mail\"\nidnumber = \"employeeNumber\"\n";
  }

  // Replaces `from` (which must be there) in the config file.
  void EditConfig(const std::string& from, const std::string& to) {
    std::string cfg;
    {
      std::ifstream in(dir_.File("enrolsync.toml"));
      cfg.assign(std::istreambuf_iterator<char>(in), {});
    }
    auto at = cfg.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    cfg.replace(at, from.size(), to);
    std::ofstream(dir_.File("enrolsync.toml")) << cfg;
  }

  // The LDIF that adds these pupils back to the directory, as generated.
  std::string PupilLdif(const std::vector<std::string>& uids) const {
    std::string back;
    for (const auto& uid : uids) {
      const Entry& e = expected_.at(uid);
      back += "dn: uid=" + e.uid + ",ou=Students,dc=school,dc=test\nobjectClass: inetOrgPerson\n" +
              testsupport::LdifLine("uid", e.uid) + "\n" + testsupport::LdifLine("givenName", e.given) + "\n" +
              testsupport::LdifLine("sn", e.sn) + "\n" + testsupport::LdifLine("cn", e.given + " " + e.sn) + "\n" +
              testsupport::LdifLine("mail", e.mail) + "\n" + testsupport::LdifLine("employeeNumber", e.number) + "\n\n";
    }
    return back;
  }

  // Every Moodle user as core_user_get_users answers for `auth`, the guest
  // included (the sandbox's introspection leaves the guest out).
  std::map<std::string, model::User> UsersByAuth(const std::string& auth) {
    moodle::ClientOptions co;
    co.url = moodle_->url();
    co.token = "users-token-5f1e2d3c4b";
    moodle::Client client(co);
    std::map<std::string, model::User> out;
    auto users = client.GetUsersByAuth(auth);
    EXPECT_TRUE(users) << users.error().message;
    if (users)
      for (auto& u : *users) out[u.username] = u;
    return out;
  }

  // Moodle users with auth=ldap as auth_ldap left them: the whole directory
  // plus `former` accounts no longer in it.
  void SeedAuthLdapUsers(const std::vector<std::string>& former) {
    for (const auto& [uid, e] : expected_)
      ASSERT_TRUE(moodle_->EnsureLdapUser(e.uid, e.given, e.sn, e.mail, e.number));
    for (const auto& f : former)
      ASSERT_TRUE(moodle_->EnsureLdapUser(f, "Former", f, f + "@old.school.test", ""));
  }

  sync::RunReport Sync(long long allow = -1, std::vector<std::string>* trace = nullptr) {
    auto cfg = config::LoadConfig(dir_.File("enrolsync.toml"));
    if (!cfg) {
      ADD_FAILURE() << cfg.error().message;
      return {};
    }
    sync::RunOptions opt;
    opt.apply = true;
    opt.allow_removals = allow;
    if (trace) opt.trace = [trace](const std::string& l) { trace->push_back(l); };
    return sync::RunOnce(*cfg, opt);
  }

  std::map<std::string, model::User> MoodleLdapUsers() {
    std::map<std::string, model::User> out;
    for (const auto& u : moodle_->Users())
      if (u.auth == "ldap") out[u.username] = u;
    return out;
  }
  int ActiveEnrolments(model::MoodleId userid) {
    int n = 0;
    for (const auto& e : moodle_->Enrolments()) n += e.userid == userid && e.status == 0;
    return n;
  }

  TempDir dir_;
  std::string ldif_;
  std::map<std::string, Entry> expected_;
  std::unique_ptr<SlapdServer> slapd_;
  std::unique_ptr<sandbox::Sandbox> moodle_;
};

TEST_F(UsersTest, DirectorySyncsExactlyThenFollowsDeletionsRevivalsRenamesAndAdminSuspensions) {
  std::vector<std::string> trace;
  auto r = Sync(-1, &trace);
  ASSERT_EQ(r.exit_code, 0) << r.error;
  ASSERT_TRUE(r.users.read_ok) << r.users.read_error;
  EXPECT_EQ(r.users.people, 890u);
  EXPECT_EQ(r.users.apply.applied.create, 890);
  // Every user matches the directory exactly.
  auto users = MoodleLdapUsers();
  ASSERT_EQ(users.size(), 890u);
  for (const auto& [uid, e] : expected_) {
    auto it = users.find(uid);
    ASSERT_NE(it, users.end()) << uid;
    EXPECT_EQ(it->second.profile["firstname"], e.given) << uid;
    EXPECT_EQ(it->second.profile["lastname"], e.sn) << uid;
    EXPECT_EQ(it->second.email, e.mail) << uid;
    EXPECT_EQ(it->second.idnumber, e.number) << uid;
    EXPECT_FALSE(it->second.suspended);
  }
  EXPECT_EQ(users.at("pupil0001").profile["firstname"], "Zoë");
  EXPECT_EQ(users.at("pupil0001").profile["lastname"], "O'Brien");
  // Users created in this run were enrolled in this run.
  EXPECT_EQ(r.apply.applied.enrol, 210);
  EXPECT_THAT(trace, Contains("\tInserted user pupil0001 id " + std::to_string(users.at("pupil0001").id)));

  // 5 pupils leave the directory: suspended, enrolments kept.
  for (int p = 1; p <= 5; ++p) {
    char dn[64];
    std::snprintf(dn, sizeof dn, "uid=pupil%04d,ou=Students,dc=school,dc=test", p);
    ASSERT_TRUE(slapd_->Delete(dn));
  }
  // A surname and an email change; an admin suspends someone by hand.
  ASSERT_TRUE(slapd_->Modify("dn: uid=staff050,ou=Staff,dc=school,dc=test\nchangetype: modify\nreplace: sn\nsn: Smyth\n"
                             "-\nreplace: mail\nmail: new.mail@school.test\n"));
  ASSERT_TRUE(moodle_->SetUserSuspended(users.at("pupil0700").id, true));
  trace.clear();
  r = Sync(-1, &trace);
  ASSERT_EQ(r.exit_code, 0) << r.error;
  auto after = MoodleLdapUsers();
  for (int p = 1; p <= 5; ++p) {
    char uid[16];
    std::snprintf(uid, sizeof uid, "pupil%04d", p);
    EXPECT_TRUE(after.at(uid).suspended) << uid;
    EXPECT_EQ(ActiveEnrolments(after.at(uid).id), 1) << uid << ": a suspended user keeps their enrolments";
  }
  EXPECT_EQ(after.at("staff050").profile["lastname"], "Smyth");
  EXPECT_EQ(after.at("staff050").email, "new.mail@school.test");
  EXPECT_THAT(trace, Contains("\tUpdating user staff050 id " + std::to_string(after.at("staff050").id)));
  EXPECT_THAT(trace, Contains("\tSuspended user pupil0001 id " + std::to_string(after.at("pupil0001").id)));
  EXPECT_TRUE(after.at("pupil0700").suspended);
  EXPECT_EQ(r.users.apply.applied.suspend, 5);

  // Two of them come back: revived, same ids, enrolments intact.
  ASSERT_TRUE(slapd_->Add(PupilLdif({"pupil0001", "pupil0002"})));
  trace.clear();
  r = Sync(-1, &trace);
  ASSERT_EQ(r.exit_code, 0) << r.error;
  auto revived = MoodleLdapUsers();
  EXPECT_FALSE(revived.at("pupil0001").suspended);
  EXPECT_FALSE(revived.at("pupil0002").suspended);
  EXPECT_TRUE(revived.at("pupil0003").suspended);
  EXPECT_EQ(revived.at("pupil0001").id, users.at("pupil0001").id);
  EXPECT_EQ(ActiveEnrolments(revived.at("pupil0001").id), 1);
  EXPECT_TRUE(revived.at("pupil0700").suspended) << "an admin's suspension is never undone";
  EXPECT_THAT(trace, Contains("\tRevived user pupil0001 id " + std::to_string(users.at("pupil0001").id)));

  // Nothing changes on the next run.
  r = Sync();
  EXPECT_EQ(r.users.plan.summary.Changes(), 0);
  EXPECT_EQ(r.write_calls, 0);
}

// An attribute removed from an entry clears the Moodle field, as auth_ldap's
// update does; an email removed is kept (Moodle refuses an empty one) and
// reported.
// `enrolsync sync` killed (SIGKILL) with the leavers' suspension in flight,
// after Moodle applied it: the suspensions are still enrolsync's, so the
// leavers who come back are revived. (The ledger used to learn of a
// suspension only from its answer; the returning pupils then stayed
// suspended for good, "suspended in Moodle, not by enrolsync".)
TEST_F(UsersTest, AKillWithTheSuspensionInFlightStillRevivesTheLeaversWhoComeBack) {
  auto r = Sync();
  ASSERT_EQ(r.exit_code, 0) << r.error;
  for (int p = 1; p <= 3; ++p) {
    char dn[64];
    std::snprintf(dn, sizeof dn, "uid=pupil%04d,ou=Students,dc=school,dc=test", p);
    ASSERT_TRUE(slapd_->Delete(dn));
  }
  moodle_->ResetCallCounts();
  // Moodle applies the call, then the answer is held until the kill.
  moodle_->InjectFault({"core_user_update_users", 0, 1, sandbox::Sandbox::Fault::kDelay, "", 5000, true});
  const std::string bin = std::string(ENROLSYNC_BINARY_DIR) + "/src/cli/enrolsync";
  const std::string cfg = dir_.File("enrolsync.toml");
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int fd = ::open(dir_.File("killed.out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) ::_exit(126);
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::execl(bin.c_str(), bin.c_str(), "sync", "--config", cfg.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 1500 && moodle_->CallCounts()["core_user_update_users"] < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // applied within milliseconds
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run ended before the kill";
  moodle_->ClearFaults();
  auto users = MoodleLdapUsers();
  for (const char* uid : {"pupil0001", "pupil0002", "pupil0003"})
    ASSERT_TRUE(users.at(uid).suspended) << uid << ": the held call was not applied";

  ASSERT_TRUE(slapd_->Add(PupilLdif({"pupil0001", "pupil0002"})));
  r = Sync();
  ASSERT_EQ(r.exit_code, 0) << r.error;
  auto after = MoodleLdapUsers();
  std::string notes;
  for (const auto& n : r.users.plan.notes) notes += n + "\n";
  EXPECT_FALSE(after.at("pupil0001").suspended) << "a returning leaver stayed suspended\n" << notes;
  EXPECT_FALSE(after.at("pupil0002").suspended) << "a returning leaver stayed suspended";
  EXPECT_TRUE(after.at("pupil0003").suspended);
  r = Sync();
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(r.users.apply.applied.suspend + r.users.apply.applied.revive, 0) << "the reruns left work undone";
}

TEST_F(UsersTest, AttributeRemovedInTheDirectoryClearsTheFieldButNeverTheEmail) {
  ASSERT_EQ(Sync().exit_code, 0);
  const auto before = MoodleLdapUsers();
  ASSERT_FALSE(before.at("staff050").idnumber.empty());
  ASSERT_TRUE(slapd_->Modify("dn: uid=staff050,ou=Staff,dc=school,dc=test\nchangetype: modify\n"
                             "delete: employeeNumber\n"));
  ASSERT_TRUE(slapd_->Modify("dn: uid=staff051,ou=Staff,dc=school,dc=test\nchangetype: modify\n"
                             "delete: mail\n-\nreplace: sn\nsn: Newname\n"));
  std::vector<std::string> trace;
  auto r = Sync(-1, &trace);
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_THAT(r.users.apply.failures, ::testing::IsEmpty());
  EXPECT_EQ(r.users.apply.applied.update, 2);
  auto after = MoodleLdapUsers();
  EXPECT_EQ(after.at("staff050").idnumber, "");
  EXPECT_EQ(after.at("staff051").email, before.at("staff051").email);
  EXPECT_EQ(after.at("staff051").profile["lastname"], "Newname");
  ASSERT_EQ(r.users.plan.problems.size(), 1u);
  EXPECT_THAT(r.users.plan.problems[0].reason,
              HasSubstr("'staff051' has no email in the source: the Moodle email '" + before.at("staff051").email +
                        "' is kept"));
  EXPECT_THAT(trace, Contains("\tUpdating user staff050 id " + std::to_string(before.at("staff050").id)));
  // Nothing else moves, and the next run changes nothing.
  for (const auto& [name, u] : after) {
    if (name == "staff050" || name == "staff051") continue;
    EXPECT_EQ(u.idnumber, before.at(name).idnumber) << name;
  }
  r = Sync();
  EXPECT_EQ(r.users.plan.summary.Changes(), 0);
  EXPECT_EQ(r.users.plan.problems.size(), 1u) << "still reported";
}

TEST_F(UsersTest, RemovedUserActionDeleteDeletesTheLeaver) {
  WriteConfig("");
  std::string cfg = [&] {
    std::ifstream in(dir_.File("enrolsync.toml"));
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  cfg.replace(cfg.find("removed_user_action = \"suspend\""), 31, "removed_user_action = \"delete\"");
  std::ofstream(dir_.File("enrolsync.toml")) << cfg;
  ASSERT_EQ(Sync().exit_code, 0);
  auto id = MoodleLdapUsers().at("pupil0500").id;
  ASSERT_TRUE(slapd_->Delete("uid=pupil0500,ou=Students,dc=school,dc=test"));
  std::vector<std::string> trace;
  auto r = Sync(-1, &trace);
  EXPECT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(r.users.apply.applied.remove, 1);
  EXPECT_EQ(MoodleLdapUsers().count("pupil0500"), 0u);
  EXPECT_THAT(trace, Contains("\tDeleted user pupil0500 id " + std::to_string(id)));
  EXPECT_EQ(MoodleLdapUsers().size(), 889u);
}

TEST_F(UsersTest, UnreadableContextSuspendsNobodyAndSaysWhy) {
  ASSERT_EQ(Sync().exit_code, 0);
  testsupport::SlapdOptions so;
  so.size_limit = 500;
  so.unreadable_subtrees = {"ou=Staff,dc=school,dc=test"};
  ASSERT_TRUE(slapd_->Reconfigure(so));
  auto r = Sync();
  EXPECT_EQ(r.exit_code, sync::kExitPartial);
  EXPECT_FALSE(r.users.read_ok);
  EXPECT_THAT(r.users.read_error, HasSubstr("ou=Staff,dc=school,dc=test"));
  for (const auto& [name, u] : MoodleLdapUsers()) EXPECT_FALSE(u.suspended) << name;
}

TEST_F(UsersTest, ServerGoneSuspendsNobody) {
  ASSERT_EQ(Sync().exit_code, 0);
  slapd_->Stop();
  auto r = Sync();
  EXPECT_EQ(r.exit_code, sync::kExitPartial);
  EXPECT_FALSE(r.users.read_ok);
  for (const auto& [name, u] : MoodleLdapUsers()) EXPECT_FALSE(u.suspended) << name;
  EXPECT_EQ(r.apply.applied.suspend, 0);
}

TEST_F(UsersTest, WrongBindPasswordIsAClearErrorWithoutThePassword) {
  std::ofstream(dir_.File("ldap.password")) << "not-the-password-8842\n";
  auto r = Sync();
  EXPECT_FALSE(r.users.read_ok);
  EXPECT_THAT(r.users.read_error, HasSubstr(SlapdServer::reader_dn()));
  EXPECT_THAT(r.users.read_error, HasSubstr("Invalid credentials"));
  EXPECT_THAT(r.users.read_error, Not(HasSubstr("not-the-password-8842")));
  EXPECT_TRUE(MoodleLdapUsers().empty());
}

TEST_F(UsersTest, UsersLeftByAuthLdapAreAdoptedWithoutDuplicates) {
  for (const auto& [uid, e] : expected_)
    ASSERT_TRUE(moodle_->EnsureLdapUser(e.uid, e.given, e.sn, e.mail, e.number));
  auto before = MoodleLdapUsers();
  auto r = Sync();
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(r.users.apply.applied.create, 0);
  EXPECT_EQ(r.users.plan.adoptions.size(), 890u);
  EXPECT_EQ(MoodleLdapUsers().size(), 890u);
  // Managed from now on: a leaver is suspended.
  ASSERT_TRUE(slapd_->Delete("uid=pupil0800,ou=Students,dc=school,dc=test"));
  r = Sync();
  EXPECT_EQ(r.users.apply.applied.suspend, 1);
  EXPECT_TRUE(MoodleLdapUsers().at("pupil0800").suspended);
  EXPECT_EQ(MoodleLdapUsers().at("pupil0800").id, before.at("pupil0800").id);
}

// auth_ldap ("Removed ext user" = suspend) suspends every auth=ldap user
// missing from the directory, not only those enrolsync has seen: accounts
// that left before enrolsync's first run are suspended too, under the same
// guards as any removal.
TEST_F(UsersTest, LdapUsersMissingBeforeTheFirstRunAreSuspendedUnderTheGuards) {
  SeedAuthLdapUsers({"former1", "former2", "former3"});
  const auto before = MoodleLdapUsers();
  ASSERT_EQ(before.size(), 893u);

  // A source that reads as empty suspends nobody.
  ASSERT_TRUE(slapd_->Add("dn: ou=Empty,dc=school,dc=test\nobjectClass: organizationalUnit\nou: Empty\n\n"));
  WriteConfig("", "[\"ou=Empty,dc=school,dc=test\"]");
  auto r = Sync();
  ASSERT_TRUE(r.users.read_ok) << r.users.read_error;
  EXPECT_EQ(r.users.people, 0u);
  EXPECT_EQ(r.users.plan.removals_withheld, 893);
  for (const auto& [name, u] : MoodleLdapUsers()) EXPECT_FALSE(u.suspended) << name;

  // An unreadable context suspends nobody either.
  WriteConfig();
  testsupport::SlapdOptions so;
  so.size_limit = 500;
  so.unreadable_subtrees = {"ou=Staff,dc=school,dc=test"};
  ASSERT_TRUE(slapd_->Reconfigure(so));
  r = Sync();
  EXPECT_FALSE(r.users.read_ok);
  for (const auto& [name, u] : MoodleLdapUsers()) EXPECT_FALSE(u.suspended) << name;
  so.unreadable_subtrees.clear();
  ASSERT_TRUE(slapd_->Reconfigure(so));

  // Over max_removals: nothing is applied.
  EditConfig("max_removals = \"10%\"", "max_removals = 2");
  r = Sync();
  EXPECT_EQ(r.exit_code, sync::kExitRemovalGuard);
  EXPECT_EQ(r.users.plan.summary.suspend, 3);
  for (const auto& [name, u] : MoodleLdapUsers()) EXPECT_FALSE(u.suspended) << name;

  // Allowed: the three are suspended (same ids), the directory's users adopted.
  std::vector<std::string> trace;
  r = Sync(/*allow_removals=*/3, &trace);
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(r.users.apply.applied.suspend, 3);
  EXPECT_EQ(r.users.apply.applied.create, 0);
  auto after = MoodleLdapUsers();
  ASSERT_EQ(after.size(), 893u);
  for (const char* f : {"former1", "former2", "former3"}) {
    EXPECT_TRUE(after.at(f).suspended) << f;
    EXPECT_EQ(after.at(f).id, before.at(f).id) << f;
    EXPECT_THAT(trace, Contains("\tSuspended user " + std::string(f) + " id " + std::to_string(before.at(f).id)));
  }
  int suspended = 0;
  for (const auto& [name, u] : after) suspended += u.suspended;
  EXPECT_EQ(suspended, 3);
  auto manual = UsersByAuth("manual");
  ASSERT_EQ(manual.count("guest"), 1u);
  EXPECT_FALSE(manual.at("guest").suspended);
  EXPECT_FALSE(manual.at("admin").suspended);
  r = Sync();
  EXPECT_EQ(r.users.plan.summary.Changes(), 0) << "stable";
}

// auth_ldap (removeuser = suspend) suspended users when they left the
// directory and revives them when they are back: enrolsync adopts them and
// does the same, now or when they come back later.
TEST_F(UsersTest, UsersAuthLdapSuspendedAreRevivedWhenInTheDirectory) {
  SeedAuthLdapUsers({"former1"});
  auto before = MoodleLdapUsers();
  for (const char* name : {"pupil0100", "staff010", "former1"})
    ASSERT_TRUE(moodle_->SetUserSuspended(before.at(name).id, true));
  // The first revive call fails: the users are adopted all the same, and
  // revived by the next run.
  sandbox::Sandbox::Fault fault;
  fault.function = "core_user_update_users";
  fault.times = 1000000;  // every call, including the client's one-by-one retries
  moodle_->InjectFault(fault);
  auto r = Sync();
  moodle_->ClearFaults();
  EXPECT_EQ(r.exit_code, sync::kExitPartial);
  EXPECT_EQ(r.users.apply.failures.size(), 2u);
  EXPECT_EQ(r.users.plan.adoptions.size(), 890u);
  EXPECT_TRUE(MoodleLdapUsers().at("pupil0100").suspended);
  std::vector<std::string> trace;
  r = Sync(-1, &trace);
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(r.users.apply.applied.revive, 2);
  EXPECT_EQ(r.users.apply.applied.suspend, 0) << "former1 is suspended already";
  auto after = MoodleLdapUsers();
  EXPECT_FALSE(after.at("pupil0100").suspended);
  EXPECT_FALSE(after.at("staff010").suspended);
  EXPECT_TRUE(after.at("former1").suspended);
  EXPECT_EQ(after.at("pupil0100").id, before.at("pupil0100").id);
  EXPECT_THAT(trace, Contains("\tRevived user pupil0100 id " + std::to_string(before.at("pupil0100").id)));
  EXPECT_EQ(ActiveEnrolments(after.at("pupil0100").id), 1) << "enrolled in this run";

  // former1 comes back to the directory later: revived then.
  ASSERT_TRUE(slapd_->Add("dn: uid=former1,ou=Students,dc=school,dc=test\nobjectClass: inetOrgPerson\nuid: former1\n"
                          "givenName: Former\nsn: former1\ncn: Former former1\nmail: former1@old.school.test\n\n"));
  r = Sync();
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(r.users.apply.applied.revive, 1);
  EXPECT_FALSE(MoodleLdapUsers().at("former1").suspended);

  // Managed now: an admin's suspension is not undone.
  ASSERT_TRUE(moodle_->SetUserSuspended(before.at("pupil0100").id, true));
  r = Sync();
  EXPECT_EQ(r.users.apply.applied.revive, 0);
  EXPECT_TRUE(MoodleLdapUsers().at("pupil0100").suspended);
}

// auth_ldap creates an AD account that is disabled (userAccountControl
// ACCOUNTDISABLE) suspended, so its MIS enrolments are made; it is revived
// once enabled. core_user_create_users takes no `suspended`: created, then
// suspended with core_user_update_users.
TEST_F(UsersTest, ActiveDirectoryDisabledAccountIsCreatedSuspendedAndEnrolled) {
  ASSERT_TRUE(slapd_->Add(
      "dn: ou=AD,dc=school,dc=test\nobjectClass: organizationalUnit\nou: AD\n\n"
      "dn: cn=Ada Lovelace,ou=AD,dc=school,dc=test\nobjectClass: user\ncn: Ada Lovelace\n"
      "sn: Lovelace\ngivenName: Ada\nmail: ada@school.test\nsAMAccountName: ALovelace\nuserAccountControl: 512\n\n"
      "dn: cn=Bob Babbage,ou=AD,dc=school,dc=test\nobjectClass: user\ncn: Bob Babbage\n"
      "sn: Babbage\ngivenName: Bob\nmail: bob@school.test\nsAMAccountName: BBabbage\nuserAccountControl: 514\n\n"));
  ASSERT_TRUE(testsupport::ExecSqlite(dir_.File("mis.db"), "INSERT INTO e VALUES ('10/Ma1', 'ada@school.test', 5);"
                                                           "INSERT INTO e VALUES ('10/Ma1', 'bob@school.test', 5);"));
  WriteConfig("", "[\"ou=AD,dc=school,dc=test\"]");
  EditConfig("user_attribute = \"uid\"", "user_attribute = \"sAMAccountName\"");
  EditConfig("object_class = \"inetOrgPerson\"", "object_class = \"user\"");
  EditConfig("user_type = \"default\"", "user_type = \"ad\"");
  int rc = -1;
  std::string plan = RunCli("plan --config " + dir_.File("enrolsync.toml"), &rc);
  EXPECT_THAT(plan, HasSubstr("+ user bbabbage (Bob Babbage, bob@school.test) suspended: disabled in the directory"));
  EXPECT_THAT(plan, HasSubstr("+ enrol Mathematics - 10/Ma1: bob@school.test as student"));
  std::vector<std::string> trace;
  auto r = Sync(-1, &trace);
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(r.users.apply.applied.create, 2);
  EXPECT_EQ(r.users.apply.applied.suspend, 0) << "not counted as a removal";
  auto users = MoodleLdapUsers();
  ASSERT_EQ(users.count("bbabbage"), 1u);
  EXPECT_TRUE(users.at("bbabbage").suspended);
  EXPECT_FALSE(users.at("alovelace").suspended);
  EXPECT_EQ(ActiveEnrolments(users.at("bbabbage").id), 1) << "enrolled, not an unknown user";
  for (const auto& p : r.plan.problems) EXPECT_THAT(p.reason, Not(HasSubstr("bob@school.test"))) << p.reason;
  EXPECT_THAT(trace, Contains("\tInserted user bbabbage id " + std::to_string(users.at("bbabbage").id)));
  r = Sync();
  EXPECT_EQ(r.users.plan.summary.Changes(), 0) << "stable";

  // Enabled in AD: revived.
  ASSERT_TRUE(slapd_->Modify("dn: cn=Bob Babbage,ou=AD,dc=school,dc=test\nchangetype: modify\n"
                             "replace: userAccountControl\nuserAccountControl: 512\n"));
  r = Sync();
  EXPECT_EQ(r.users.apply.applied.revive, 1);
  EXPECT_FALSE(MoodleLdapUsers().at("bbabbage").suspended);
}

TEST_F(UsersTest, ActiveDirectoryDisabledAccountIsSuspended) {
  ASSERT_TRUE(slapd_->Add(
      "dn: ou=AD,dc=school,dc=test\nobjectClass: organizationalUnit\nou: AD\n\n"
      "dn: cn=Ada Lovelace,ou=AD,dc=school,dc=test\nobjectClass: user\ncn: Ada Lovelace\n"
      "sn: Lovelace\ngivenName: Ada\nmail: ada@school.test\nsAMAccountName: ALovelace\nuserAccountControl: 512\n\n"));
  WriteConfig("", "[\"ou=AD,dc=school,dc=test\"]");
  std::string cfg;
  {
    std::ifstream in(dir_.File("enrolsync.toml"));
    cfg.assign(std::istreambuf_iterator<char>(in), {});
  }
  cfg.replace(cfg.find("user_attribute = \"uid\""), 22, "user_attribute = \"sAMAccountName\"");
  cfg.replace(cfg.find("object_class = \"inetOrgPerson\""), 30, "object_class = \"user\"");
  cfg.replace(cfg.find("user_type = \"default\""), 21, "user_type = \"ad\"");
  std::ofstream(dir_.File("enrolsync.toml")) << cfg;
  auto r = Sync();
  ASSERT_TRUE(r.users.read_ok) << r.users.read_error;
  auto users = MoodleLdapUsers();
  ASSERT_EQ(users.count("alovelace"), 1u) << "usernames are lower-cased";
  EXPECT_FALSE(users.at("alovelace").suspended);
  ASSERT_TRUE(slapd_->Modify("dn: cn=Ada Lovelace,ou=AD,dc=school,dc=test\nchangetype: modify\n"
                             "replace: userAccountControl\nuserAccountControl: 514\n"));
  r = Sync();
  EXPECT_EQ(r.exit_code, sync::kExitRemovalGuard) << "1 suspension of 1 managed user is over 10%";
  EXPECT_FALSE(MoodleLdapUsers().at("alovelace").suspended);
  r = Sync(/*allow_removals=*/1);
  EXPECT_EQ(r.exit_code, 0) << r.error;
  EXPECT_TRUE(MoodleLdapUsers().at("alovelace").suspended);
  EXPECT_EQ(r.users.apply.applied.suspend, 1);
}

std::string RunCli(const std::string& args, int* exit_code) {
  CliOutput o = RunEnrolsync(args);
  if (exit_code) *exit_code = o.exit_code;
  return o.out;
}

TEST_F(UsersTest, CheckBindsCountsEachContextAndShowsMappedFields) {
  int rc = -1;
  std::string out = RunCli("check --config " + dir_.File("enrolsync.toml"), &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("bound as cn=reader,dc=school,dc=test"));
  EXPECT_THAT(out, HasSubstr("ou=Students,dc=school,dc=test: 800 entries"));
  EXPECT_THAT(out, HasSubstr("ou=Staff,dc=school,dc=test: 90 entries"));
  EXPECT_THAT(out, HasSubstr("sample pupil0001: firstname='Zoë' lastname='O'Brien' email='pupil0001@school.test'"));
}

TEST_F(UsersTest, PlanShowsUserLinesAndJsonSummaryKeys) {
  int rc = -1;
  std::string out = RunCli("plan --config " + dir_.File("enrolsync.toml"), &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("+ user pupil0001 (Zoë O'Brien, pupil0001@school.test)"));
  EXPECT_THAT(out, HasSubstr("Users: 890 in the directory; 890 to create"));
  // Enrolments of users about to be created are planned, not reported as unknown.
  EXPECT_THAT(out, HasSubstr("+ enrol Mathematics - 10/Ma1: pupil0001@school.test as student"));
  std::string json = RunCli("plan --json --config " + dir_.File("enrolsync.toml"));
  for (const char* key : {"\"users.create\": 890", "\"users.update\": 0", "\"users.suspend\": 0",
                          "\"users.revive\": 0", "\"users.delete\": 0"})
    EXPECT_THAT(json, HasSubstr(key));
  EXPECT_TRUE(MoodleLdapUsers().empty()) << "plan changes nothing";
}

TEST_F(UsersTest, UsersFromAnMisTableFollowTheSameRules) {
  ASSERT_TRUE(testsupport::ExecSqlite(dir_.File("mis.db"),
                                      "CREATE TABLE people (login TEXT, first TEXT, last TEXT, mail TEXT, left_school TEXT);"
                                      "INSERT INTO people VALUES ('PUPIL0001', 'Zoë', 'O''Brien', 'pupil0001@school.test', NULL);"
                                      "INSERT INTO people VALUES ('pupil0002', 'Renée', 'Webb', 'pupil0002@school.test', '');"
                                      "INSERT INTO people VALUES ('pupil0003', 'Siân', 'Núñez', 'pupil0003@school.test', '0');"));
  std::string cfg;
  {
    std::ifstream in(dir_.File("enrolsync.toml"));
    cfg.assign(std::istreambuf_iterator<char>(in), {});
  }
  cfg = cfg.substr(0, cfg.find("[users]")) +
        "[users]\nsource = \"sql\"\ntable = \"people\"\nusername = \"login\"\ndisabled = \"left_school\"\n"
        "auth = \"manual\"\nremoved_user_action = \"suspend\"\n"
        "[users.map]\nfirstname = \"first\"\nlastname = \"last\"\nemail = \"mail\"\n"
        "[state]\nverify_courses_per_run = 0\n";
  cfg.replace(cfg.find("max_removals = \"10%\""), 20, "max_removals = 5");
  std::ofstream(dir_.File("enrolsync.toml")) << cfg;
  auto r = Sync();
  ASSERT_TRUE(r.users.read_ok) << r.users.read_error;
  EXPECT_EQ(r.users.apply.applied.create, 3) << (r.users.apply.failures.empty() ? "" : r.users.apply.failures[0]);
  std::map<std::string, model::User> users;
  for (const auto& u : moodle_->Users())
    if (u.auth == "manual") users[u.username] = u;
  ASSERT_EQ(users.count("pupil0001"), 1u) << "usernames are lower-cased";
  EXPECT_EQ(users.at("pupil0001").profile["lastname"], "O'Brien");
  ASSERT_TRUE(testsupport::ExecSqlite(dir_.File("mis.db"), "UPDATE people SET left_school = 'yes' WHERE login = 'pupil0003'"));
  r = Sync();
  EXPECT_EQ(r.users.apply.applied.suspend, 1);
  bool suspended = false;
  for (const auto& u : moodle_->Users()) suspended |= u.username == "pupil0003" && u.suspended;
  EXPECT_TRUE(suspended);
}

// An MIS user table with auth=manual: Moodle's guest, the admin and accounts
// made by hand are manual too, and none of them is in the table. Only the
// users enrolsync created are ever suspended or deleted; rows naming the guest
// or the admin change nothing.
TEST_F(UsersTest, WithAnMisTableTheGuestTheAdminAndHandMadeAccountsAreNeverSuspended) {
  {
    moodle::ClientOptions co;
    co.url = moodle_->url();
    co.token = "users-token-5f1e2d3c4b";
    moodle::Client client(co);
    std::vector<moodle::NewUser> by_hand;
    for (const char* name : {"examiner1", "examiner2", "examiner3"})
      by_hand.push_back({name, "manual",
                         {{"firstname", "Ex"}, {"lastname", name}, {"email", std::string(name) + "@board.test"},
                          {"createpassword", "1"}}});
    for (const auto& r : client.CreateUsers(by_hand)) ASSERT_TRUE(r) << r.error().message;
  }
  ASSERT_TRUE(testsupport::ExecSqlite(dir_.File("mis.db"),
                                      "CREATE TABLE people (login TEXT, first TEXT, last TEXT, mail TEXT, left_school TEXT);"
                                      "INSERT INTO people VALUES ('pupil0001', 'Zoë', 'O''Brien', 'pupil0001@school.test', NULL);"
                                      "INSERT INTO people VALUES ('pupil0002', 'Renée', 'Webb', 'pupil0002@school.test', NULL);"
                                      "INSERT INTO people VALUES ('Guest', 'Mis', 'Guest', 'guest@school.test', '1');"
                                      "INSERT INTO people VALUES ('ADMIN', 'Mis', 'Admin', 'admin@school.test', '1');"));
  std::string cfg;
  {
    std::ifstream in(dir_.File("enrolsync.toml"));
    cfg.assign(std::istreambuf_iterator<char>(in), {});
  }
  cfg = cfg.substr(0, cfg.find("[users]")) +
        "[users]\nsource = \"sql\"\ntable = \"people\"\nusername = \"login\"\ndisabled = \"left_school\"\n"
        "auth = \"manual\"\nremoved_user_action = \"suspend\"\n"
        "[users.map]\nfirstname = \"first\"\nlastname = \"last\"\nemail = \"mail\"\n"
        "[state]\nverify_courses_per_run = 0\n";
  cfg.replace(cfg.find("max_removals = \"10%\""), 20, "max_removals = 10");
  std::ofstream(dir_.File("enrolsync.toml")) << cfg;
  const auto before = UsersByAuth("manual");
  ASSERT_EQ(before.count("guest"), 1u);
  ASSERT_EQ(before.count("admin"), 1u);
  auto untouched = [&](const char* what) {
    auto now = UsersByAuth("manual");
    for (const char* name : {"guest", "admin", "examiner1", "examiner2", "examiner3"}) {
      ASSERT_EQ(now.count(name), 1u) << what << ": " << name;
      EXPECT_FALSE(now.at(name).suspended) << what << ": " << name;
      EXPECT_EQ(now.at(name).profile, before.at(name).profile) << what << ": " << name;
    }
  };

  auto r = Sync();
  ASSERT_TRUE(r.users.read_ok) << r.users.read_error;
  EXPECT_EQ(r.users.apply.applied.create, 2);
  EXPECT_THAT(r.users.apply.failures, ::testing::IsEmpty());
  EXPECT_EQ(r.users.plan.summary.Removals(), 0);
  untouched("first run");

  // pupil0002 leaves the MIS: suspended; nobody else.
  ASSERT_TRUE(testsupport::ExecSqlite(dir_.File("mis.db"), "DELETE FROM people WHERE login = 'pupil0002'"));
  r = Sync();
  EXPECT_EQ(r.users.apply.applied.suspend, 1);
  EXPECT_THAT(r.users.apply.failures, ::testing::IsEmpty());
  EXPECT_TRUE(UsersByAuth("manual").at("pupil0002").suspended);
  untouched("after a leaver");

  // With removed_user_action = delete, only enrolsync's own leaver goes.
  EditConfig("removed_user_action = \"suspend\"", "removed_user_action = \"delete\"");
  ASSERT_TRUE(testsupport::ExecSqlite(dir_.File("mis.db"), "DELETE FROM people WHERE login = 'pupil0001'"));
  r = Sync();
  EXPECT_EQ(r.users.apply.applied.remove, 2);
  EXPECT_THAT(r.users.apply.failures, ::testing::IsEmpty());
  EXPECT_EQ(UsersByAuth("manual").count("pupil0001"), 0u);
  untouched("after deletes");
}

// An MIS table's usernames are lower-cased as Moodle's core_text::strtolower
// (mb_strtolower) does, beyond ASCII, like the LDAP source's: the same
// person gets the same Moodle username from either source.
TEST_F(UsersTest, MisTableUsernamesAreLowerCasedAsMoodleDoes) {
  ASSERT_TRUE(testsupport::ExecSqlite(dir_.File("mis.db"),
                                      "CREATE TABLE people (login TEXT, first TEXT, last TEXT, mail TEXT);"
                                      "INSERT INTO people VALUES ('ÉLODIE.Brun', 'Élodie', 'Brun', 'e.brun@school.test');"
                                      "INSERT INTO people VALUES (' ÅSA.NILSSON ', 'Åsa', 'Nilsson', 'a.n@school.test');"
                                      "INSERT INTO people VALUES ('ΣΟΦΙΑ', 'Σοφία', 'Π', 's.p@school.test');"
                                      "INSERT INTO people VALUES ('PUPIL0001', 'Zoë', 'O''Brien', 'pupil0001@school.test');"));
  std::string cfg;
  {
    std::ifstream in(dir_.File("enrolsync.toml"));
    cfg.assign(std::istreambuf_iterator<char>(in), {});
  }
  cfg = cfg.substr(0, cfg.find("[users]")) +
        "[users]\nsource = \"sql\"\ntable = \"people\"\nusername = \"login\"\nauth = \"manual\"\n"
        "[users.map]\nfirstname = \"first\"\nlastname = \"last\"\nemail = \"mail\"\n";
  std::ofstream(dir_.File("enrolsync.toml")) << cfg;
  auto loaded = config::LoadConfig(dir_.File("enrolsync.toml"));
  ASSERT_TRUE(loaded) << loaded.error().message;
  auto people = sync::ReadPeople(*loaded, nullptr);
  ASSERT_TRUE(people) << people.error().message;
  std::vector<std::string> names;
  for (const auto& p : *people) names.push_back(p.username);
  EXPECT_THAT(names, ::testing::ElementsAre("élodie.brun", "åsa.nilsson", "σοφια", "pupil0001"));

  // The same person in the directory: the same username.
  ASSERT_TRUE(slapd_->Add("dn: cn=Elodie Brun,ou=Students,dc=school,dc=test\nobjectClass: inetOrgPerson\n" +
                          testsupport::LdifLine("uid", "ÉLODIE.Brun") + "\n" +
                          testsupport::LdifLine("givenName", "Élodie") + "\nsn: Brun\ncn: Elodie Brun\n"
                          "mail: e.brun@school.test\n\n"));
  WriteConfig();
  loaded = config::LoadConfig(dir_.File("enrolsync.toml"));
  ASSERT_TRUE(loaded) << loaded.error().message;
  people = sync::ReadPeople(*loaded, nullptr);
  ASSERT_TRUE(people) << people.error().message;
  int found = 0;
  for (const auto& p : *people) found += p.username == "élodie.brun";
  EXPECT_EQ(found, 1);
}

TEST_F(UsersTest, NoOutputEverContainsTheBindPassword) {
  const std::string cfg = "--config " + dir_.File("enrolsync.toml");
  std::string out = RunCli("sync -v " + cfg) + RunCli("plan --json " + cfg);
  EXPECT_THAT(out, HasSubstr("Inserted user"));
  EXPECT_THAT(out, Not(HasSubstr(slapd_->reader_password())));
  std::ofstream(dir_.File("ldap.password")) << "wrong-" << slapd_->reader_password() << "\n";
  out = RunCli("sync -v " + cfg) + RunCli("plan --json " + cfg);
  EXPECT_THAT(out, HasSubstr("Invalid credentials"));
  EXPECT_THAT(out, Not(HasSubstr(slapd_->reader_password())));
}

}  // namespace
}  // namespace enrolsync::testing

namespace enrolsync::testing {
namespace {

// The ledger-first run (sync/mirror.h). After the first sync a run with
// nothing to do reads only what it cannot know: site info, one call for the
// new user ids plus the users due in the rotation, categories, one call for
// the new course ids plus the courses due, and their participants (two
// calls): no full read of users or courses, no write.
TEST_F(UsersTest, ANoChangeRunReadsOnlyNewIdsAndTheRotationsShare) {
  ASSERT_EQ(Sync().exit_code, 0);
  auto r = Sync();
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(r.write_calls, 0);
  int calls = 0;
  for (const auto& [fn, st] : r.calls) calls += st.calls;
  EXPECT_LE(calls, 6);
  EXPECT_EQ(r.calls.count("core_user_get_users"), 0u) << "every user of the auth read again";
  EXPECT_EQ(r.calls.count("core_course_get_courses_by_field"), 0u) << "every course read again";
  EXPECT_GT(r.users_verified, 0);
  EXPECT_GT(r.courses_verified, 0);
  // --verify reads everything, and finds nothing to change either.
  sync::RunOptions all;
  all.apply = true;
  all.verify_all = true;
  auto cfg = config::LoadConfig(dir_.File("enrolsync.toml"));
  ASSERT_TRUE(cfg);
  auto v = sync::RunOnce(*cfg, all);
  ASSERT_EQ(v.exit_code, 0) << v.error;
  EXPECT_EQ(v.write_calls, 0);
  EXPECT_EQ(v.calls.count("core_user_get_users"), 1u);
  EXPECT_EQ(v.calls.count("core_course_get_courses_by_field"), 1u);
  EXPECT_EQ(v.courses_verified, 10);
}

// What others make in Moodle after the first run is found by the scan for
// new ids: an auth=ldap account missing from the directory is suspended, as
// auth_ldap's sync does, and a course made by hand with a feed's set code
// gets its enrolments.
TEST_F(UsersTest, AccountsAndCoursesMadeByHandLaterAreFoundByTheScanForNewIds) {
  ASSERT_TRUE(testsupport::ExecSqlite(dir_.File("mis.db"),
                                      "INSERT INTO e VALUES ('10/Ar1', 'pupil0001@school.test', 5);"
                                      "INSERT INTO e VALUES ('10/Ar1', 'pupil0002@school.test', 5);"));
  auto first = Sync();
  ASSERT_EQ(first.exit_code, 0) << first.error;
  auto stray = moodle_->EnsureLdapUser("former1", "Former", "Pupil", "former1@old.school.test", "");
  ASSERT_TRUE(stray) << stray.error().message;
  moodle::ClientOptions co;
  co.url = moodle_->url();
  co.token = "users-token-5f1e2d3c4b";
  moodle::Client admin(co);
  auto made = admin.CreateCourses({moodle::NewCourse{"Art - 10/Ar1", "Art - 10/Ar1", "10/Ar1", 1, {}, {}}});
  ASSERT_EQ(made.size(), 1u);
  ASSERT_TRUE(made[0]) << made[0].error().message;

  auto r = Sync();
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(r.calls.count("core_user_get_users"), 0u);
  EXPECT_EQ(r.users.apply.applied.suspend, 1);
  EXPECT_TRUE(MoodleLdapUsers().at("former1").suspended);
  EXPECT_EQ(r.apply.applied.enrol, 2);
  int in_art = 0;
  for (const auto& e : moodle_->Enrolments()) in_art += e.courseid == *made[0] && e.status == 0;
  EXPECT_EQ(in_art, 2);
}

// A course deleted by hand is found when the rotation reaches it: it leaves
// the mirror (no failed read blocks anyone's removal) and, being in the
// course table, is made again with its enrolments, as enrol_database does.
TEST_F(UsersTest, ACourseDeletedByHandIsFoundByTheRotationAndMadeAgain) {
  ASSERT_EQ(Sync().exit_code, 0);
  model::MoodleId gone = 0;
  for (const auto& c : moodle_->Courses())
    if (c.idnumber == "10/Ma1") gone = c.id;
  ASSERT_GT(gone, 0);
  ASSERT_TRUE(moodle_->DeleteCourse(gone));
  bool remade = false;
  for (int run = 0; run < 7 && !remade; ++run) {
    auto r = Sync();
    ASSERT_EQ(r.exit_code, 0) << "run " << run << ": " << r.error;
    EXPECT_EQ(r.plan.removals_withheld, 0);
    for (const auto& c : moodle_->Courses()) {
      if (c.idnumber != "10/Ma1" || c.id == gone) continue;
      int active = 0;
      for (const auto& e : moodle_->Enrolments()) active += e.courseid == c.id && e.status == 0;
      remade = active == 21;
    }
  }
  EXPECT_TRUE(remade) << "the rotation (2 of 10 courses a run) never found the deleted course";
}

// A course deleted by hand that the plan touches before the rotation reaches
// it: its participant read fails, and that run finds it gone, makes it
// again with its enrolments, and still applies the day's removals elsewhere
// (a failed read would withhold every removal of the run).
TEST_F(UsersTest, ACourseDeletedByHandThatThePlanTouchesIsMadeAgainInTheSameRun) {
  ASSERT_EQ(Sync().exit_code, 0);
  model::MoodleId gone = 0;
  for (const auto& c : moodle_->Courses())
    if (c.idnumber == "10/Ma9") gone = c.id;
  ASSERT_GT(gone, 0);
  ASSERT_TRUE(moodle_->DeleteCourse(gone));
  // The rotation (2 of 10 courses a run, lowest ids first on a tie) is
  // elsewhere; the feed now adds a row to
  // the deleted course and drops a pupil from another one.
  ASSERT_TRUE(testsupport::ExecSqlite(dir_.File("mis.db"),
                                      "INSERT INTO e VALUES ('10/Ma9', 'pupil0300@school.test', 5);"
                                      "DELETE FROM e WHERE setcode = '10/Ma5' AND email = 'pupil0081@school.test';"));
  auto r = Sync();
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(r.plan.removals_withheld, 0);
  EXPECT_EQ(r.apply.applied.suspend, 1);
  int active = 0;
  for (const auto& c : moodle_->Courses()) {
    if (c.idnumber != "10/Ma9" || c.id == gone) continue;
    for (const auto& e : moodle_->Enrolments()) active += e.courseid == c.id && e.status == 0;
  }
  EXPECT_EQ(active, 22) << "the course made again with its 20 pupils, its teacher and the new row";
}

}  // namespace
}  // namespace enrolsync::testing
