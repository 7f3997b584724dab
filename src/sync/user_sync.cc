#include "sync/user_sync.h"

#include <map>
#include <set>

#include "sources/directory.h"
#include "sources/source.h"
#include "sources/username.h"
#include "util/moodle_values.h"
#include "util/secrets.h"
#include "util/strings.h"

namespace enrolsync::sync {

Result<std::vector<model::Person>> ReadPeople(const config::Config& cfg, std::map<std::string, int>* counts) {
  const auto& u = cfg.users;
  std::vector<model::Person> people;
  if (u.source == "ldap") {
    auto read = sources::ReadDirectory(u.ldap);
    if (!read) return Fail(read.error());
    if (counts) *counts = read->context_counts;
    for (auto& d : read->users) {
      model::Person p;
      p.username = d.username;
      p.fields = std::move(d.fields);
      p.disabled = d.disabled;
      p.origin = d.dn;
      people.push_back(std::move(p));
    }
    return people;
  }
  auto src = sources::OpenSource(cfg.source);
  if (!src) return Fail(src.error());
  std::vector<std::string> cols = {u.username_column};
  for (const auto& [field, col] : u.map) cols.push_back(col);
  if (!u.disabled_column.empty()) cols.push_back(u.disabled_column);
  auto table = (*src)->ReadTable(u.table, cols);
  if (!table) return Fail(table.error().Wrap("[users] table '" + u.table + "'"));
  if (counts) (*counts)[u.table] = static_cast<int>(table->rows.size());
  for (std::size_t i = 0; i < table->rows.size(); ++i) {
    const auto& r = table->rows[i];
    model::Person p;
    p.username = sources::MoodleUsername(r[0].value_or(""));  // as the LDAP source does
    for (std::size_t k = 0; k < u.map.size(); ++k) p.fields[u.map[k].first] = r[k + 1].value_or("");
    if (!u.disabled_column.empty()) {
      std::string d = Trim(r.back().value_or(""));
      p.disabled = !d.empty() && d != "0" && ToLower(d) != "false";
    }
    p.origin = table->name + " row " + std::to_string(table->row_numbers[i]);
    people.push_back(std::move(p));
  }
  return people;
}

namespace {

class UserSync {
 public:
  UserSync(const config::Config& cfg, moodle::Client& client, state::StateDb& db, model::Ownership& owned,
           const UserSyncOptions& opt)
      : cfg_(cfg), client_(client), db_(db), owned_(owned), opt_(opt) {}

  UserSyncOutcome Run() {
    plan::UserPolicy policy = cfg_.users.policy;
    policy.allow_removals = opt_.allow_removals;
    policy.protected_users = opt_.protected_users;
    auto people = ReadPeople(cfg_, &out_.context_counts);
    if (!people) {
      out_.read_error = Redact(people.error().message);
      return std::move(out_);
    }
    out_.read_ok = true;
    out_.people = people->size();
    if (people->empty()) policy.block_removals.push_back("the user source returned no users");
    std::vector<plan::Problem> bad;
    std::set<std::string> unusable = CheckValues(*people, &bad);

    const bool from_mirror = opt_.mirror && !opt_.full_read;
    auto users = from_mirror ? MirrorUsers(*people) : MoodleUsers(*people, policy.auth);
    if (!users) {
      out_.read_ok = false;
      out_.read_error = Redact(users.error().message);
      return std::move(out_);
    }
    if (opt_.mirror && opt_.full_read) opt_.mirror->ReplaceUsers(*users);
    std::string source = cfg_.users.source == "ldap" ? cfg_.users.ldap.url : cfg_.users.table;
    out_.plan = plan::BuildUserPlan(*people, *users, owned_.users, policy, source);
    if (from_mirror) {
      // Every write rests on a fresh read: the users the plan changes that
      // were not read in this run are read now, and the plan made again.
      std::vector<model::MoodleId> stale;
      for (const auto& item : out_.plan.items)
        if (item.userid > 0 && !opt_.mirror->ReadThisRun(item.userid)) stale.push_back(item.userid);
      for (const auto& item : out_.plan.adoptions)
        if (item.userid > 0 && !opt_.mirror->ReadThisRun(item.userid)) stale.push_back(item.userid);
      if (!stale.empty()) {
        auto gone = opt_.mirror->RefreshUsers(stale);
        if (!gone) {
          out_.read_ok = false;
          out_.read_error = Redact(gone.error().message);
          return std::move(out_);
        }
        out_.plan = plan::BuildUserPlan(*people, opt_.mirror->Users(), owned_.users, policy, source);
      }
    }
    SkipUnusable(unusable);
    out_.plan.problems.insert(out_.plan.problems.begin(), bad.begin(), bad.end());
    if (!opt_.apply || out_.plan.guard_tripped) return std::move(out_);
    Apply();
    out_.applied = true;
    return std::move(out_);
  }

 private:
  // Values Moodle would refuse (core_user_create_users and _update_users
  // fail the whole call for one): an email is trimmed, and a person with an
  // email PARAM_EMAIL refuses or a value longer than Moodle's column is a
  // problem. Such a person is neither created nor updated, and, still being
  // in the source, never suspended or deleted for it.
  std::set<std::string> CheckValues(std::vector<model::Person>& people, std::vector<plan::Problem>* problems) {
    std::map<std::string, std::string> columns;  // Moodle field -> column or attribute
    for (const auto& [field, col] : cfg_.users.map) columns[field] = col;
    for (const auto& [field, col] : cfg_.users.ldap.map) columns.try_emplace(field, col);
    static const std::map<std::string, std::size_t> kMax = {
        {"email", kUserEmailMax},     {"idnumber", kUserIdnumberMax}, {"firstname", kUserNameMax},
        {"lastname", kUserNameMax}};
    std::set<std::string> unusable;
    for (auto& p : people) {
      auto problem = [&](const std::string& field, const std::string& value, const std::string& why) {
        auto c = columns.find(field);
        const std::string column = c == columns.end() ? field : c->second;
        problems->push_back(plan::Problem{
            "", 0, {{"username", ShownValue(p.username)}, {column, ShownValue(value)}},
            ShownValue(p.origin) + ": column '" + column + "' (" + field + ") = '" + ShownValue(value) + "': " + why +
                "; this person is not created or updated until it is fixed"});
        unusable.insert(p.username);
      };
      if (Utf8Length(p.username) > kUserUsernameMax) {
        problem("username", p.username,
                "longer than Moodle's " + std::to_string(kUserUsernameMax) + " characters");
        continue;
      }
      for (auto& [field, value] : p.fields) {
        if (field == "email") value = Trim(value);
        auto max = kMax.find(field);
        std::size_t n = Utf8Length(value);
        if (max != kMax.end() && n > max->second) {
          problem(field, value,
                  std::to_string(n) + " characters, longer than Moodle's " + std::to_string(max->second));
        } else if (field == "email" && !value.empty() && !IsMoodleEmail(value)) {
          problem(field, value, "not an email address Moodle accepts (PARAM_EMAIL)");
        }
      }
    }
    return unusable;
  }

  void SkipUnusable(const std::set<std::string>& unusable) {
    if (unusable.empty()) return;
    auto& items = out_.plan.items;
    std::vector<plan::UserItem> kept;
    for (auto& item : items) {
      bool writes_values = item.action == plan::UserAction::kCreate || item.action == plan::UserAction::kUpdate;
      if (writes_values && unusable.count(item.username)) {
        --(item.action == plan::UserAction::kCreate ? out_.plan.summary.create : out_.plan.summary.update);
        continue;
      }
      kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }

  // Every user with our auth, plus anyone whose username or email a person
  // claims (to find accounts with another auth, and email clashes).
  Result<std::vector<model::User>> MoodleUsers(const std::vector<model::Person>& people, const std::string& auth) {
    auto mine = client_.GetUsersByAuth(auth);
    if (!mine) return Fail(mine.error());
    std::vector<std::string> usernames, emails;
    // Only values Moodle's lookup accepts: one it refuses fails the call.
    for (const auto& p : people) {
      // (Characters beyond ASCII are left to Moodle: extendedusernamechars.)
      std::string ascii;
      for (char c : p.username)
        if (static_cast<unsigned char>(c) < 0x80) ascii += c;
      if (!p.username.empty() && CleanMoodleUsername(ascii) == ascii && Utf8Length(p.username) <= kUserUsernameMax)
        usernames.push_back(p.username);
      if (auto e = p.fields.find("email");
          e != p.fields.end() && IsMoodleEmail(e->second) && e->second.size() <= kUserEmailMax) {
        emails.push_back(e->second);
        emails.push_back(ToLower(e->second));
      }
    }
    std::map<model::MoodleId, model::User> all;
    for (auto& u : *mine) all[u.id] = std::move(u);
    for (const auto& [field, values] : {std::make_pair(std::string("username"), usernames),
                                        std::make_pair(std::string("email"), emails)}) {
      if (values.empty()) continue;
      auto found = client_.GetUsersByField(field, values);
      if (!found) return Fail(found.error());
      for (auto& u : *found) all.try_emplace(u.id, std::move(u));
    }
    std::vector<model::User> out;
    for (auto& [id, u] : all) out.push_back(std::move(u));
    return out;
  }

  // The mirror's users, after looking up the people it does not know (by
  // username and by email, in the forms Moodle's lookup accepts). Values
  // Moodle had no user for are not asked again until they are due
  // (MoodleMirror::MissingIsFresh): a user made since then is found by the
  // run's scan for new ids.
  Result<std::vector<model::User>> MirrorUsers(const std::vector<model::Person>& people) {
    MoodleMirror& mirror = *opt_.mirror;
    std::set<std::string> usernames_known, emails_known;
    for (const auto& [_, u] : mirror.data().users) {
      usernames_known.insert(u.username);
      if (!u.email.empty()) emails_known.insert(ToLower(u.email));
    }
    std::vector<std::string> usernames, emails;
    for (const auto& p : people) {
      std::string ascii;
      for (char c : p.username)
        if (static_cast<unsigned char>(c) < 0x80) ascii += c;
      if (!p.username.empty() && !usernames_known.count(p.username) && CleanMoodleUsername(ascii) == ascii &&
          Utf8Length(p.username) <= kUserUsernameMax && !mirror.MissingIsFresh("username:" + p.username, opt_.missing_max_age))
        usernames.push_back(p.username);
      if (auto e = p.fields.find("email"); e != p.fields.end() && IsMoodleEmail(e->second) &&
                                            e->second.size() <= kUserEmailMax && !emails_known.count(ToLower(e->second)) &&
                                            !mirror.MissingIsFresh("email:" + ToLower(e->second), opt_.missing_max_age)) {
        emails.push_back(e->second);
        emails.push_back(ToLower(e->second));
      }
    }
    for (const auto& [field, values] : {std::make_pair(std::string("username"), usernames),
                                        std::make_pair(std::string("email"), emails)}) {
      if (values.empty()) continue;
      auto found = client_.GetUsersByField(field, values);
      if (!found) return Fail(found.error());
      mirror.Saw(*found);
      std::set<std::string> hit;
      for (const auto& u : *found) hit.insert(field == "email" ? ToLower(u.email) : u.username);
      std::vector<std::string> missing, present;
      for (const auto& v : values) {
        const std::string key = field == "email" ? ToLower(v) : v;
        (hit.count(key) ? present : missing).push_back(field + ":" + key);
      }
      mirror.Missing(missing);
      mirror.Found(present);
    }
    return mirror.Users();
  }

  // What enrolsync just wrote, recorded in the mirror without a read.
  void Mirror(const plan::UserItem& item, bool suspended_now) {
    if (!opt_.mirror || item.userid <= 0) return;
    model::User u;
    if (auto it = opt_.mirror->data().users.find(item.userid); it != opt_.mirror->data().users.end()) u = it->second;
    u.id = item.userid;
    u.username = item.username;
    if (item.action == plan::UserAction::kCreate) u.auth = cfg_.users.policy.auth;
    if (item.action == plan::UserAction::kCreate || item.action == plan::UserAction::kUpdate) {
      for (const auto& [field, value] : item.fields) {
        if (field == "createpassword") continue;
        u.profile[field] = value;
        if (field == "email") u.email = value;
        if (field == "idnumber") u.idnumber = value;
      }
    }
    u.suspended = suspended_now;
    opt_.mirror->Wrote(u);
  }

  void Trace(const plan::UserItem& item) {
    if (opt_.trace) opt_.trace("\t" + plan::UserTraceLine(item));
  }
  void Persist(Status st) {
    if (!st) out_.apply.state_error = true;
  }
  void Manage(model::MoodleId id, const std::string& username, bool created, model::SuspendReason why) {
    auto& m = owned_.users[id];
    m.userid = id;
    m.username = username;
    if (created) m.created = true;
    m.suspended_by_us = why;
    Persist(db_.UpsertManagedUser(m));
  }

  // Pending intents (state::Intent, action "user_write") for the users a
  // step is about to write, dropped when the step ends. A run that dies in
  // between leaves them: the next run re-reads those users before it plans
  // (ReadBackUserIntents), so a write Moodle finished without an answer is
  // never hidden by the mirror's older copy.
  std::vector<long long> Intend(const std::vector<moodle::UserUpdate>& updates) {
    std::vector<model::MoodleId> ids;
    for (const auto& u : updates) ids.push_back(u.id);
    return Intend(ids);
  }
  std::vector<long long> Intend(const std::vector<model::MoodleId>& ids) {
    std::vector<state::Intent> intents;
    for (auto id : ids) {
      state::Intent i;
      i.action = kUserWriteIntent;
      i.userid = id;
      intents.push_back(std::move(i));
    }
    auto added = db_.AddIntents(intents);
    if (!added) {
      out_.apply.state_error = true;
      return {};
    }
    return *added;
  }

  void Apply() {
    auto& items = out_.plan.items;
    Persist(db_.Begin());
    for (const auto& a : out_.plan.adoptions) {
      // a.reason: a suspension the directory made, which enrolsync lifts
      // once the person is back and enabled (the revive may be in this run).
      if (!owned_.users.count(a.userid)) Manage(a.userid, a.username, false, a.reason);
    }
    Persist(db_.Commit());

    // Creates.
    std::vector<std::size_t> idx;
    std::vector<moodle::NewUser> creates;
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (items[i].action != plan::UserAction::kCreate) continue;
      idx.push_back(i);
      moodle::NewUser nu{items[i].username, cfg_.users.policy.auth, items[i].fields};
      // Moodle refuses a manual account without a password; let it generate
      // one and mail it (external auth methods need none).
      if (nu.auth == "manual") nu.fields["createpassword"] = "1";
      creates.push_back(std::move(nu));
    }
    if (!creates.empty()) {
      // Recorded batch by batch as Moodle answers, so a crash loses at most
      // the batches in flight.
      auto handle = [&](std::size_t k, const Result<model::MoodleId>& rk) {
        auto& item = items[idx[k]];
        if (!rk) {
          out_.apply.failures.push_back(item.username + ": " + rk.error().message);
          return;
        }
        item.userid = *rk;
        Mirror(item, false);
        // A disabled account is recorded as suspended by us before the
        // suspension is sent: should that call fail, the next run finds an
        // active user disabled in the directory and suspends it.
        Manage(item.userid, item.username, true, item.reason);
        ++out_.apply.applied.create;
        Trace(item);
      };
      client_.CreateUsers(creates, {}, [&](std::span<const std::size_t> ks, std::span<const Result<model::MoodleId>> rs) {
        Persist(db_.Begin());
        for (std::size_t k : ks) handle(k, rs[k]);
        Persist(db_.Commit());
      });
    }

    // Updates, suspends and revives are all core_user_update_users; so is
    // suspending an account just created for a disabled directory entry
    // (core_user_create_users takes no `suspended`).
    idx.clear();
    std::vector<moodle::UserUpdate> updates;
    for (std::size_t i = 0; i < items.size(); ++i) {
      const auto& item = items[i];
      moodle::UserUpdate u;
      u.id = item.userid;
      switch (item.action) {
        case plan::UserAction::kCreate:
          if (item.userid <= 0 || item.reason != model::SuspendReason::kDisabledInDirectory) continue;
          u.suspended = true;
          break;
        case plan::UserAction::kUpdate: u.fields = item.fields; break;
        case plan::UserAction::kSuspend: u.suspended = true; break;
        case plan::UserAction::kRevive: u.suspended = false; break;
        default: continue;
      }
      idx.push_back(i);
      updates.push_back(std::move(u));
    }
    if (!updates.empty()) {
      // A suspension is recorded as enrolsync's before it is sent (the
      // intent): a run killed with the call in flight, which Moodle may
      // finish without it, must not leave a suspension the ledger calls
      // someone else's, or the person would never be revived on their
      // return. Should the call fail, the previous reason is put back; after
      // a crash a suspension not applied is sent again by the next run, the
      // user being still active and gone from the directory.
      std::map<model::MoodleId, model::SuspendReason> before;
      Persist(db_.Begin());
      std::vector<long long> intents = Intend(updates);
      for (std::size_t i : idx) {
        const auto& item = items[i];
        if (item.action != plan::UserAction::kSuspend) continue;
        auto m = owned_.users.find(item.userid);
        before[item.userid] = m == owned_.users.end() ? model::SuspendReason::kNone : m->second.suspended_by_us;
        Manage(item.userid, item.username, m != owned_.users.end() && m->second.created, item.reason);
      }
      Persist(db_.Commit());
      // Recorded batch by batch as Moodle answers, so a crash loses at most
      // the batches in flight.
      auto handle = [&](std::size_t k, const Result<model::MoodleId>& rk) {
        const auto& item = items[idx[k]];
        if (!rk) {
          if (item.action == plan::UserAction::kSuspend) {
            auto m = owned_.users.find(item.userid);
            Manage(item.userid, item.username, m != owned_.users.end() && m->second.created, before[item.userid]);
          }
          const bool after_create = item.action == plan::UserAction::kCreate;
          out_.apply.failures.push_back(item.username + (after_create ? " (suspending the new account)" : "") + ": " +
                                        rk.error().message);
          return;
        }
        if (item.action == plan::UserAction::kCreate) {
          Mirror(item, true);  // the new account, now suspended
          return;            // counted and traced as created
        }
        if (opt_.mirror) {
          auto known = opt_.mirror->data().users.find(item.userid);
          bool was = known != opt_.mirror->data().users.end() && known->second.suspended;
          Mirror(item, item.action == plan::UserAction::kSuspend ? true
                       : item.action == plan::UserAction::kRevive ? false
                                                                   : was);
        }
        auto m = owned_.users.find(item.userid);
        bool created = m != owned_.users.end() && m->second.created;
        switch (item.action) {
          case plan::UserAction::kUpdate: ++out_.apply.applied.update; break;
          case plan::UserAction::kSuspend:
            Manage(item.userid, item.username, created, item.reason);
            ++out_.apply.applied.suspend;
            break;
          case plan::UserAction::kRevive:
            Manage(item.userid, item.username, created, model::SuspendReason::kNone);
            ++out_.apply.applied.revive;
            break;
          default: break;
        }
        Trace(item);
      };
      client_.UpdateUsers(updates, {}, [&](std::span<const std::size_t> ks, std::span<const Result<model::MoodleId>> rs) {
        Persist(db_.Begin());
        for (std::size_t k : ks) handle(k, rs[k]);
        Persist(db_.Commit());
      });
      Persist(db_.DropIntents(intents));
    }

    // Deletes.
    idx.clear();
    std::vector<model::MoodleId> deletes;
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (items[i].action != plan::UserAction::kDelete) continue;
      idx.push_back(i);
      deletes.push_back(items[i].userid);
    }
    if (!deletes.empty()) {
      // Recorded batch by batch as Moodle answers, so a crash loses at most
      // the batches in flight.
      auto handle = [&](std::size_t k, const Result<model::MoodleId>& rk) {
        const auto& item = items[idx[k]];
        if (!rk) {
          out_.apply.failures.push_back(item.username + ": " + rk.error().message);
          return;
        }
        owned_.users.erase(item.userid);
        Persist(db_.DeleteManagedUser(item.userid));
        if (opt_.mirror) opt_.mirror->Forget(item.userid);
        ++out_.apply.applied.remove;
        Trace(item);
      };
      std::vector<model::MoodleId> ids(deletes.begin(), deletes.end());
      std::vector<long long> intents = Intend(ids);
      client_.DeleteUsers(deletes, {}, [&](std::span<const std::size_t> ks, std::span<const Result<model::MoodleId>> rs) {
        Persist(db_.Begin());
        for (std::size_t k : ks) handle(k, rs[k]);
        Persist(db_.Commit());
      });
      Persist(db_.DropIntents(intents));
    }
  }

  const config::Config& cfg_;
  moodle::Client& client_;
  state::StateDb& db_;
  model::Ownership& owned_;
  const UserSyncOptions& opt_;
  UserSyncOutcome out_;
};

}  // namespace

Status ReadBackUserIntents(state::StateDb& db, MoodleMirror& mirror) {
  auto intents = db.LoadIntents();
  if (!intents) return Fail(intents.error());
  std::vector<model::MoodleId> ids;
  std::vector<long long> drop;
  for (const auto& i : *intents) {
    if (i.action != kUserWriteIntent) continue;
    ids.push_back(i.userid);
    drop.push_back(i.id);
  }
  if (ids.empty()) return Ok();
  auto read = mirror.RefreshUsers(ids);
  if (!read) return Fail(read.error().Wrap("re-reading the users the last run was writing when it stopped"));
  return db.DropIntents(drop);
}

UserSyncOutcome SyncUsers(const config::Config& cfg, moodle::Client& client, state::StateDb& db,
                          model::Ownership& owned, const UserSyncOptions& options) {
  return UserSync(cfg, client, db, owned, options).Run();
}

}  // namespace enrolsync::sync
