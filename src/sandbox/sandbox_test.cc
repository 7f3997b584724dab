// Behaviour of the sandbox over real HTTP, rule by rule, as the recorded
// Moodle 5.1 (shared/moodle/README.md and probes/) behaves.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "sandbox/sandbox.h"
#include "util/strings.h"

namespace enrolsync::sandbox {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Params = std::vector<std::pair<std::string, std::string>>;

const char* kToken = "test-token";

fs::path TempDir(const std::string& name) {
  fs::path p = fs::temp_directory_path() /
               ("enrolsync-sandbox-" + name + "-" + std::to_string(::getpid()) + "-" +
                std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  fs::remove_all(p);
  return p;
}

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override { StartWith(Options{}); }
  void TearDown() override {
    client_.reset();
    if (sb_) sb_->Stop();
    sb_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void StartWith(Options o, bool keep_dir = false) {
    client_.reset();
    if (sb_) sb_->Stop();
    sb_.reset();
    if (!keep_dir) {
      std::error_code ec;
      if (!dir_.empty()) fs::remove_all(dir_, ec);
      dir_ = TempDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    }
    o.state_dir = dir_.string();
    o.token = kToken;
    auto s = Sandbox::Start(o);
    ASSERT_TRUE(s) << s.error().message;
    sb_ = std::move(*s);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", sb_->port());
    client_->set_read_timeout(30, 0);
  }

  static std::string Encode(const Params& p) {
    std::string out;
    for (const auto& [k, v] : p) {
      if (!out.empty()) out += '&';
      out += UrlEncode(k) + "=" + UrlEncode(v);
    }
    return out;
  }

  // POSTs a call; returns {status, body}.
  std::pair<int, std::string> Raw(const std::string& fn, const Params& p, const std::string& token = kToken) {
    Params all = {{"wstoken", token}, {"wsfunction", fn}, {"moodlewsrestformat", "json"}};
    all.insert(all.end(), p.begin(), p.end());
    auto res = client_->Post("/webservice/rest/server.php", Encode(all), "application/x-www-form-urlencoded");
    if (!res) return {-1, ""};
    return {res->status, res->body};
  }
  json Call(const std::string& fn, const Params& p = {}) {
    auto [status, body] = Raw(fn, p);
    EXPECT_EQ(status, 200) << fn;
    return json::parse(body, nullptr, false);
  }
  static std::string Code(const json& j) {
    return j.is_object() && j.contains("errorcode") ? j["errorcode"].get<std::string>() : "";
  }

  MoodleId CreateCourse(const std::string& shortname, Params extra = {}) {
    Params p = {{"courses[0][fullname]", "Course " + shortname}, {"courses[0][shortname]", shortname},
                {"courses[0][categoryid]", "1"}};
    p.insert(p.end(), extra.begin(), extra.end());
    json r = Call("core_course_create_courses", p);
    EXPECT_TRUE(r.is_array()) << r.dump();
    return r.is_array() ? r[0]["id"].get<long long>() : 0;
  }
  MoodleId CreateUser(const std::string& username, const std::string& email = "") {
    json r = Call("core_user_create_users", {{"users[0][username]", username},
                                             {"users[0][auth]", "ldap"},
                                             {"users[0][firstname]", "First"},
                                             {"users[0][lastname]", username},
                                             {"users[0][email]", email.empty() ? username + "@school.test" : email}});
    EXPECT_TRUE(r.is_array()) << r.dump();
    return r.is_array() ? r[0]["id"].get<long long>() : 0;
  }
  json Enrol(MoodleId course, MoodleId user, MoodleId role, Params extra = {}) {
    Params p = {{"enrolments[0][roleid]", std::to_string(role)},
                {"enrolments[0][userid]", std::to_string(user)},
                {"enrolments[0][courseid]", std::to_string(course)}};
    p.insert(p.end(), extra.begin(), extra.end());
    return Call("enrol_manual_enrol_users", p);
  }
  json Unenrol(MoodleId course, MoodleId user, Params extra = {}) {
    Params p = {{"enrolments[0][userid]", std::to_string(user)}, {"enrolments[0][courseid]", std::to_string(course)}};
    p.insert(p.end(), extra.begin(), extra.end());
    return Call("enrol_manual_unenrol_users", p);
  }
  json RoleCall(const std::string& fn, MoodleId course, MoodleId user, MoodleId role) {
    std::string a = fn == "core_role_assign_roles" ? "assignments" : "unassignments";
    return Call(fn, {{a + "[0][roleid]", std::to_string(role)},
                     {a + "[0][userid]", std::to_string(user)},
                     {a + "[0][contextlevel]", "course"},
                     {a + "[0][instanceid]", std::to_string(course)}});
  }
  // Role ids of `user` in `course`, sorted, with the component ("" manual).
  std::vector<std::pair<MoodleId, std::string>> Roles(MoodleId course, MoodleId user) {
    std::vector<std::pair<MoodleId, std::string>> out;
    for (const auto& ra : sb_->RoleAssignments()) {
      if (ra.courseid == course && ra.userid == user) out.emplace_back(ra.roleid, ra.component);
    }
    return out;
  }
  std::vector<Sandbox::Enrolment> EnrolmentsOf(MoodleId course) {
    std::vector<Sandbox::Enrolment> out;
    for (const auto& e : sb_->Enrolments()) {
      if (e.courseid == course) out.push_back(e);
    }
    return out;
  }
  std::vector<long long> Ids(const json& list) {
    std::vector<long long> out;
    for (const json& u : list) out.push_back(u["id"].get<long long>());
    return out;
  }

  fs::path dir_;
  std::unique_ptr<Sandbox> sb_;
  std::unique_ptr<httplib::Client> client_;
};

using R = std::vector<std::pair<MoodleId, std::string>>;

// --- the site -------------------------------------------------------------------

TEST_F(SandboxTest, SiteInfoListsEveryImplementedFunction) {
  json info = Call("core_webservice_get_site_info");
  EXPECT_EQ(info["release"], "5.1+ (Build: 20251017)");
  EXPECT_EQ(info["version"], "2025100600.02");
  EXPECT_EQ(info["userid"], 2);
  EXPECT_EQ(info["siteurl"], sb_->url());
  std::vector<std::string> names;
  for (const json& f : info["functions"]) names.push_back(f["name"]);
  EXPECT_EQ(names.size(), 26u);
  for (const char* fn : {"core_course_create_courses", "enrol_manual_enrol_users", "enrol_manual_unenrol_users",
                         "core_enrol_get_enrolled_users", "core_enrol_get_enrolled_users_with_capability", "core_role_assign_roles", "enrol_meta_add_instances"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), fn), names.end()) << fn;
  }
}

TEST_F(SandboxTest, FreshSiteHasFrontPageCategoryOneAdminAndStandardRoles) {
  json all = Call("core_course_get_courses_by_field");
  ASSERT_EQ(all["courses"].size(), 1u);
  EXPECT_EQ(all["courses"][0]["id"], 1);
  EXPECT_EQ(all["courses"][0]["format"], "site");
  json cats = Call("core_course_get_categories");
  ASSERT_EQ(cats.size(), 1u);
  EXPECT_EQ(cats[0]["id"], 1);
  EXPECT_EQ(cats[0]["name"], "Category 1");
  auto users = sb_->Users();
  ASSERT_EQ(users.size(), 1u);
  EXPECT_EQ(users[0].id, 2);
  EXPECT_EQ(users[0].username, "admin");
  MoodleId c = CreateCourse("C1");
  MoodleId u = CreateUser("u1");
  for (int role : {1, 3, 4, 5}) ASSERT_TRUE(Enrol(c, u, role).is_null()) << role;
  json listed = Call("core_enrol_get_enrolled_users", {{"courseid", std::to_string(c)}});
  std::vector<std::string> shortnames;
  for (const json& r : listed[0]["roles"]) shortnames.push_back(r["shortname"]);
  EXPECT_EQ(shortnames, (std::vector<std::string>{"manager", "editingteacher", "teacher", "student"}));
}

TEST_F(SandboxTest, StateSurvivesARestart) {
  MoodleId c = CreateCourse("KEEP");
  MoodleId u = CreateUser("keeper");
  Enrol(c, u, 5);
  StartWith(Options{}, /*keep_dir=*/true);
  ASSERT_EQ(sb_->Courses().size(), 1u);
  EXPECT_EQ(sb_->Courses()[0].shortname, "KEEP");
  ASSERT_EQ(EnrolmentsOf(c).size(), 1u);
  EXPECT_EQ(CreateCourse("NEXT"), c + 1);
}

// --- courses ---------------------------------------------------------------------

TEST_F(SandboxTest, NewCourseGetsSiteDefaultsSectionZeroOnlyAndDefaultInstances) {
  MoodleId c = CreateCourse("MIN");
  EXPECT_EQ(sb_->SectionCount(c), 1);
  auto courses = sb_->Courses();
  ASSERT_EQ(courses.size(), 1u);
  EXPECT_FALSE(courses[0].visible);
  json got = Call("core_course_get_courses_by_field", {{"field", "id"}, {"value", std::to_string(c)}});
  const json& course = got["courses"][0];
  EXPECT_EQ(course["format"], "topics");
  EXPECT_EQ(course["showreports"], 1);
  EXPECT_EQ(course["enablecompletion"], 1);
  EXPECT_EQ(course["enddate"].get<long long>() - course["startdate"].get<long long>(), 365LL * 86400);
  EXPECT_EQ(course["enrollmentmethods"], json::array({"manual"}));
  EXPECT_EQ(Call("core_enrol_get_course_enrolment_methods", {{"courseid", std::to_string(c)}}), json::array());
}

TEST_F(SandboxTest, NumsectionsFormatOptionCreatesSectionsZeroToN) {
  MoodleId c = CreateCourse("SECT", {{"courses[0][courseformatoptions][0][name]", "numsections"},
                                     {"courses[0][courseformatoptions][0][value]", "4"},
                                     {"courses[0][visible]", "1"}});
  EXPECT_EQ(sb_->SectionCount(c), 5);
  EXPECT_TRUE(sb_->Courses()[0].visible);
}

TEST_F(SandboxTest, CreateCoursesWithOneDuplicateShortnameCreatesNothing) {
  CreateCourse("DUP");
  json r = Call("core_course_create_courses", {{"courses[0][fullname]", "New"},
                                               {"courses[0][shortname]", "NEW"},
                                               {"courses[0][categoryid]", "1"},
                                               {"courses[1][fullname]", "Dup"},
                                               {"courses[1][shortname]", "DUP"},
                                               {"courses[1][categoryid]", "1"}});
  EXPECT_EQ(Code(r), "shortnametaken");
  EXPECT_EQ(r["message"], "Short name is already used for another course (DUP)");
  EXPECT_EQ(sb_->Courses().size(), 1u);
}

TEST_F(SandboxTest, DuplicateCourseIdnumberIsRejected) {
  CreateCourse("A", {{"courses[0][idnumber]", "10/AX1"}});
  json r = Call("core_course_create_courses", {{"courses[0][fullname]", "B"},
                                               {"courses[0][shortname]", "B"},
                                               {"courses[0][categoryid]", "1"},
                                               {"courses[0][idnumber]", "10/AX1"}});
  EXPECT_EQ(Code(r), "courseidnumbertaken");
}

TEST_F(SandboxTest, UnknownCategoryIsRefused) {
  json r = Call("core_course_create_courses",
                {{"courses[0][fullname]", "X"}, {"courses[0][shortname]", "X"}, {"courses[0][categoryid]", "999"}});
  EXPECT_EQ(Code(r), "errorcatcontextnotvalid");
  EXPECT_TRUE(sb_->Courses().empty());
}

TEST_F(SandboxTest, MissingNestedRequiredKeyIsInvalidParameter) {
  json r = Call("core_course_create_courses", {{"courses[0][fullname]", "No category"}});
  EXPECT_EQ(Code(r), "invalidparameter");
  EXPECT_EQ(r["message"], "Invalid parameter value detected");
}

TEST_F(SandboxTest, UnexpectedKeyIsInvalidParameter) {
  json r = Call("core_course_create_courses", {{"courses[0][fullname]", "F"},
                                               {"courses[0][shortname]", "F"},
                                               {"courses[0][categoryid]", "1"},
                                               {"courses[0][colour]", "red"}});
  EXPECT_EQ(Code(r), "invalidparameter");
}

TEST_F(SandboxTest, CoursesByFieldWithoutFieldIncludesTheFrontPage) {
  CreateCourse("A");
  json r = Call("core_course_get_courses_by_field", {{"field", ""}});
  EXPECT_EQ(Ids(r["courses"]), (std::vector<long long>{1, 2}));
}

TEST_F(SandboxTest, NonNumericCourseIdGivesAnEmptyList) {
  CreateCourse("A");
  json r = Call("core_course_get_courses_by_field", {{"field", "id"}, {"value", "abc"}});
  EXPECT_EQ(r, json::parse(R"({"courses":[],"warnings":[]})"));
}

TEST_F(SandboxTest, CoursesByIdnumberAndCategory) {
  MoodleId a = CreateCourse("A", {{"courses[0][idnumber]", "10/Ma1"}});
  CreateCourse("B");
  EXPECT_EQ(Ids(Call("core_course_get_courses_by_field", {{"field", "idnumber"}, {"value", "10/Ma1"}})["courses"]),
            (std::vector<long long>{a}));
  EXPECT_EQ(Call("core_course_get_courses_by_field", {{"field", "category"}, {"value", "1"}})["courses"].size(), 2u);
}

TEST_F(SandboxTest, UpdateCoursesRenamesAndReportsBadCoursesAsWarnings) {
  MoodleId c = CreateCourse("A");
  json r = Call("core_course_update_courses", {{"courses[0][id]", std::to_string(c)},
                                               {"courses[0][fullname]", "Renamed"},
                                               {"courses[0][visible]", "1"},
                                               {"courses[1][id]", "9999"},
                                               {"courses[1][fullname]", "Nope"}});
  ASSERT_EQ(r["warnings"].size(), 1u);
  EXPECT_EQ(r["warnings"][0]["itemid"], 9999);
  EXPECT_EQ(sb_->Courses()[0].fullname, "Renamed");
  EXPECT_TRUE(sb_->Courses()[0].visible);
}

TEST_F(SandboxTest, BulkSeedCreatesLdapUsersInOneGoAndSkipsTakenUsernames) {
  std::vector<Sandbox::SeedUser> users;
  for (int i = 0; i < 2000; ++i) {
    std::string n = std::to_string(i);
    users.push_back({"p" + n, "First" + n, "Last" + n, "p" + n + "@school.test", "ID" + n});
  }
  auto n = sb_->SeedLdapUsers(users);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(*n, 2000);
  auto again = sb_->SeedLdapUsers({users[0], {"new1", "N", "One", "new1@school.test", ""}});
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 1);  // p0 is taken: skipped, not an error
  auto all = sb_->Users();
  ASSERT_EQ(all.size(), 2002u);  // admin + 2000 + new1
  json got = Call("core_user_get_users_by_field", {{"field", "email"}, {"values[0]", "p1999@school.test"}});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["auth"], "ldap");
  EXPECT_EQ(got[0]["idnumber"], "ID1999");
  // A bad username anywhere: nothing of that batch is created.
  auto bad = sb_->SeedLdapUsers({{"ok2", "O", "K", "ok2@school.test", ""}, {"Bad Name", "B", "N", "b@school.test", ""}});
  EXPECT_FALSE(bad);
  EXPECT_EQ(sb_->Users().size(), 2002u);
}

TEST_F(SandboxTest, SeedCategoriesGivesTheIdsAskedForOrRefuses) {
  ASSERT_TRUE(sb_->SeedCategories({{2, "Mathematics"}, {3, "English"}}));
  json cats = Call("core_course_get_categories");
  ASSERT_EQ(cats.size(), 3u);
  EXPECT_EQ(cats[1]["id"], 2);
  EXPECT_EQ(cats[1]["name"], "Mathematics");
  EXPECT_TRUE(sb_->SeedCategories({{2, "Mathematics"}}));  // present: left alone
  EXPECT_FALSE(sb_->SeedCategories({{9, "Staff Areas"}}));  // would be id 4
  EXPECT_EQ(Call("core_course_get_categories").size(), 3u);
}

TEST_F(SandboxTest, CategoriesCanBeCreatedAndFoundByName) {
  json made = Call("core_course_create_categories", {{"categories[0][name]", "Maths"},
                                                     {"categories[0][idnumber]", "MA"}});
  ASSERT_TRUE(made.is_array());
  json found = Call("core_course_get_categories",
                    {{"criteria[0][key]", "name"}, {"criteria[0][value]", "Maths"}, {"addsubcategories", "0"}});
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0]["id"], made[0]["id"]);
  EXPECT_EQ(found[0]["idnumber"], "MA");
  json bad = Call("core_course_create_categories", {{"categories[0][name]", "X"}, {"categories[0][parent]", "999"}});
  EXPECT_EQ(Code(bad), "unknowcategory");
}

// --- users -----------------------------------------------------------------------

TEST_F(SandboxTest, DuplicateEmailDifferingInCaseIsRejected) {
  CreateUser("u20", "probe-u20@probe.test");
  json r = Call("core_user_create_users", {{"users[0][username]", "dup"},
                                           {"users[0][auth]", "ldap"},
                                           {"users[0][firstname]", "D"},
                                           {"users[0][lastname]", "D"},
                                           {"users[0][email]", "PROBE-U20@probe.test"}});
  EXPECT_EQ(Code(r), "invalidparameter");
  EXPECT_EQ(sb_->Users().size(), 2u);
}

// Moodle 5.1's update_users answers refused users as warnings and commits
// the others (user/externallib.php): the guest, an invalid or a taken email.
TEST_F(SandboxTest, UpdateUsersRefusesGuestInvalidAndTakenEmailsAsWarnings) {
  MoodleId a = CreateUser("ua", "ua@school.test");
  MoodleId b = CreateUser("ub", "ub@school.test");
  json r = Call("core_user_update_users", {{"users[0][id]", "1"},
                                           {"users[0][firstname]", "Guest2"},
                                           {"users[1][id]", std::to_string(a)},
                                           {"users[1][email]", ""},
                                           {"users[2][id]", std::to_string(b)},
                                           {"users[2][email]", "UA@school.test"},
                                           {"users[3][id]", std::to_string(a)},
                                           {"users[3][lastname]", "Renamed"},
                                           {"users[4][id]", std::to_string(b)},
                                           {"users[4][email]", "ub@school.test"}});
  ASSERT_TRUE(r.contains("warnings")) << r.dump();
  std::vector<std::pair<long long, std::string>> got;
  for (const auto& w : r["warnings"]) got.emplace_back(w["itemid"].get<long long>(), w["warningcode"].get<std::string>());
  EXPECT_EQ(got, (std::vector<std::pair<long long, std::string>>{
                     {1, "usernotupdatedguest"}, {a, "useremailinvalid"}, {b, "useremailduplicate"}}))
      << r.dump();
  EXPECT_EQ(r["warnings"][2]["message"], "Duplicate address");
  for (const auto& u : sb_->Users()) {
    if (u.id == a) {
      EXPECT_EQ(u.email, "ua@school.test");
      EXPECT_EQ(u.profile.at("lastname"), "Renamed") << "the users not refused are updated";
    }
  }
}

TEST_F(SandboxTest, DuplicateUsernameIsRejected) {
  CreateUser("same");
  json r = Call("core_user_create_users", {{"users[0][username]", "same"},
                                           {"users[0][auth]", "ldap"},
                                           {"users[0][firstname]", "D"},
                                           {"users[0][lastname]", "D"},
                                           {"users[0][email]", "other@school.test"}});
  EXPECT_EQ(Code(r), "invalidparameter");
}

TEST_F(SandboxTest, UppercaseUsernameIsRejected) {
  json r = Call("core_user_create_users", {{"users[0][username]", "Probe-Upper"},
                                           {"users[0][auth]", "ldap"},
                                           {"users[0][firstname]", "P"},
                                           {"users[0][lastname]", "U"},
                                           {"users[0][email]", "probe-upper@probe.test"}});
  EXPECT_EQ(Code(r), "invalidparameter");
  json lookup = Call("core_user_get_users_by_field", {{"field", "username"}, {"values[0]", "PROBE-U20"}});
  EXPECT_EQ(Code(lookup), "invalidparameter");
}

TEST_F(SandboxTest, ManualAuthNeedsPasswordOrCreatePasswordLdapNeedsNeither) {
  Params base = {{"users[0][firstname]", "P"}, {"users[0][lastname]", "M"}};
  auto with = [&](Params p) {
    p.insert(p.end(), base.begin(), base.end());
    return Call("core_user_create_users", p);
  };
  EXPECT_EQ(Code(with({{"users[0][username]", "man1"}, {"users[0][auth]", "manual"},
                       {"users[0][email]", "man1@probe.test"}})), "invalidparameter");
  EXPECT_TRUE(with({{"users[0][username]", "man2"}, {"users[0][auth]", "manual"}, {"users[0][createpassword]", "1"},
                    {"users[0][email]", "man2@probe.test"}}).is_array());
  EXPECT_TRUE(with({{"users[0][username]", "ldap1"}, {"users[0][auth]", "ldap"},
                    {"users[0][email]", "ldap1@probe.test"}}).is_array());
  // auth left out means manual, so a password is needed.
  EXPECT_EQ(Code(with({{"users[0][username]", "noauth"}, {"users[0][email]", "noauth@probe.test"}})),
            "invalidparameter");
  ASSERT_TRUE(with({{"users[0][username]", "noauth2"}, {"users[0][password]", "Probe#2026pw"},
                    {"users[0][email]", "noauth2@probe.test"}}).is_array());
  EXPECT_EQ(sb_->Users().back().auth, "manual");
}

TEST_F(SandboxTest, WeakPasswordErrorcodeIsThePolicyHtml) {
  json r = Call("core_user_create_users", {{"users[0][username]", "weak"},
                                           {"users[0][password]", "short"},
                                           {"users[0][firstname]", "W"},
                                           {"users[0][lastname]", "P"},
                                           {"users[0][email]", "weak@school.test"}});
  std::string html =
      "<div>Passwords must be at least 8 characters long.</div><div>Passwords must have at least 1 digit(s).</div>"
      "<div>Passwords must have at least 1 upper case letter(s).</div><div>The password must have at least 1 "
      "special character(s) such as *, -, or #.</div>";
  EXPECT_EQ(Code(r), html);
  EXPECT_EQ(r["message"], "error/" + html);
}

TEST_F(SandboxTest, EmailLookupIsCaseSensitive) {
  MoodleId mixed = CreateUser("mixed", "Probe.Mixed@Probe.TEST");
  CreateUser("lower", "probe-u20@probe.test");
  auto by_email = [&](const std::string& e) {
    return Ids(Call("core_user_get_users_by_field", {{"field", "email"}, {"values[0]", e}}));
  };
  EXPECT_EQ(by_email("Probe.Mixed@Probe.TEST"), (std::vector<long long>{mixed}));
  EXPECT_TRUE(by_email("probe.mixed@probe.test").empty());
  EXPECT_TRUE(by_email("PROBE-U20@Probe.Test").empty());
}

TEST_F(SandboxTest, GetUsersEmailSearchIsCaseInsensitive) {
  MoodleId u = CreateUser("u20", "probe-u20@probe.test");
  json r = Call("core_user_get_users", {{"criteria[0][key]", "email"}, {"criteria[0][value]", "PROBE-U20@probe.test"}});
  EXPECT_EQ(Ids(r["users"]), (std::vector<long long>{u}));
  EXPECT_EQ(r["warnings"], json::array());
}

TEST_F(SandboxTest, SuspendedUserIsReturnedWithSuspendedTrue) {
  MoodleId u = CreateUser("sus");
  json upd = Call("core_user_update_users", {{"users[0][id]", std::to_string(u)}, {"users[0][suspended]", "1"}});
  EXPECT_EQ(upd, json::parse(R"({"warnings":[]})"));
  json r = Call("core_user_get_users_by_field", {{"field", "email"}, {"values[0]", "sus@school.test"}});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0]["suspended"], true);
  EXPECT_EQ(r[0]["auth"], "ldap");
  ASSERT_TRUE(sb_->SetUserSuspended(u, false));
  EXPECT_EQ(Call("core_user_get_users_by_field", {{"field", "id"}, {"values[0]", std::to_string(u)}})[0]["suspended"],
            false);
}

TEST_F(SandboxTest, DeletedUserKeepsItsIdButLosesUsernameAndEnrolments) {
  MoodleId c = CreateCourse("C");
  MoodleId u = CreateUser("gone");
  Enrol(c, u, 5);
  EXPECT_TRUE(Call("core_user_delete_users", {{"userids[0]", std::to_string(u)}}).is_null());
  EXPECT_TRUE(EnrolmentsOf(c).empty());
  EXPECT_TRUE(Roles(c, u).empty());
  json byid = Call("core_user_get_users_by_field", {{"field", "id"}, {"values[0]", std::to_string(u)}});
  ASSERT_EQ(byid.size(), 1u);
  EXPECT_NE(byid[0]["username"], "gone");
  EXPECT_EQ(Code(Call("core_user_delete_users", {{"userids[0]", "999999"}})), "invalidrecordunknown");
}

// --- enrol_manual_enrol_users ------------------------------------------------------

TEST_F(SandboxTest, EnrolCallWithoutSuspendReactivates) {
  MoodleId c = CreateCourse("C");
  MoodleId u = CreateUser("u");
  Enrol(c, u, 5, {{"enrolments[0][suspend]", "1"}});
  ASSERT_EQ(EnrolmentsOf(c).at(0).status, 1);
  EXPECT_EQ(Roles(c, u), (R{{5, ""}}));  // suspending keeps the role
  Enrol(c, u, 5);
  EXPECT_EQ(EnrolmentsOf(c).at(0).status, 0);
}

TEST_F(SandboxTest, EnrolCallWithoutDatesResetsThemToZero) {
  MoodleId c = CreateCourse("C");
  MoodleId u = CreateUser("u");
  Enrol(c, u, 5, {{"enrolments[0][timestart]", "1795558458"}, {"enrolments[0][timeend]", "1798236858"}});
  ASSERT_EQ(EnrolmentsOf(c).at(0).timestart, 1795558458);
  ASSERT_EQ(EnrolmentsOf(c).at(0).timeend, 1798236858);
  Enrol(c, u, 5);
  EXPECT_EQ(EnrolmentsOf(c).at(0).timestart, 0);
  EXPECT_EQ(EnrolmentsOf(c).at(0).timeend, 0);
}

TEST_F(SandboxTest, DifferentRoleIdAddsARoleAndNeverReplacesOne) {
  MoodleId c = CreateCourse("C");
  MoodleId u = CreateUser("u");
  Enrol(c, u, 5);
  Enrol(c, u, 3);
  EXPECT_EQ(Roles(c, u), (R{{3, ""}, {5, ""}}));
  Enrol(c, u, 4, {{"enrolments[0][suspend]", "1"}});  // a suspending call still adds its role
  EXPECT_EQ(Roles(c, u), (R{{3, ""}, {4, ""}, {5, ""}}));
  EXPECT_EQ(EnrolmentsOf(c).size(), 1u);
}

TEST_F(SandboxTest, IdenticalRepeatChangesNothing) {
  MoodleId c = CreateCourse("C");
  MoodleId u = CreateUser("u");
  Enrol(c, u, 5);
  auto before = sb_->Enrolments();
  auto roles_before = sb_->RoleAssignments();
  EXPECT_TRUE(Enrol(c, u, 5).is_null());
  EXPECT_EQ(sb_->Enrolments().size(), before.size());
  EXPECT_EQ(sb_->RoleAssignments().size(), roles_before.size());
}

TEST_F(SandboxTest, BatchWithOneBadItemAppliesNothing) {
  MoodleId c = CreateCourse("C");
  MoodleId a = CreateUser("a");
  MoodleId b = CreateUser("b");
  auto batch = [&](const std::string& third_user, const std::string& third_role, const std::string& third_course) {
    return Call("enrol_manual_enrol_users", {{"enrolments[0][roleid]", "5"},
                                             {"enrolments[0][userid]", std::to_string(a)},
                                             {"enrolments[0][courseid]", std::to_string(c)},
                                             {"enrolments[1][roleid]", "5"},
                                             {"enrolments[1][userid]", std::to_string(b)},
                                             {"enrolments[1][courseid]", std::to_string(c)},
                                             {"enrolments[2][roleid]", third_role},
                                             {"enrolments[2][userid]", third_user},
                                             {"enrolments[2][courseid]", third_course}});
  };
  EXPECT_EQ(Code(batch("99999999", "5", std::to_string(c))), "invalidrecordunknown");
  EXPECT_EQ(Code(batch(std::to_string(a), "999", std::to_string(c))), "wsusercannotassign");
  EXPECT_EQ(Code(batch(std::to_string(a), "5", "99999999")), "invalidparameter");
  EXPECT_TRUE(sb_->Enrolments().empty());
  EXPECT_TRUE(sb_->RoleAssignments().empty());
}

TEST_F(SandboxTest, DeletedUserGivesUserDeleted) {
  MoodleId c = CreateCourse("C");
  MoodleId u = CreateUser("u");
  Call("core_user_delete_users", {{"userids[0]", std::to_string(u)}});
  json r = Enrol(c, u, 5);
  EXPECT_EQ(Code(r), "userdeleted");
  EXPECT_EQ(r["message"], "error/userdeleted");
  EXPECT_EQ(Code(Unenrol(c, u)), "userdeleted");
}

TEST_F(SandboxTest, RoleIdZeroOrUnassignableGivesWsUserCannotAssign) {
  MoodleId c = CreateCourse("C");
  MoodleId u = CreateUser("u");
  json r = Enrol(c, u, 0);
  EXPECT_EQ(Code(r), "wsusercannotassign");
  EXPECT_EQ(r["message"], "You don't have the permission to assign this role (0) to this user (" +
                              std::to_string(u) + ") in this course (" + std::to_string(c) + ").");
  EXPECT_EQ(Code(Enrol(c, u, 2)), "wsusercannotassign");  // coursecreator: not at course level
  EXPECT_EQ(Code(Enrol(c, u, 7)), "wsusercannotassign");
}

TEST_F(SandboxTest, SiteSuspendedUserCanBeEnrolled) {
  MoodleId c = CreateCourse("C");
  MoodleId u = CreateUser("u");
  ASSERT_TRUE(sb_->SetUserSuspended(u, true));
  EXPECT_TRUE(Enrol(c, u, 5).is_null());
  EXPECT_EQ(EnrolmentsOf(c).at(0).status, 0);
}

TEST_F(SandboxTest, DisabledManualInstanceGivesWsNoInstance) {
  MoodleId c = CreateCourse("C");
  MoodleId u = CreateUser("u");
  ASSERT_TRUE(sb_->SetInstanceStatus(c, "manual", 1));
  json r = Enrol(c, u, 5);
  EXPECT_EQ(Code(r), "wsnoinstance");
  EXPECT_EQ(r["message"], "Manual enrolment plugin instance doesn't exist or is disabled for the course (id = " +
                              std::to_string(c) + ")");
}

TEST_F(SandboxTest, WelcomeMessageIsWrittenOnEveryEnrolCallOnceTheCourseHasATeacher) {
  MoodleId c = CreateCourse("C");
  MoodleId s = CreateUser("s");
  MoodleId t = CreateUser("t");
  Enrol(c, s, 5);
  EXPECT_EQ(sb_->WelcomeMessagesSent(), 0);
  Enrol(c, t, 3);  // no teacher before this call
  EXPECT_EQ(sb_->WelcomeMessagesSent(), 0);
  Enrol(c, s, 5);  // identical repeat
  EXPECT_EQ(sb_->WelcomeMessagesSent(), 1);
  Enrol(c, s, 5, {{"enrolments[0][suspend]", "1"}});
  EXPECT_EQ(sb_->WelcomeMessagesSent(), 2);
  // The same user twice in one call: one message.
  Call("enrol_manual_enrol_users", {{"enrolments[0][roleid]", "5"}, {"enrolments[0][userid]", std::to_string(s)},
                                    {"enrolments[0][courseid]", std::to_string(c)}, {"enrolments[1][roleid]", "4"},
                                    {"enrolments[1][userid]", std::to_string(s)},
                                    {"enrolments[1][courseid]", std::to_string(c)}});
  EXPECT_EQ(sb_->WelcomeMessagesSent(), 3);
  // With "Send course welcome message" off, nothing is sent.
  ASSERT_TRUE(sb_->SetWelcomeMessage(c, false));
  Enrol(c, s, 5);
  EXPECT_EQ(sb_->WelcomeMessagesSent(), 3);
}

TEST_F(SandboxTest, WelcomeMessageOffByOptionForNewCourses) {
  Options o;
  o.manual_welcome_message = false;
  StartWith(o);
  MoodleId c = CreateCourse("C");
  Enrol(c, CreateUser("t"), 3);
  Enrol(c, CreateUser("s"), 5);
  EXPECT_EQ(sb_->WelcomeMessagesSent(), 0);
}

TEST_F(SandboxTest, OversizedPostLosesVarsPastMaxInputVars) {
  Options o;
  o.max_input_vars = 21;
  StartWith(o);
  MoodleId c = CreateCourse("C");
  std::vector<MoodleId> users;
  for (int i = 0; i < 7; ++i) users.push_back(CreateUser("u" + std::to_string(i)));
  auto batch = [&](int n) {
    Params p;
    for (int i = 0; i < n; ++i) {
      std::string k = "enrolments[" + std::to_string(i) + "]";
      p.push_back({k + "[roleid]", "5"});
      p.push_back({k + "[userid]", std::to_string(users[i])});
      p.push_back({k + "[courseid]", std::to_string(c)});
    }
    return p;
  };
  // wstoken, wsfunction, moodlewsrestformat + 7 x 3 = 24 vars; PHP keeps
  // max_input_vars + 1 = 22: the 7th enrolment loses its userid and courseid.
  EXPECT_EQ(Code(Call("enrol_manual_enrol_users", batch(7))), "invalidparameter");
  EXPECT_TRUE(sb_->Enrolments().empty());
  // 3 + 6 x 3 = 21 vars: all kept.
  EXPECT_TRUE(Call("enrol_manual_enrol_users", batch(6)).is_null());
  EXPECT_EQ(sb_->Enrolments().size(), 6u);
}

// --- enrol_manual_unenrol_users ----------------------------------------------------

TEST_F(SandboxTest, UnenrolIgnoresRoleId) {
  MoodleId c = CreateCourse("C");
  MoodleId u = CreateUser("u");
  Enrol(c, u, 5);
  Enrol(c, u, 3);
  EXPECT_TRUE(Unenrol(c, u, {{"enrolments[0][roleid]", "5"}}).is_null());
  EXPECT_TRUE(EnrolmentsOf(c).empty());
  EXPECT_TRUE(Roles(c, u).empty());  // last enrolment: every role goes
}

TEST_F(SandboxTest, UnenrolOfTheLastEnrolmentRemovesRolesOfEveryComponent) {
  MoodleId c = CreateCourse("C");
  MoodleId u = CreateUser("u");
  Enrol(c, u, 5);
  RoleCall("core_role_assign_roles", c, u, 4);
  Unenrol(c, u);
  EXPECT_TRUE(Roles(c, u).empty());
}

TEST_F(SandboxTest, UnenrolKeepsEveryRoleWhenAnotherEnrolmentRemains) {
  MoodleId c = CreateCourse("C");
  MoodleId u = CreateUser("u");
  ASSERT_TRUE(sb_->AddEnrolmentAs("database", c, u, 5));
  Enrol(c, u, 3);
  Unenrol(c, u);
  ASSERT_EQ(EnrolmentsOf(c).size(), 1u);
  EXPECT_EQ(EnrolmentsOf(c)[0].method, "database");
  EXPECT_EQ(Roles(c, u), (R{{3, ""}, {5, "enrol_database"}}));
}

TEST_F(SandboxTest, UnenrolOfAUserNotEnrolledReturnsNullAndChangesNothing) {
  MoodleId c = CreateCourse("C");
  MoodleId u = CreateUser("u");
  RoleCall("core_role_assign_roles", c, u, 4);  // role only, no enrolment
  auto [status, body] = Raw("enrol_manual_unenrol_users",
                            {{"enrolments[0][userid]", std::to_string(u)}, {"enrolments[0][courseid]", std::to_string(c)}});
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body, "null");
  EXPECT_EQ(Roles(c, u), (R{{4, ""}}));
  EXPECT_EQ(Code(Unenrol(99999999, u)), "invalidrecordunknown");
  EXPECT_EQ(Code(Unenrol(c, 99999999)), "invalidrecordunknown");
}

// --- roles ---------------------------------------------------------------------------

TEST_F(SandboxTest, RoleAssignByContextIdOrLevelAndRepeatIsANoOp) {
  MoodleId c = CreateCourse("C");
  MoodleId u = CreateUser("u");
  Enrol(c, u, 5);
  EXPECT_TRUE(RoleCall("core_role_assign_roles", c, u, 3).is_null());
  EXPECT_TRUE(RoleCall("core_role_assign_roles", c, u, 3).is_null());
  EXPECT_TRUE(Call("core_role_assign_roles", {{"assignments[0][roleid]", "4"},
                                              {"assignments[0][userid]", std::to_string(u)},
                                              {"assignments[0][contextid]", std::to_string(sb_->CourseContextId(c))}})
                  .is_null());
  EXPECT_EQ(Roles(c, u), (R{{3, ""}, {4, ""}, {5, ""}}));
  // Unassigning everything leaves the enrolment without roles.
  for (int r : {3, 4, 5}) RoleCall("core_role_unassign_roles", c, u, r);
  EXPECT_TRUE(Roles(c, u).empty());
  EXPECT_EQ(EnrolmentsOf(c).size(), 1u);
}

TEST_F(SandboxTest, RoleCanBeAssignedToAUserWhoIsNotEnrolled) {
  MoodleId c = CreateCourse("C");
  MoodleId u = CreateUser("u");
  EXPECT_TRUE(RoleCall("core_role_assign_roles", c, u, 5).is_null());
  EXPECT_EQ(Roles(c, u), (R{{5, ""}}));
  EXPECT_TRUE(EnrolmentsOf(c).empty());
}

TEST_F(SandboxTest, RoleCallErrorsMatchMoodle) {
  MoodleId c = CreateCourse("C");
  MoodleId u = CreateUser("u");
  EXPECT_EQ(Code(RoleCall("core_role_assign_roles", c, u, 999)), "invalidparameter");
  EXPECT_EQ(Code(RoleCall("core_role_assign_roles", c, u, 7)), "invalidparameter");
  EXPECT_EQ(Code(RoleCall("core_role_unassign_roles", c, u, 7)), "invalidparameter");
  EXPECT_EQ(Code(RoleCall("core_role_assign_roles", 99999999, u, 5)), "invalidparameter");
  EXPECT_EQ(Code(Call("core_role_assign_roles", {{"assignments[0][roleid]", "5"},
                                                 {"assignments[0][userid]", std::to_string(u)}})),
            "invalidparameter");
  json r = RoleCall("core_role_assign_roles", c, 99999999, 5);
  EXPECT_EQ(Code(r), "codingerror");
  EXPECT_EQ(r["message"], "Coding error detected, it must be fixed by a programmer: User ID does not exist or is deleted!");
}

TEST_F(SandboxTest, UnassignOfARoleGivenByAnotherComponentDoesNothing) {
  MoodleId c = CreateCourse("C");
  MoodleId u = CreateUser("u");
  ASSERT_TRUE(sb_->AddEnrolmentAs("database", c, u, 5));
  EXPECT_TRUE(RoleCall("core_role_unassign_roles", c, u, 5).is_null());
  EXPECT_EQ(Roles(c, u), (R{{5, "enrol_database"}}));
}

// --- core_enrol_get_enrolled_users ----------------------------------------------------

TEST_F(SandboxTest, EnrolledUsersListsSuspendedAndRolelessUsersByDefault) {
  MoodleId c = CreateCourse("C");
  MoodleId active = CreateUser("active");
  MoodleId susp = CreateUser("susp");
  MoodleId norole = CreateUser("norole");
  MoodleId roleonly = CreateUser("roleonly");
  MoodleId expired = CreateUser("expired");
  Enrol(c, active, 5);
  Enrol(c, susp, 5, {{"enrolments[0][suspend]", "1"}});
  Enrol(c, norole, 5);
  RoleCall("core_role_unassign_roles", c, norole, 5);
  RoleCall("core_role_assign_roles", c, roleonly, 5);
  Enrol(c, expired, 5, {{"enrolments[0][timestart]", "1000"}, {"enrolments[0][timeend]", "2000"}});
  std::string cid = std::to_string(c);
  EXPECT_EQ(Ids(Call("core_enrol_get_enrolled_users", {{"courseid", cid}})),
            (std::vector<long long>{active, susp, norole, expired}));
  EXPECT_EQ(Ids(Call("core_enrol_get_enrolled_users",
                     {{"courseid", cid}, {"options[0][name]", "onlyactive"}, {"options[0][value]", "1"}})),
            (std::vector<long long>{active, norole}));
  EXPECT_EQ(Ids(Call("core_enrol_get_enrolled_users",
                     {{"courseid", cid}, {"options[0][name]", "onlysuspended"}, {"options[0][value]", "1"}})),
            (std::vector<long long>{susp, expired}));
  json both = Call("core_enrol_get_enrolled_users", {{"courseid", cid},
                                                     {"options[0][name]", "onlyactive"},
                                                     {"options[0][value]", "1"},
                                                     {"options[1][name]", "onlysuspended"},
                                                     {"options[1][value]", "1"}});
  EXPECT_EQ(Code(both), "codingerror");
}

// core_enrol_get_enrolled_users_with_capability with capability "": every
// enrolled user of each course, per course, with the same options; a
// missing course fails the whole call (Moodle's MUST_EXIST).
TEST_F(SandboxTest, EnrolledUsersWithCapabilityListsSeveralCoursesInOneCall) {
  MoodleId a = CreateCourse("A");
  MoodleId b = CreateCourse("B");
  MoodleId u1 = CreateUser("u1");
  MoodleId u2 = CreateUser("u2");
  Enrol(a, u1, 5);
  Enrol(a, u2, 3, {{"enrolments[0][suspend]", "1"}});
  Enrol(b, u2, 5);
  auto call = [&](std::vector<MoodleId> courses, bool onlyactive) {
    std::vector<std::pair<std::string, std::string>> f;
    for (std::size_t i = 0; i < courses.size(); ++i) {
      f.emplace_back("coursecapabilities[" + std::to_string(i) + "][courseid]", std::to_string(courses[i]));
      f.emplace_back("coursecapabilities[" + std::to_string(i) + "][capabilities][0]", "");
    }
    f.emplace_back("options[0][name]", "userfields");
    f.emplace_back("options[0][value]", "id,roles");
    if (onlyactive) {
      f.emplace_back("options[1][name]", "onlyactive");
      f.emplace_back("options[1][value]", "1");
    }
    return Call("core_enrol_get_enrolled_users_with_capability", f);
  };
  json all = call({a, b}, false);
  ASSERT_EQ(all.size(), 2u) << all.dump();
  EXPECT_EQ(all[0]["courseid"], a);
  EXPECT_EQ(all[0]["capability"], "");
  EXPECT_EQ(Ids(all[0]["users"]), (std::vector<long long>{u1, u2}));
  EXPECT_EQ(all[0]["users"][1]["roles"][0]["roleid"], 3);
  EXPECT_EQ(Ids(all[1]["users"]), (std::vector<long long>{u2}));
  json active = call({a, b}, true);
  EXPECT_EQ(Ids(active[0]["users"]), (std::vector<long long>{u1}));
  EXPECT_EQ(Ids(active[1]["users"]), (std::vector<long long>{u2}));
  EXPECT_EQ(Code(call({a, 999999}, false)), "invalidrecordunknown");
}

TEST_F(SandboxTest, UserEnrolledTwoWaysIsListedOnceWithRolesFromBoth) {
  MoodleId c = CreateCourse("C");
  MoodleId u = CreateUser("u");
  Enrol(c, u, 5);
  ASSERT_TRUE(sb_->AddEnrolmentAs("database", c, u, 5));
  json r = Call("core_enrol_get_enrolled_users", {{"courseid", std::to_string(c)},
                                                  {"options[0][name]", "userfields"},
                                                  {"options[0][value]", "id,roles"}});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0], json::parse(R"({"id":)" + std::to_string(u) +
                              R"(,"fullname":"First u","roles":[{"roleid":5,"name":"","shortname":"student","sortorder":0},)"
                              R"({"roleid":5,"name":"","shortname":"student","sortorder":0}]})"));
}

TEST_F(SandboxTest, UserfieldsIdGivesIdAndFullnameOnlyAndBadFieldIsAnError) {
  MoodleId c = CreateCourse("C");
  MoodleId u = CreateUser("u");
  Enrol(c, u, 5);
  json r = Call("core_enrol_get_enrolled_users", {{"courseid", std::to_string(c)},
                                                  {"options[0][name]", "userfields"},
                                                  {"options[0][value]", "id"}});
  EXPECT_EQ(r, json::parse(R"([{"id":)" + std::to_string(u) + R"(,"fullname":"First u"}])"));
  json bad = Call("core_enrol_get_enrolled_users", {{"courseid", std::to_string(c)},
                                                    {"options[0][name]", "userfields"},
                                                    {"options[0][value]", "id,nosuchfield"}});
  EXPECT_EQ(Code(bad), "invaliduserfield");
  EXPECT_EQ(bad["message"], "Invalid user field: nosuchfield");
}

TEST_F(SandboxTest, EnrolmentMethodsListOnlyEnabledSelfAndGuest) {
  MoodleId c = CreateCourse("C");
  MoodleId u = CreateUser("u");
  std::string cid = std::to_string(c);
  EXPECT_EQ(Call("core_enrol_get_course_enrolment_methods", {{"courseid", cid}}), json::array());
  ASSERT_TRUE(sb_->AddEnrolmentAs("self", c, u, 5));
  json r = Call("core_enrol_get_course_enrolment_methods", {{"courseid", cid}});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0]["type"], "self");
  EXPECT_EQ(r[0]["name"], "Self enrolment (Student)");
  EXPECT_EQ(r[0]["status"], true);
}

// --- meta links --------------------------------------------------------------------------

TEST_F(SandboxTest, MetaLinkMirrorsTheChildAndSuspendsWithoutRolesOnUnenrol) {
  MoodleId parent = CreateCourse("P");
  MoodleId child = CreateCourse("CH");
  MoodleId u = CreateUser("u");
  Enrol(child, u, 5);
  json add = Call("enrol_meta_add_instances", {{"instances[0][metacourseid]", std::to_string(parent)},
                                               {"instances[0][courseid]", std::to_string(child)},
                                               {"instances[0][creategroup]", "1"}});
  EXPECT_EQ(add, json::parse(R"([{"metacourseid":)" + std::to_string(parent) + R"(,"courseid":")" +
                             std::to_string(child) + R"(","status":true}])"));
  ASSERT_EQ(EnrolmentsOf(parent).size(), 1u);
  EXPECT_EQ(EnrolmentsOf(parent)[0].method, "meta");
  EXPECT_EQ(Roles(parent, u), (R{{5, "enrol_meta"}}));
  Unenrol(child, u);
  ASSERT_EQ(EnrolmentsOf(parent).size(), 1u);
  EXPECT_EQ(EnrolmentsOf(parent)[0].status, 1);
  EXPECT_TRUE(Roles(parent, u).empty());
  Enrol(child, u, 5);
  EXPECT_EQ(EnrolmentsOf(parent)[0].status, 0);
  EXPECT_EQ(Roles(parent, u), (R{{5, "enrol_meta"}}));
  json again = Call("enrol_meta_add_instances", {{"instances[0][metacourseid]", std::to_string(parent)},
                                                 {"instances[0][courseid]", std::to_string(child)}});
  EXPECT_EQ(again[0]["status"], false);
  json del = Call("enrol_meta_delete_instances", {{"instances[0][metacourseid]", std::to_string(parent)},
                                                  {"instances[0][courseid]", std::to_string(child)}});
  EXPECT_EQ(del[0]["status"], true);
  EXPECT_TRUE(EnrolmentsOf(parent).empty());
  EXPECT_TRUE(Roles(parent, u).empty());
}

TEST_F(SandboxTest, MetaUserInTwoChildrenStaysActiveThroughTheOtherAndGroupIsKept) {
  MoodleId parent = CreateCourse("P");
  MoodleId c1 = CreateCourse("C1");
  MoodleId c2 = CreateCourse("C2");
  MoodleId u = CreateUser("u");
  Enrol(c1, u, 5);
  Enrol(c2, u, 5);
  for (MoodleId child : {c1, c2}) {
    Call("enrol_meta_add_instances", {{"instances[0][metacourseid]", std::to_string(parent)},
                                      {"instances[0][courseid]", std::to_string(child)},
                                      {"instances[0][creategroup]", "1"}});
  }
  ASSERT_EQ(EnrolmentsOf(parent).size(), 2u);  // one meta enrolment per link
  Unenrol(c1, u);
  auto active = Ids(Call("core_enrol_get_enrolled_users", {{"courseid", std::to_string(parent)},
                                                          {"options[0][name]", "onlyactive"},
                                                          {"options[0][value]", "1"}}));
  EXPECT_EQ(active, (std::vector<long long>{u}));
  EXPECT_EQ(Roles(parent, u), (R{{5, "enrol_meta"}}));  // from the C2 link only
  json g = Call("core_enrol_get_enrolled_users", {{"courseid", std::to_string(parent)},
                                                  {"options[0][name]", "userfields"},
                                                  {"options[0][value]", "id,groups"}});
  ASSERT_EQ(g[0]["groups"].size(), 2u);  // suspended through C1, still in its group
  EXPECT_EQ(g[0]["groups"][0]["name"], "Course C1 course");
}

TEST_F(SandboxTest, ManualEnrolmentInParentSurvivesTheChildLeaving) {
  MoodleId parent = CreateCourse("P");
  MoodleId child = CreateCourse("C");
  MoodleId u = CreateUser("u");
  Enrol(child, u, 5);
  Call("enrol_meta_add_instances", {{"instances[0][metacourseid]", std::to_string(parent)},
                                    {"instances[0][courseid]", std::to_string(child)}});
  Enrol(parent, u, 5);
  Unenrol(child, u);
  EXPECT_EQ(Roles(parent, u), (R{{5, ""}}));
  auto e = EnrolmentsOf(parent);
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].method, "manual");
  EXPECT_EQ(e[0].status, 0);
  EXPECT_EQ(e[1].method, "meta");
  EXPECT_EQ(e[1].status, 1);
}

// --- acting as a human -------------------------------------------------------------------

TEST_F(SandboxTest, TeacherRemovingAnEnrolmentByHandIsSeenByTheNextRead) {
  MoodleId c = CreateCourse("C");
  MoodleId u = CreateUser("u");
  Enrol(c, u, 5);
  ASSERT_TRUE(sb_->SetEnrolmentStatus(c, u, "manual", 1));
  EXPECT_EQ(Ids(Call("core_enrol_get_enrolled_users", {{"courseid", std::to_string(c)},
                                                      {"options[0][name]", "onlysuspended"},
                                                      {"options[0][value]", "1"}})),
            (std::vector<long long>{u}));
  ASSERT_TRUE(sb_->RemoveEnrolment(c, u, "manual"));
  EXPECT_TRUE(EnrolmentsOf(c).empty());
  EXPECT_FALSE(sb_->RemoveEnrolment(c, u, "manual"));
}

TEST_F(SandboxTest, DeletedCourseDisappearsWithItsEnrolments) {
  MoodleId c = CreateCourse("C");
  MoodleId u = CreateUser("u");
  Enrol(c, u, 5);
  ASSERT_TRUE(sb_->DeleteCourse(c));
  EXPECT_TRUE(sb_->Courses().empty());
  EXPECT_TRUE(sb_->Enrolments().empty());
  EXPECT_TRUE(sb_->RoleAssignments().empty());
  EXPECT_EQ(Code(Enrol(c, u, 5)), "invalidparameter");
}

// --- the endpoint ---------------------------------------------------------------------------

TEST_F(SandboxTest, AuthenticationAndFunctionLookupErrorsMatchMoodle) {
  auto [s1, bad] = Raw("core_webservice_get_site_info", {}, "0123456789abcdef");
  EXPECT_EQ(s1, 200);
  EXPECT_EQ(json::parse(bad), json::parse(R"({"exception":"core\\exception\\moodle_exception","errorcode":"invalidtoken","message":"Invalid token - token not found"})"));
  auto [s2, empty] = Raw("core_webservice_get_site_info", {}, "");
  EXPECT_EQ(Code(json::parse(empty)), "invalidtoken");
  json unknown = Call("core_course_no_such_function");
  EXPECT_EQ(unknown["exception"], "dml_missing_record_exception");
  EXPECT_EQ(Code(unknown), "invalidrecordunknown");
  json outside = Call("core_course_delete_courses", {{"courseids[0]", "2"}});
  EXPECT_EQ(outside["exception"], "webservice_access_exception");
  EXPECT_EQ(Code(outside), "accessexception");
  EXPECT_EQ(Code(Call("core_user_get_users_by_field", {{"field", "email"}})), "invalidparameter");
}

TEST_F(SandboxTest, DisabledWebServicesAnswer403WithAnEmptyBody) {
  Options o;
  o.webservices_enabled = false;
  StartWith(o);
  auto [status, body] = Raw("core_webservice_get_site_info", {});
  EXPECT_EQ(status, 403);
  EXPECT_EQ(body, "");
}

TEST_F(SandboxTest, ParametersInTheQueryStringAreAccepted) {
  auto res = client_->Get(("/webservice/rest/server.php?wstoken=" + std::string(kToken) +
                           "&wsfunction=core_course_get_courses_by_field&moodlewsrestformat=json&field=id&value=1")
                              .c_str());
  ASSERT_TRUE(res);
  EXPECT_EQ(json::parse(res->body)["courses"][0]["id"], 1);
}

TEST_F(SandboxTest, JsonIsEncodedAsPhpDoes) {
  MoodleId c = CreateCourse("C/1", {{"courses[0][fullname]", "Ren\xC3\xA9" "e"}});
  (void)c;
  auto [status, body] = Raw("core_course_get_courses_by_field", {{"field", "shortname"}, {"value", "C/1"}});
  EXPECT_NE(body.find(R"("shortname":"C\/1")"), std::string::npos);
  EXPECT_NE(body.find(R"(Ren\u00e9e)"), std::string::npos);
}

TEST_F(SandboxTest, CallCountsCountEveryPostPerFunction) {
  Call("core_webservice_get_site_info");
  Call("core_webservice_get_site_info");
  Raw("core_webservice_get_site_info", {}, "wrong");
  Call("nope_function");
  auto counts = sb_->CallCounts();
  EXPECT_EQ(counts["core_webservice_get_site_info"], 3);
  EXPECT_EQ(counts["nope_function"], 1);
  sb_->ResetCallCounts();
  EXPECT_TRUE(sb_->CallCounts().empty());
}

TEST_F(SandboxTest, LatencyIsAddedToEveryCall) {
  Options o;
  o.latency_ms = 60;
  StartWith(o);
  auto t0 = std::chrono::steady_clock::now();
  Call("core_webservice_get_site_info");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(60));
}

TEST_F(SandboxTest, ConcurrentEnrolCallsAllApply) {
  MoodleId c = CreateCourse("C");
  Params users;
  for (int i = 0; i < 200; ++i) {
    std::string k = "users[" + std::to_string(i) + "]";
    users.insert(users.end(), {{k + "[username]", "p" + std::to_string(i)}, {k + "[auth]", "ldap"},
                               {k + "[firstname]", "P"}, {k + "[lastname]", std::to_string(i)},
                               {k + "[email]", "p" + std::to_string(i) + "@school.test"}});
  }
  json made = Call("core_user_create_users", users);
  ASSERT_EQ(made.size(), 200u);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      httplib::Client cli("127.0.0.1", sb_->port());
      Params p = {{"wstoken", kToken}, {"wsfunction", "enrol_manual_enrol_users"}};
      for (int i = 0; i < 50; ++i) {
        std::string k = "enrolments[" + std::to_string(i) + "]";
        p.insert(p.end(), {{k + "[roleid]", "5"}, {k + "[userid]", std::to_string(made[t * 50 + i]["id"].get<long long>())},
                           {k + "[courseid]", std::to_string(c)}});
      }
      auto res = cli.Post("/webservice/rest/server.php", Encode(p), "application/x-www-form-urlencoded");
      if (res && res->body == "null") ++ok;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 4);
  EXPECT_EQ(EnrolmentsOf(c).size(), 200u);
}

// --- fault injection -------------------------------------------------------------------------

TEST_F(SandboxTest, InjectedExceptionAppliesNothingAndSkipLetsCallsPass) {
  MoodleId c = CreateCourse("C");
  MoodleId a = CreateUser("a");
  MoodleId b = CreateUser("b");
  sb_->InjectFault({"enrol_manual_enrol_users", 1, 1, Sandbox::Fault::kException, "invalidparameter"});
  EXPECT_TRUE(Enrol(c, a, 5).is_null());  // skipped
  EXPECT_EQ(Code(Enrol(c, b, 5)), "invalidparameter");
  EXPECT_EQ(EnrolmentsOf(c).size(), 1u);
  EXPECT_TRUE(Enrol(c, b, 5).is_null());  // times = 1: over
  EXPECT_EQ(EnrolmentsOf(c).size(), 2u);
}

TEST_F(SandboxTest, MessageNotSentFaultAppliesTheCallThenAnswersTheError) {
  MoodleId c = CreateCourse("C");
  MoodleId u = CreateUser("u");
  sb_->InjectFault({"enrol_manual_enrol_users", 0, 1, Sandbox::Fault::kMessageNotSent});
  json r = Enrol(c, u, 5);
  EXPECT_EQ(r, json::parse(R"({"exception":"core\\exception\\moodle_exception","errorcode":"Message was not sent.","message":"error\/Message was not sent."})"));
  EXPECT_EQ(EnrolmentsOf(c).size(), 1u);
}

TEST_F(SandboxTest, Http500AndDroppedConnectionFaults) {
  MoodleId c = CreateCourse("C");
  MoodleId u = CreateUser("u");
  sb_->InjectFault({"enrol_manual_enrol_users", 0, 1, Sandbox::Fault::kHttp500});
  auto [status, body] = Raw("enrol_manual_enrol_users", {{"enrolments[0][roleid]", "5"},
                                                         {"enrolments[0][userid]", std::to_string(u)},
                                                         {"enrolments[0][courseid]", std::to_string(c)}});
  EXPECT_EQ(status, 500);
  EXPECT_TRUE(EnrolmentsOf(c).empty());
  Sandbox::Fault drop{"enrol_manual_enrol_users", 0, 1, Sandbox::Fault::kDropConnection};
  drop.apply = true;
  sb_->InjectFault(drop);
  auto [status2, body2] = Raw("enrol_manual_enrol_users", {{"enrolments[0][roleid]", "5"},
                                                           {"enrolments[0][userid]", std::to_string(u)},
                                                           {"enrolments[0][courseid]", std::to_string(c)}});
  EXPECT_NE(body2, "null");
  EXPECT_EQ(EnrolmentsOf(c).size(), 1u);  // applied, answer lost
}

TEST_F(SandboxTest, DelayFaultDelaysTheAnswer) {
  sb_->InjectFault({"core_webservice_get_site_info", 0, 1, Sandbox::Fault::kDelay, "", 150});
  auto t0 = std::chrono::steady_clock::now();
  json r = Call("core_webservice_get_site_info");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(150));
  EXPECT_EQ(r["userid"], 2);
}

TEST(SandboxStart, EmptyStateDirIsRejected) {
  Options o;
  auto s = Sandbox::Start(o);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace enrolsync::sandbox

namespace enrolsync::sandbox {
namespace {

// Moodle 5.1 returns course, category and group names through format_string
// (lib/classes/formatting.php): strip_tags, '<' '>' escaped, '&' escaped
// unless it already starts an entity, quotes untouched. The stored value and
// the create answer stay raw.
TEST_F(SandboxTest, CourseAndCategoryNamesComeBackAsFormatStringEscapesThem) {
  json cat = Call("core_course_create_categories", {{"categories[0][name]", "Art & Design > Year 7"}});
  ASSERT_TRUE(cat.is_array()) << cat.dump();
  EXPECT_EQ(cat[0]["name"], "Art &amp; Design &gt; Year 7");
  std::string catid = std::to_string(cat[0]["id"].get<long long>());
  json created = Call("core_course_create_courses", {{"courses[0][fullname]", "Design & Technology - 7/DT1"},
                                                     {"courses[0][shortname]", "O'Neil's \"R&amp;D\" a < b"},
                                                     {"courses[0][categoryid]", catid}});
  ASSERT_TRUE(created.is_array()) << created.dump();
  EXPECT_EQ(created[0]["shortname"], "O'Neil's \"R&amp;D\" a < b");
  json got = Call("core_course_get_courses_by_field",
                  {{"field", "id"}, {"value", std::to_string(created[0]["id"].get<long long>())}});
  ASSERT_EQ(got["courses"].size(), 1u) << got.dump();
  const json& c = got["courses"][0];
  EXPECT_EQ(c["fullname"], "Design &amp; Technology - 7/DT1");
  EXPECT_EQ(c["displayname"], "Design &amp; Technology - 7/DT1");
  EXPECT_EQ(c["shortname"], "O'Neil's \"R&amp;D\" a &lt; b");
  EXPECT_EQ(c["categoryname"], "Art &amp; Design &gt; Year 7");
  json cats = Call("core_course_get_categories", {{"criteria[0][key]", "id"}, {"criteria[0][value]", catid}});
  ASSERT_EQ(cats.size(), 1u) << cats.dump();
  EXPECT_EQ(cats[0]["name"], "Art &amp; Design &gt; Year 7");
  // Looking a course up by its raw shortname still works: the stored value is raw.
  json by_short = Call("core_course_get_courses_by_field",
                       {{"field", "shortname"}, {"value", "O'Neil's \"R&amp;D\" a < b"}});
  EXPECT_EQ(by_short["courses"].size(), 1u);
}

}  // namespace
}  // namespace enrolsync::sandbox
