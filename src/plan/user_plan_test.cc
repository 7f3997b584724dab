// Rules of the user sync planner.
#include "plan/user_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace enrolsync::plan {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using model::SuspendReason;

class UserPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    policy.mapped_fields = {"firstname", "lastname", "email", "idnumber"};
    policy.update_fields = {"firstname", "lastname", "email", "idnumber"};
  }
  model::Person& Person(const std::string& username, const std::string& first, const std::string& last,
                        bool disabled = false) {
    model::Person p;
    p.username = username;
    p.fields = {{"firstname", first}, {"lastname", last}, {"email", username + "@school.test"}, {"idnumber", "N" + username}};
    p.disabled = disabled;
    p.origin = "uid=" + username + ",ou=Students,dc=school,dc=test";
    people.push_back(p);
    return people.back();
  }
  model::User& MoodleUser(const std::string& username, const std::string& first, const std::string& last,
                          const std::string& auth = "ldap", bool suspended = false) {
    model::User u;
    u.id = next_id_++;
    u.username = username;
    u.email = username + "@school.test";
    u.idnumber = "N" + username;
    u.auth = auth;
    u.suspended = suspended;
    u.profile = {{"firstname", first}, {"lastname", last}, {"email", u.email}, {"idnumber", u.idnumber}};
    users.push_back(u);
    return users.back();
  }
  void Manage(const model::User& u, SuspendReason why = SuspendReason::kNone, bool created = true) {
    managed[u.id] = model::ManagedUser{u.id, u.username, created, why};
  }
  UserPlan Build() { return BuildUserPlan(people, users, managed, policy, "ldap://127.0.0.1"); }
  static std::vector<std::string> Lines(const UserPlan& p) {
    std::vector<std::string> out;
    for (const auto& i : p.items) out.push_back(UserPlanLine(i));
    return out;
  }

  std::vector<model::Person> people;
  std::vector<model::User> users;
  std::map<MoodleId, model::ManagedUser> managed;
  UserPolicy policy;
  MoodleId next_id_ = 100;
};

TEST_F(UserPlanTest, NewDirectoryUserIsCreatedWithMappedFields) {
  Person("25younge", "Emily", "Young");
  auto p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("+ user 25younge (Emily Young, 25younge@school.test)"));
  EXPECT_EQ(p.items[0].fields.at("idnumber"), "N25younge");
  EXPECT_EQ(p.summary.create, 1);
}

TEST_F(UserPlanTest, ExistingUserWithConfiguredAuthIsAdoptedNotDuplicated) {
  Person("jsmith", "John", "Smith");
  MoodleUser("jsmith", "John", "Smith");
  auto p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  ASSERT_EQ(p.adoptions.size(), 1u);
  EXPECT_EQ(p.adoptions[0].username, "jsmith");
}

TEST_F(UserPlanTest, UserWithAnotherAuthIsNeverTouched) {
  Person("admin", "New", "Name");
  MoodleUser("admin", "Admin", "User", "manual");
  auto p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  EXPECT_THAT(p.adoptions, IsEmpty());
  ASSERT_EQ(p.problems.size(), 1u);
  EXPECT_THAT(p.problems[0].reason, HasSubstr("has auth 'manual', not 'ldap': left alone"));
}

TEST_F(UserPlanTest, ChangedSurnameAndEmailAreUpdated) {
  Person("jsmith", "John", "Smyth").fields["email"] = "john.smyth@school.test";
  Manage(MoodleUser("jsmith", "John", "Smith"));
  auto p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("~ user jsmith lastname: Smith -> Smyth; email: jsmith@school.test -> john.smyth@school.test"));
  EXPECT_EQ(p.summary.update, 1);
}

// auth_ldap's update writes '' for a mapped attribute the entry no longer has.
TEST_F(UserPlanTest, AttributeGoneFromTheDirectoryClearsTheField) {
  policy.mapped_fields.push_back("department");
  policy.update_fields.insert("department");
  Person("jsmith", "John", "Smith").fields.erase("idnumber");
  auto& u = MoodleUser("jsmith", "John", "Smith");
  u.profile["department"] = "Maths";
  Manage(u);
  auto p = Build();
  ASSERT_THAT(Lines(p), ElementsAre("~ user jsmith idnumber: Njsmith -> ; department: Maths -> "));
  EXPECT_EQ(p.items[0].fields.at("idnumber"), "");
  EXPECT_EQ(p.items[0].fields.at("department"), "");
  // Not in `update_fields`: left as it is.
  policy.update_fields.erase("department");
  EXPECT_THAT(Lines(Build()), ElementsAre("~ user jsmith idnumber: Njsmith -> "));
}

TEST_F(UserPlanTest, EmailGoneFromTheSourceIsKeptAndReported) {
  Person("jsmith", "John", "Smyth").fields.erase("email");
  Person("empty", "Em", "Pty").fields["email"] = " ";
  Manage(MoodleUser("jsmith", "John", "Smith"));
  Manage(MoodleUser("empty", "Em", "Pty"));
  auto p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("~ user jsmith lastname: Smith -> Smyth"));
  ASSERT_EQ(p.problems.size(), 2u);
  EXPECT_THAT(p.problems[0].reason, HasSubstr("'jsmith' has no email in the source: the Moodle email "
                                              "'jsmith@school.test' is kept"));
  EXPECT_THAT(p.problems[1].reason, HasSubstr("'empty' has no email"));
}

TEST_F(UserPlanTest, FieldsNotConfiguredForUpdateAreLeftAsTheyAre) {
  policy.update_fields = {"lastname"};
  Person("jsmith", "Johnny", "Smith");
  Manage(MoodleUser("jsmith", "John", "Smith"));
  EXPECT_THAT(Build().items, IsEmpty());
}

TEST_F(UserPlanTest, UserRemovedFromDirectoryIsSuspended) {
  auto& u = MoodleUser("leaver", "Lee", "Ver");
  Manage(u);
  auto p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("- suspend user leaver (no longer in the directory)"));
  EXPECT_EQ(p.items[0].reason, SuspendReason::kLeftDirectory);
}

TEST_F(UserPlanTest, RemovedUserActionDeleteDeletesAndKeepKeeps) {
  Manage(MoodleUser("leaver", "Lee", "Ver"));
  policy.removed_user_action = RemovedUserAction::kDelete;
  EXPECT_THAT(Lines(Build()), ElementsAre("- delete user leaver"));
  policy.removed_user_action = RemovedUserAction::kKeep;
  EXPECT_THAT(Build().items, IsEmpty());
}

// auth_ldap suspends every auth=ldap user missing from the directory, not
// only those enrolsync has seen before.
TEST_F(UserPlanTest, UnmanagedLdapUserMissingFromDirectoryIsSuspendedLikeAuthLdap) {
  Person("present", "Pre", "Sent");
  MoodleUser("oldaccount", "Old", "Account");
  MoodleUser("oldsuspended", "Old", "Suspended", "ldap", /*suspended=*/true);
  MoodleUser("teacher", "Manual", "Teacher", "manual");
  auto p = Build();
  ASSERT_THAT(Lines(p), ElementsAre("+ user present (Pre Sent, present@school.test)",
                                    "- suspend user oldaccount (no longer in the directory)"));
  EXPECT_EQ(p.items[1].reason, SuspendReason::kLeftDirectory);
  EXPECT_EQ(p.managed_users, 2) << "the guard's base counts every ldap user";
  policy.removed_user_action = RemovedUserAction::kDelete;
  EXPECT_THAT(Lines(Build()), ElementsAre("+ user present (Pre Sent, present@school.test)", "- delete user oldaccount",
                                          "- delete user oldsuspended"));
  policy.removed_user_action = RemovedUserAction::kKeep;
  EXPECT_EQ(Build().summary.Removals(), 0);
}

TEST_F(UserPlanTest, UnmanagedLeaversObeyTheGuardTheBlockAndTheProtection) {
  policy.max_removals_percent = 10;
  for (int i = 0; i < 20; ++i) {
    auto& u = MoodleUser("u" + std::to_string(i), "U", std::to_string(i));
    if (i >= 2) Person(u.username, "U", std::to_string(i));
  }
  auto p = Build();
  EXPECT_EQ(p.summary.suspend, 2);
  EXPECT_FALSE(p.guard_tripped) << "2 of 20";
  people.erase(people.begin(), people.begin() + 1);
  EXPECT_TRUE(Build().guard_tripped) << "3 of 20";
  policy.block_removals = {"the user source returned no users"};
  p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  EXPECT_EQ(p.removals_withheld, 3);
  policy.block_removals.clear();
  policy.protected_users = {users[0].id, users[1].id};
  p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("- suspend user u2 (no longer in the directory)"));
  EXPECT_THAT(p.notes, ElementsAre(HasSubstr("u0 is protected"), HasSubstr("u1 is protected")));
}

// With any other auth (manual: an MIS user table) the accounts of that auth
// include the guest, the admins and accounts made by hand: only enrolsync's
// own users are ever suspended.
TEST_F(UserPlanTest, WithManualAuthOnlyManagedUsersAreSuspended) {
  policy.auth = "manual";
  MoodleUser("guest", "Guest", "User", "manual");
  MoodleUser("admin", "Admin", "User", "manual");
  MoodleUser("examiner", "Ex", "Aminer", "manual");
  Manage(MoodleUser("leaver", "Lee", "Ver", "manual"));
  Person("present", "Pre", "Sent");
  for (auto action : {RemovedUserAction::kSuspend, RemovedUserAction::kDelete}) {
    policy.removed_user_action = action;
    auto p = Build();
    ASSERT_EQ(p.summary.Removals(), 1);
    EXPECT_EQ(p.items.back().username, "leaver");
    EXPECT_EQ(p.managed_users, 1);
  }
}

TEST_F(UserPlanTest, TheGuestUserIsNeverTouched) {
  auto& guest = MoodleUser("guest", "Guest", "User", "ldap");
  Manage(guest);  // even if it somehow were managed
  Person("guest", "Changed", "Name", /*disabled=*/true);
  auto p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  EXPECT_THAT(p.adoptions, IsEmpty());
  EXPECT_THAT(p.problems[0].reason, HasSubstr("is Moodle's guest user"));
  people.clear();
  Person("other", "Ot", "Her");
  p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("+ user other (Ot Her, other@school.test)"));
  EXPECT_EQ(p.managed_users, 0);
}

TEST_F(UserPlanTest, UserBackInDirectoryIsRevivedWhenWeSuspendedThem) {
  Person("back", "Ba", "Ck");
  Manage(MoodleUser("back", "Ba", "Ck", "ldap", /*suspended=*/true), SuspendReason::kLeftDirectory);
  EXPECT_THAT(Lines(Build()), ElementsAre("+ revive user back"));
}

TEST_F(UserPlanTest, AdminSuspendedUserStaysSuspended) {
  Person("naughty", "Nau", "Ghty");
  Manage(MoodleUser("naughty", "Nau", "Ghty", "ldap", /*suspended=*/true), SuspendReason::kNone);
  auto p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  EXPECT_THAT(p.notes, ElementsAre(HasSubstr("stays suspended")));
}

// auth_ldap (removeuser = suspend) revives suspended ldap users found in the
// directory; enrolsync does so for users it did not manage yet.
TEST_F(UserPlanTest, SuspendedUserAdoptedFromAuthLdapIsRevived) {
  Person("returner", "Re", "Turner");
  MoodleUser("returner", "Re", "Turner", "ldap", /*suspended=*/true);
  auto p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("+ revive user returner"));
  ASSERT_EQ(p.adoptions.size(), 1u);
  EXPECT_EQ(p.adoptions[0].reason, SuspendReason::kLeftDirectory) << "recorded: revived later if this run fails";
  EXPECT_EQ(p.summary.revive, 1);
  // auth_ldap revives nobody with removeuser = keep or delete.
  for (auto action : {RemovedUserAction::kKeep, RemovedUserAction::kDelete}) {
    policy.removed_user_action = action;
    p = Build();
    EXPECT_THAT(p.items, IsEmpty());
    EXPECT_THAT(p.notes, ElementsAre(HasSubstr("stays suspended")));
    EXPECT_EQ(p.adoptions[0].reason, SuspendReason::kNone);
  }
}

TEST_F(UserPlanTest, SuspendedUserOfAnotherAuthIsNotRevived) {
  policy.auth = "manual";
  Person("returner", "Re", "Turner");
  MoodleUser("returner", "Re", "Turner", "manual", /*suspended=*/true);
  auto p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  EXPECT_THAT(p.notes, ElementsAre(HasSubstr("stays suspended")));
}

TEST_F(UserPlanTest, SuspendedAdoptedUserDisabledInTheDirectoryIsRevivedOnlyWhenEnabled) {
  Person("adu", "A", "D", /*disabled=*/true);
  auto& u = MoodleUser("adu", "A", "D", "ldap", /*suspended=*/true);
  auto p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  ASSERT_EQ(p.adoptions.size(), 1u);
  EXPECT_EQ(p.adoptions[0].reason, SuspendReason::kDisabledInDirectory) << "recorded as the directory's suspension";
  Manage(u, p.adoptions[0].reason, /*created=*/false);
  people[0].disabled = false;
  EXPECT_THAT(Lines(Build()), ElementsAre("+ revive user adu"));
}

TEST_F(UserPlanTest, SuspendedProtectedUserIsNotRevived) {
  Person("itadmin", "It", "Admin");
  auto& u = MoodleUser("itadmin", "It", "Admin", "ldap", /*suspended=*/true);
  policy.protected_users = {u.id};
  EXPECT_THAT(Build().items, IsEmpty());
}

TEST_F(UserPlanTest, DisabledDirectoryAccountIsSuspendedAndRevivedWhenEnabled) {
  Person("adu", "A", "D", /*disabled=*/true);
  auto& u = MoodleUser("adu", "A", "D");
  Manage(u);
  auto p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("- suspend user adu (disabled in the directory)"));
  EXPECT_EQ(p.items[0].reason, SuspendReason::kDisabledInDirectory);
  people[0].disabled = false;
  users[0].suspended = true;
  managed[u.id].suspended_by_us = SuspendReason::kDisabledInDirectory;
  EXPECT_THAT(Lines(Build()), ElementsAre("+ revive user adu"));
}

TEST_F(UserPlanTest, DisabledAccountMissingFromMoodleIsCreatedSuspended) {
  Person("never", "Ne", "Ver", /*disabled=*/true);
  auto p = Build();
  ASSERT_THAT(Lines(p), ElementsAre("+ user never (Ne Ver, never@school.test) suspended: disabled in the directory"));
  EXPECT_EQ(p.items[0].reason, SuspendReason::kDisabledInDirectory);
  EXPECT_EQ(p.summary.create, 1);
  EXPECT_EQ(p.summary.Removals(), 0) << "creating suspended removes nobody";
}

TEST_F(UserPlanTest, DisabledMisRowIsNotCreatedWithManualAuth) {
  policy.auth = "manual";
  Person("leftschool", "Le", "Ft", /*disabled=*/true);
  auto p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  EXPECT_THAT(p.notes, ElementsAre(HasSubstr("not creating leftschool")));
}

TEST_F(UserPlanTest, ProtectedUsersAreNeverSuspendedOrDeleted) {
  auto& u = MoodleUser("siteadmin", "Site", "Admin");
  Manage(u);
  policy.protected_users = {u.id};
  policy.removed_user_action = RemovedUserAction::kDelete;
  auto p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  EXPECT_THAT(p.notes, ElementsAre(HasSubstr("protected")));
}

TEST_F(UserPlanTest, ProtectedUsersInTheDirectoryAreNotAdoptedOrChanged) {
  policy.auth = "manual";
  auto& admin = MoodleUser("admin", "Admin", "User", "manual");
  Person("admin", "Mis", "Name", /*disabled=*/true);
  policy.protected_users = {admin.id};
  auto p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  EXPECT_THAT(p.adoptions, IsEmpty());
  EXPECT_THAT(p.notes, ElementsAre(HasSubstr("admin is protected")));
}

TEST_F(UserPlanTest, BlockedRemovalsAreWithheldButCreatesProceed) {
  policy.block_removals = {"context ou=Staff failed"};
  Manage(MoodleUser("leaver", "Lee", "Ver"));
  Person("newbie", "New", "Bie");
  auto p = Build();
  EXPECT_THAT(Lines(p), ElementsAre("+ user newbie (New Bie, newbie@school.test)"));
  EXPECT_EQ(p.removals_withheld, 1);
}

TEST_F(UserPlanTest, UserRemovalsOverTheLimitTripTheGuard) {
  policy.max_removals_percent = 10;
  for (int i = 0; i < 20; ++i) {
    auto& u = MoodleUser("u" + std::to_string(i), "U", std::to_string(i));
    Manage(u);
    if (i >= 3) Person(u.username, "U", std::to_string(i));
  }
  auto p = Build();
  EXPECT_EQ(p.managed_users, 20);
  EXPECT_EQ(p.summary.suspend, 3);
  EXPECT_TRUE(p.guard_tripped);
  policy.allow_removals = 3;
  EXPECT_FALSE(Build().guard_tripped);
}

TEST_F(UserPlanTest, EmailUsedByAnotherAccountPreventsCreate) {
  MoodleUser("someone", "Some", "One", "manual").email = "Clash@school.test";
  Person("clash", "Cl", "Ash").fields["email"] = "clash@school.test";
  auto p = Build();
  EXPECT_THAT(p.items, IsEmpty());
  EXPECT_THAT(p.problems[0].reason, HasSubstr("already used by Moodle user 'someone'"));
}

TEST_F(UserPlanTest, DuplicateUsernameInTheDirectoryIsReported) {
  Person("twin", "T", "One");
  Person("twin", "T", "Two");
  auto p = Build();
  EXPECT_EQ(p.summary.create, 1);
  EXPECT_THAT(p.problems[0].reason, HasSubstr("appears twice"));
}

TEST_F(UserPlanTest, TraceLinesMatchAuthLdap) {
  UserItem i;
  i.username = "jsmith";
  i.userid = 823;
  i.action = UserAction::kUpdate;
  EXPECT_EQ(UserTraceLine(i), "Updating user jsmith id 823");
  i.action = UserAction::kCreate;
  EXPECT_EQ(UserTraceLine(i), "Inserted user jsmith id 823");
  i.action = UserAction::kSuspend;
  EXPECT_EQ(UserTraceLine(i), "Suspended user jsmith id 823");
  i.action = UserAction::kRevive;
  EXPECT_EQ(UserTraceLine(i), "Revived user jsmith id 823");
  i.action = UserAction::kDelete;
  EXPECT_EQ(UserTraceLine(i), "Deleted user jsmith id 823");
}

}  // namespace
}  // namespace enrolsync::plan
