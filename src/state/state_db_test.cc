#include "state/state_db.h"

#include <cstdint>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <sqlite3.h>

namespace enrolsync::state {
namespace {
namespace fs = std::filesystem;

class StateDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("enrolsync-state-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(StateDbTest, OwnershipSurvivesReopening) {
  {
    auto db = StateDb::Open(dir_.string());
    ASSERT_TRUE(db) << db.error().message;
    model::OwnedEnrolment e{10, 20, true, model::EnrolStatus::kSuspended, {3, 5}, "7/Ma2", "a@school.test"};
    ASSERT_TRUE((*db)->UpsertEnrolment(e));
    ASSERT_TRUE((*db)->UpsertEnrolment({11, 20, false, model::EnrolStatus::kActive, {4}, "7/Ma3", "a@school.test"}));
    ASSERT_TRUE((*db)->RecordCreatedCourse(10, "Maths - 7/Ma2", 1000));
  }
  auto db = StateDb::Open(dir_.string());
  ASSERT_TRUE(db);
  auto o = (*db)->LoadOwnership();
  ASSERT_TRUE(o);
  ASSERT_EQ(o->enrolments.size(), 2u);
  const auto& e = o->enrolments.at({10, 20});
  EXPECT_TRUE(e.owns_enrolment);
  EXPECT_EQ(e.status, model::EnrolStatus::kSuspended);
  EXPECT_EQ(e.roles, (std::set<model::MoodleId>{3, 5}));
  EXPECT_EQ(e.source_course, "7/Ma2");
  EXPECT_FALSE(o->enrolments.at({11, 20}).owns_enrolment);
  EXPECT_EQ(o->created_courses, (std::set<model::MoodleId>{10}));
}

TEST_F(StateDbTest, PendingIntentsSurviveReopeningUntilDropped) {
  std::vector<long long> ids;
  {
    auto db = StateDb::Open(dir_.string());
    ASSERT_TRUE(db);
    Intent a;
    a.action = "enrol";
    a.courseid = 10;
    a.userid = 20;
    a.roleid = 5;
    a.source_course = "7/Ma2";
    a.source_user = "a@school.test";
    Intent b = a;
    b.action = "role_assign";
    b.owns_enrolment = false;
    ASSERT_TRUE((*db)->Begin());
    auto r = (*db)->AddIntents({a, b});
    ASSERT_TRUE((*db)->Commit());
    ASSERT_TRUE(r);
    ids = *r;
  }
  auto db = StateDb::Open(dir_.string());
  ASSERT_TRUE(db);
  auto in = (*db)->LoadIntents();
  ASSERT_TRUE(in);
  ASSERT_EQ(in->size(), 2u);
  EXPECT_EQ((*in)[0].id, ids[0]);
  EXPECT_EQ((*in)[0].action, "enrol");
  EXPECT_EQ((*in)[0].source_user, "a@school.test");
  EXPECT_TRUE((*in)[0].owns_enrolment);
  EXPECT_FALSE((*in)[1].owns_enrolment);
  ASSERT_TRUE((*db)->DropIntents({ids[0]}));
  in = (*db)->LoadIntents();
  ASSERT_TRUE(in);
  ASSERT_EQ(in->size(), 1u);
  EXPECT_EQ((*in)[0].action, "role_assign");
}

TEST_F(StateDbTest, AnEmptyOrMissingLedgerAfterEarlierRunsIsRefusedWithHowToRestore) {
  {
    auto db = StateDb::Open(dir_.string());
    ASSERT_TRUE(db);
    ASSERT_TRUE((*db)->RecordCreatedCourse(10, "Maths - 7/Ma2", 1000));
    for (const char* stamp : {"20261201T020000Z", "20261202T020000Z", "20261203T020000Z", "20261204T020000Z"})
      ASSERT_TRUE((*db)->Backup(stamp, 3));
  }
  // Three copies are kept, the oldest dropped.
  EXPECT_FALSE(fs::exists(dir_ / "backups" / "state-20261201T020000Z.db"));
  EXPECT_TRUE(fs::exists(dir_ / "backups" / "state-20261204T020000Z.db"));
  // A 0-byte state.db (disk full, a stray `>`).
  fs::resize_file(dir_ / "state.db", 0);
  fs::remove(dir_ / "state.db-wal");
  fs::remove(dir_ / "state.db-shm");
  auto db = StateDb::Open(dir_.string());
  ASSERT_FALSE(db);
  EXPECT_NE(db.error().message.find("is empty"), std::string::npos) << db.error().message;
  EXPECT_NE(db.error().message.find("cp " + (dir_ / "backups" / "state-20261204T020000Z.db").string()),
            std::string::npos)
      << db.error().message;
  // Deleted altogether.
  fs::remove(dir_ / "state.db");
  db = StateDb::Open(dir_.string());
  ASSERT_FALSE(db);
  EXPECT_NE(db.error().message.find("is missing"), std::string::npos) << db.error().message;
  // The copy restores what was owned.
  fs::copy_file(dir_ / "backups" / "state-20261204T020000Z.db", dir_ / "state.db");
  db = StateDb::Open(dir_.string());
  ASSERT_TRUE(db) << db.error().message;
  auto o = (*db)->LoadOwnership();
  ASSERT_TRUE(o);
  EXPECT_EQ(o->created_courses, (std::set<model::MoodleId>{10}));
}

TEST_F(StateDbTest, AnEmptyLedgerWithNoEarlierRunIsAFirstRun) {
  fs::create_directories(dir_);
  { std::ofstream(dir_ / "state.db"); }  // 0 bytes, nothing else in state_dir
  auto db = StateDb::Open(dir_.string());
  ASSERT_TRUE(db) << db.error().message;
  auto o = (*db)->LoadOwnership();
  ASSERT_TRUE(o);
  EXPECT_TRUE(o->enrolments.empty());
}

TEST_F(StateDbTest, ManagedUsersRememberWhyWeSuspendedThem) {
  auto db = StateDb::Open(dir_.string());
  ASSERT_TRUE(db);
  ASSERT_TRUE((*db)->UpsertManagedUser({7, "jsmith", false, model::SuspendReason::kLeftDirectory}));
  ASSERT_TRUE((*db)->UpsertManagedUser({8, "ayoung", true, model::SuspendReason::kNone}));
  ASSERT_TRUE((*db)->DeleteManagedUser(8));
  auto o = (*db)->LoadOwnership();
  ASSERT_TRUE(o);
  ASSERT_EQ(o->users.size(), 1u);
  EXPECT_EQ(o->users.at(7).suspended_by_us, model::SuspendReason::kLeftDirectory);
  EXPECT_FALSE(o->users.at(7).created);
}

TEST_F(StateDbTest, UpsertReplacesRolesAndDeleteForgets) {
  auto db = StateDb::Open(dir_.string());
  ASSERT_TRUE(db);
  model::OwnedEnrolment e{1, 2, true, model::EnrolStatus::kActive, {3, 5}, "c", "u"};
  ASSERT_TRUE((*db)->UpsertEnrolment(e));
  e.roles = {4};
  ASSERT_TRUE((*db)->UpsertEnrolment(e));
  EXPECT_EQ((*db)->LoadOwnership()->enrolments.at({1, 2}).roles, (std::set<model::MoodleId>{4}));
  ASSERT_TRUE((*db)->DeleteEnrolment({1, 2}));
  EXPECT_TRUE((*db)->LoadOwnership()->enrolments.empty());
}

TEST_F(StateDbTest, VerificationTimesAndRunsAreRecorded) {
  auto db = StateDb::Open(dir_.string());
  ASSERT_TRUE(db);
  ASSERT_TRUE((*db)->MarkVerified({5, 6}, 100));
  ASSERT_TRUE((*db)->MarkVerified({6}, 200));
  auto v = (*db)->LastVerified();
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, (std::map<model::MoodleId, long long>{{5, 100}, {6, 200}}));
  auto id = (*db)->BeginRun("manual", "sync", 300);
  ASSERT_TRUE(id);
  ASSERT_TRUE((*db)->FinishRun(*id, 310, 0, "{\"ok\":true}"));
  auto runs = (*db)->RecentRuns(5);
  ASSERT_TRUE(runs);
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ((*runs)[0].exit_code, 0);
  EXPECT_EQ((*runs)[0].ended, 310);
  EXPECT_EQ((*runs)[0].summary_json, "{\"ok\":true}");
}

// Bytes of the database's pages that hold data (page_count - freelist).
std::uintmax_t PagesInUse(const std::string& path) {
  sqlite3* db = nullptr;
  std::uintmax_t out = 0;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    long long pages = 0, free = 0, size = 0;
    auto one = [&](const char* sql, long long* v) {
      sqlite3_stmt* s = nullptr;
      if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        *v = sqlite3_column_int64(s, 0);
      sqlite3_finalize(s);
    };
    one("PRAGMA page_count", &pages);
    one("PRAGMA freelist_count", &free);
    one("PRAGMA page_size", &size);
    out = static_cast<std::uintmax_t>((pages - free) * size);
  }
  sqlite3_close(db);
  return out;
}

// 100 runs, each with a report of 200 items: the file stays bounded, the
// newest keep_runs reports keep their items, every run keeps its summary.
TEST_F(StateDbTest, HistoryStaysBoundedOverAHundredRuns) {
  auto db = StateDb::Open(dir_.string());
  ASSERT_TRUE(db);
  std::string items;
  for (int i = 0; i < 200; ++i) items += std::string(i ? "," : "") + "{\"action\":\"enrol\",\"user\":\"pupil" +
                                          std::to_string(i) + "@school.test\",\"course\":\"10/Ma1\"}";
  auto report = [&](int n) {
    return "{\"summary\":{\"enrol\":" + std::to_string(n) + "},\"items\":[" + items + "],\"problems\":[{\"row\":1},{\"row\":2}],"
           "\"failures\":[],\"notes\":[\"x\"],\"warnings\":[\"w\"]}";
  };
  std::vector<std::uintmax_t> sizes;
  for (int n = 1; n <= 100; ++n) {
    auto id = (*db)->BeginRun("schedule", "sync", 1000 + n);
    ASSERT_TRUE(id);
    ASSERT_TRUE((*db)->FinishRun(*id, 1000 + n, 0, report(n), 30));
    if (n % 10 == 0) {
      sizes.push_back(PagesInUse((dir_ / "state.db").string()));
    }
  }
  auto runs = (*db)->RecentRuns(1000);
  ASSERT_TRUE(runs);
  ASSERT_EQ(runs->size(), 100u);
  int full = 0;
  for (const auto& r : *runs) {
    EXPECT_NE(r.summary_json.find("\"summary\":{\"enrol\":"), std::string::npos) << r.id;
    EXPECT_NE(r.summary_json.find("\"warnings\""), std::string::npos) << r.id;
    if (r.summary_json.find("\"items\"") != std::string::npos) {
      ++full;
      EXPECT_GT(r.id, 70) << "run " << r.id << " kept its items";
    } else {
      EXPECT_NE(r.summary_json.find("\"problems_count\":2"), std::string::npos) << r.summary_json;
    }
  }
  EXPECT_EQ(full, 30);
  // Bounded: runs 51-100 grew the data by a small fraction of the 50 full
  // reports they stored (their compacted summaries and page slack); without
  // the pruning it is all of it.
  const std::uintmax_t stored = 50 * report(0).size();
  EXPECT_LT(sizes.back() - sizes[4], stored / 5) << sizes[4] << " -> " << sizes.back() << " bytes; 50 reports are "
                                                 << stored;
}

// The last sync's refused writes are replaced as a whole, and survive
// reopening; statements are reused across calls (the same Upsert many
// times in one transaction and outside one).
TEST_F(StateDbTest, FailedItemsAreReplacedAsAWholeAndReusedStatementsStayCorrect) {
  {
    auto db = StateDb::Open(dir_.string());
    ASSERT_TRUE(db) << db.error().message;
    ASSERT_TRUE((*db)->ReplaceFailedItems({{"enrol_manual_enrol_users", 5, 7}, {"core_role_assign_roles", 5, 8}}));
    ASSERT_TRUE((*db)->ReplaceFailedItems({{"enrol_manual_enrol_users", 6, 9}}));
    ASSERT_TRUE((*db)->Begin());
    for (int u = 1; u <= 300; ++u)
      ASSERT_TRUE((*db)->UpsertEnrolment({1, u, true, model::EnrolStatus::kActive, {5, u % 2 ? 3 : 5}, "s", "u"}));
    ASSERT_TRUE((*db)->Commit());
    for (int u = 1; u <= 300; u += 2) ASSERT_TRUE((*db)->DeleteEnrolment({1, u}));
    std::vector<model::MoodleId> many;
    for (int c = 1; c <= 500; ++c) many.push_back(c);
    ASSERT_TRUE((*db)->MarkVerified(many, 77));
  }
  auto db = StateDb::Open(dir_.string());
  ASSERT_TRUE(db);
  auto failed = (*db)->LoadFailedItems();
  ASSERT_TRUE(failed) << failed.error().message;
  ASSERT_EQ(failed->size(), 1u);
  EXPECT_EQ((*failed)[0].function, "enrol_manual_enrol_users");
  EXPECT_EQ((*failed)[0].courseid, 6);
  EXPECT_EQ((*failed)[0].userid, 9);
  auto o = (*db)->LoadOwnership();
  ASSERT_TRUE(o);
  EXPECT_EQ(o->enrolments.size(), 150u);
  EXPECT_EQ(o->enrolments.at({1, 2}).roles, (std::set<model::MoodleId>{5}));
  auto v = (*db)->LastVerified();
  ASSERT_TRUE(v);
  EXPECT_EQ(v->size(), 500u);
  EXPECT_EQ(v->at(250), 77);
}

TEST_F(StateDbTest, SecondRunLockIsRefused) {
  auto first = RunLock::Acquire(dir_.string());
  ASSERT_TRUE(first) << first.error().message;
  auto second = RunLock::Acquire(dir_.string());
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find("another enrolsync run holds"), std::string::npos);
  first->reset();
  EXPECT_TRUE(RunLock::Acquire(dir_.string()));
}

TEST_F(StateDbTest, UncreatableStateDirIsAClearError) {
  auto db = StateDb::Open("/proc/enrolsync-cannot-exist/state");
  ASSERT_FALSE(db);
  EXPECT_NE(db.error().message.find("/proc/enrolsync-cannot-exist/state"), std::string::npos);
}

}  // namespace
}  // namespace enrolsync::state
