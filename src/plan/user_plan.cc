#include "plan/user_plan.h"

#include <algorithm>
#include <map>

#include "util/strings.h"

namespace enrolsync::plan {
namespace {

class UserPlanner {
 public:
  UserPlanner(const std::vector<model::Person>& people, const std::vector<model::User>& users,
              const std::map<MoodleId, model::ManagedUser>& managed, const UserPolicy& policy,
              const std::string& source)
      : people_(people), users_(users), managed_(managed), policy_(policy), source_(source) {}

  UserPlan Run() {
    for (const auto& u : users_) {
      by_username_[u.username] = &u;
      by_id_[u.id] = &u;
      if (!u.email.empty()) by_email_[ToLower(u.email)].push_back(&u);
    }
    sweep_ = AuthSyncsEveryAccount(policy_.auth);
    for (const auto& u : users_) {
      if (IsGuest(u)) continue;
      if (managed_.count(u.id) || (sweep_ && u.auth == policy_.auth)) ++plan_.managed_users;
    }
    std::set<std::string> seen;
    for (const auto& p : people_) {
      if (!seen.insert(p.username).second) {
        Problem(p, "username '" + p.username + "' appears twice in the directory; second entry ignored");
        continue;
      }
      PlanPerson(p);
    }
    for (const auto& [id, m] : managed_) {
      if (seen.count(m.username)) continue;
      if (const model::User* u = Find(m.userid)) PlanLeaver(*u);  // not found: deleted in Moodle meanwhile
    }
    // auth_ldap's removal sweep: users with the auth enrolsync syncs that it
    // does not manage (missing from the directory before the first run, or
    // left behind by auth_ldap) are removed too.
    if (sweep_) {
      for (const auto& u : users_) {
        if (u.auth != policy_.auth || managed_.count(u.id) || seen.count(u.username)) continue;
        PlanLeaver(u);
      }
    }
    Finish();
    return std::move(plan_);
  }

 private:
  const model::User* Find(MoodleId id) const {
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : it->second;
  }
  void Problem(const model::Person& p, std::string reason) {
    plan_.problems.push_back(plan::Problem{source_, 0, {{"username", p.username}, {"entry", p.origin}}, std::move(reason), true});
  }
  void Add(UserItem item) { plan_.items.push_back(std::move(item)); }
  static bool IsGuest(const model::User& u) { return u.username == kMoodleGuestUsername; }

  void PlanPerson(const model::Person& p) {
    if (p.username.empty()) {
      Problem(p, "entry has no username");
      return;
    }
    auto it = by_username_.find(p.username);
    if (it == by_username_.end()) {
      // auth_ldap creates a disabled account suspended (is_user_suspended):
      // its enrolments are made, and it is revived once enabled. Other auths
      // (an MIS table's leavers, auth=manual) are not created.
      if (p.disabled && !sweep_) {
        plan_.notes.push_back("not creating " + p.username + ": the account is disabled in the directory");
        return;
      }
      auto email = p.fields.find("email");
      if (email != p.fields.end() && !email->second.empty()) {
        auto clash = by_email_.find(ToLower(email->second));
        if (clash != by_email_.end()) {
          Problem(p, "cannot create user '" + p.username + "': email '" + email->second +
                         "' is already used by Moodle user '" + clash->second.front()->username + "'");
          return;
        }
      }
      for (const char* required : {"firstname", "lastname", "email"}) {
        auto f = p.fields.find(required);
        if (f == p.fields.end() || Trim(f->second).empty()) {
          Problem(p, std::string("cannot create user '") + p.username + "': no " + required);
          return;
        }
      }
      UserItem item;
      item.action = UserAction::kCreate;
      item.username = p.username;
      for (const auto& f : policy_.mapped_fields)
        if (auto v = p.fields.find(f); v != p.fields.end()) item.fields[f] = v->second;
      item.why = "in the directory, not in Moodle";
      if (p.disabled) {
        item.reason = model::SuspendReason::kDisabledInDirectory;
        item.why += "; disabled in the directory: created suspended";
      }
      Add(std::move(item));
      return;
    }
    const model::User& u = *it->second;
    if (IsGuest(u)) {
      Problem(p, "'" + p.username + "' is Moodle's guest user: never adopted, updated or suspended");
      return;
    }
    if (policy_.protected_users.count(u.id)) {
      plan_.notes.push_back("user " + u.username + " is protected (site admin or the token's user): left alone");
      return;
    }
    if (u.auth != policy_.auth) {
      Problem(p, "Moodle user '" + p.username + "' (id " + std::to_string(u.id) + ") has auth '" + u.auth +
                     "', not '" + policy_.auth + "': left alone");
      return;
    }
    auto m = managed_.find(u.id);
    bool managed = m != managed_.end();
    // The suspension of a user adopted now, when it is the directory's: it
    // is recorded as enrolsync's own, so it is lifted once the person is in
    // the directory and enabled.
    model::SuspendReason adopted_suspension = model::SuspendReason::kNone;
    if (!managed) {
      if (u.suspended && sweep_) {
        if (p.disabled) {
          adopted_suspension = model::SuspendReason::kDisabledInDirectory;
        } else if (policy_.removed_user_action == RemovedUserAction::kSuspend) {
          // auth_ldap (removeuser = suspend) revives every suspended user of
          // its auth found in the directory: it suspended them when they
          // left, and cannot tell its suspensions from an admin's.
          adopted_suspension = model::SuspendReason::kLeftDirectory;
        }
      }
      UserItem adopt;
      adopt.action = UserAction::kUpdate;
      adopt.userid = u.id;
      adopt.username = u.username;
      adopt.adopt = true;
      adopt.reason = adopted_suspension;
      adopt.why = "existing " + policy_.auth + " user adopted";
      plan_.adoptions.push_back(adopt);
    }
    // Profile fields.
    UserItem upd;
    upd.action = UserAction::kUpdate;
    upd.userid = u.id;
    upd.username = u.username;
    for (const auto& f : policy_.mapped_fields) {
      if (!policy_.update_fields.count(f)) continue;
      // An attribute gone from the entry empties the field, as auth_ldap's
      // update_user_record writes '' for it.
      auto found = p.fields.find(f);
      const std::string wanted = found == p.fields.end() ? std::string() : found->second;
      auto have = u.profile.find(f);
      std::string current = have == u.profile.end() ? (f == "email" ? u.email : f == "idnumber" ? u.idnumber : "")
                                                    : have->second;
      if (current != wanted) {
        if (f == "email" && Trim(wanted).empty()) {
          // core_user_update_users refuses an empty email (useremailinvalid).
          Problem(p, "'" + p.username + "' has no email in the source: the Moodle email '" + current +
                         "' is kept (Moodle refuses an empty email)");
          continue;
        }
        if (f == "email") {
          auto clash = by_email_.find(ToLower(wanted));
          if (clash != by_email_.end() && clash->second.front()->id != u.id) {
            Problem(p, "cannot change the email of '" + p.username + "' to '" + wanted +
                           "': used by Moodle user '" + clash->second.front()->username + "'");
            continue;
          }
        }
        upd.changes.push_back({f, current, wanted});
        upd.fields[f] = wanted;
      }
    }
    if (!upd.changes.empty()) {
      upd.why = "directory fields changed";
      Add(std::move(upd));
    }
    // Suspension. Revived: users suspended by enrolsync, or (adopted now)
    // by the directory's plugin. A user an admin suspended while enrolsync
    // managed them stays suspended (auth_ldap would revive them).
    model::SuspendReason ours = managed ? m->second.suspended_by_us : adopted_suspension;
    if (p.disabled) {
      if (!u.suspended) {
        Removal(SuspendItem(u, model::SuspendReason::kDisabledInDirectory, "disabled in the directory"));
      }
      return;
    }
    if (u.suspended) {
      if (ours != model::SuspendReason::kNone) {
        UserItem r;
        r.action = UserAction::kRevive;
        r.userid = u.id;
        r.username = u.username;
        r.why = !managed ? "in the directory; suspended before enrolsync managed it (auth_ldap revives it)"
                : ours == model::SuspendReason::kLeftDirectory ? "back in the directory"
                                                               : "enabled in the directory";
        Add(std::move(r));
      } else {
        plan_.notes.push_back("user " + u.username + " stays suspended: suspended in Moodle, not by enrolsync");
      }
    }
  }

  UserItem SuspendItem(const model::User& u, model::SuspendReason reason, std::string why) {
    UserItem s;
    s.action = UserAction::kSuspend;
    s.userid = u.id;
    s.username = u.username;
    s.reason = reason;
    s.why = std::move(why);
    return s;
  }

  void Removal(UserItem item) {
    if (policy_.protected_users.count(item.userid) || item.username == kMoodleGuestUsername) {
      plan_.notes.push_back("user " + item.username + " is protected (site admin or the token's user): not " +
                            (item.action == UserAction::kDelete ? "deleted" : "suspended"));
      return;
    }
    if (!policy_.block_removals.empty()) {
      ++plan_.removals_withheld;
      return;
    }
    Add(std::move(item));
  }

  // A Moodle user of ours (managed, or with the swept auth) who is not in
  // the source.
  void PlanLeaver(const model::User& user) {
    const model::User* u = &user;
    if (u->auth != policy_.auth || IsGuest(*u)) return;
    switch (policy_.removed_user_action) {
      case RemovedUserAction::kKeep: return;
      case RemovedUserAction::kSuspend:
        if (!u->suspended) Removal(SuspendItem(*u, model::SuspendReason::kLeftDirectory, "no longer in the directory"));
        return;
      case RemovedUserAction::kDelete: {
        UserItem d;
        d.action = UserAction::kDelete;
        d.userid = u->id;
        d.username = u->username;
        d.why = "no longer in the directory";
        Removal(std::move(d));
        return;
      }
    }
  }

  void Finish() {
    auto order = [](UserAction a) {
      switch (a) {
        case UserAction::kCreate: return 0;
        case UserAction::kUpdate: return 1;
        case UserAction::kRevive: return 2;
        case UserAction::kSuspend: return 3;
        case UserAction::kDelete: return 4;
      }
      return 5;
    };
    std::stable_sort(plan_.items.begin(), plan_.items.end(), [&](const UserItem& a, const UserItem& b) {
      return std::make_pair(order(a.action), a.username) < std::make_pair(order(b.action), b.username);
    });
    for (const auto& i : plan_.items) {
      switch (i.action) {
        case UserAction::kCreate: ++plan_.summary.create; break;
        case UserAction::kUpdate: ++plan_.summary.update; break;
        case UserAction::kSuspend: ++plan_.summary.suspend; break;
        case UserAction::kRevive: ++plan_.summary.revive; break;
        case UserAction::kDelete: ++plan_.summary.remove; break;
      }
    }
    const long long limit = RemovalLimit(policy_.max_removals, policy_.max_removals_percent, policy_.allow_removals,
                                         plan_.managed_users);
    plan_.removal_limit = limit;
    plan_.guard_tripped = limit >= 0 && plan_.summary.Removals() > limit;
  }

  const std::vector<model::Person>& people_;
  const std::vector<model::User>& users_;
  const std::map<MoodleId, model::ManagedUser>& managed_;
  const UserPolicy& policy_;
  std::string source_;
  std::map<std::string, const model::User*> by_username_;
  std::map<MoodleId, const model::User*> by_id_;
  std::map<std::string, std::vector<const model::User*>> by_email_;
  UserPlan plan_;
  bool sweep_ = false;  // AuthSyncsEveryAccount(policy_.auth)
};

}  // namespace

bool AuthSyncsEveryAccount(const std::string& auth) { return auth == "ldap" || auth == "cas" || auth == "db"; }

const char* UserActionName(UserAction a) {
  switch (a) {
    case UserAction::kCreate: return "create";
    case UserAction::kUpdate: return "update";
    case UserAction::kSuspend: return "suspend";
    case UserAction::kRevive: return "revive";
    case UserAction::kDelete: return "delete";
  }
  return "?";
}

UserPlan BuildUserPlan(const std::vector<model::Person>& people, const std::vector<model::User>& moodle_users,
                       const std::map<MoodleId, model::ManagedUser>& managed, const UserPolicy& policy,
                       const std::string& source_name) {
  return UserPlanner(people, moodle_users, managed, policy, source_name).Run();
}

std::string UserPlanLine(const UserItem& i) {
  switch (i.action) {
    case UserAction::kCreate: {
      auto get = [&](const char* f) {
        auto it = i.fields.find(f);
        return it == i.fields.end() ? std::string() : it->second;
      };
      return "+ user " + i.username + " (" + get("firstname") + " " + get("lastname") + ", " + get("email") + ")" +
             (i.reason == model::SuspendReason::kDisabledInDirectory ? " suspended: disabled in the directory" : "");
    }
    case UserAction::kUpdate: {
      std::string s = "~ user " + i.username;
      for (const auto& c : i.changes) s += " " + c.field + ": " + c.from + " -> " + c.to + ";";
      if (!i.changes.empty()) s.pop_back();
      return s;
    }
    case UserAction::kSuspend: return "- suspend user " + i.username + " (" + i.why + ")";
    case UserAction::kRevive: return "+ revive user " + i.username;
    case UserAction::kDelete: return "- delete user " + i.username;
  }
  return "";
}

std::string UserTraceLine(const UserItem& i) {
  const std::string tail = i.username + " id " + std::to_string(i.userid);
  switch (i.action) {
    case UserAction::kCreate: return "Inserted user " + tail;
    case UserAction::kUpdate: return "Updating user " + tail;
    case UserAction::kSuspend: return "Suspended user " + tail;
    case UserAction::kRevive: return "Revived user " + tail;
    case UserAction::kDelete: return "Deleted user " + tail;
  }
  return "";
}

}  // namespace enrolsync::plan
