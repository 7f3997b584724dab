// The Moodle web-service response decoder: the real moodle::Client over a
// transport that answers every POST with bodies from the input, so each
// answer goes through wire::ParseResponse (JSON, Moodle exceptions) and the
// typed decoding of the call that asked (site info, categories, courses,
// users, participants, and the answers of the write calls, with their
// bisection on errors). Also wire::DecodeHtml and wire::CleanText on the
// raw text.
//
// Input: byte 0 chooses the call ('a' + n, see kCalls); the rest is one or
// more response bodies separated by NUL bytes, served in turn (cycling).
// Properties: nothing crashes, a write call returns one result per item,
// and decoding text without '&' leaves it unchanged.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "moodle/client.h"
#include "moodle/wire.h"
#include "util/secrets.h"

namespace {

using namespace enrolsync::moodle;

class ReplayTransport : public Transport {
 public:
  explicit ReplayTransport(std::vector<std::string_view> bodies) : bodies_(std::move(bodies)) {}
  enrolsync::Result<std::string> Post(std::string_view, const FormFields&) override {
    std::string_view b = bodies_[next_++ % bodies_.size()];
    return std::string(b);
  }

 private:
  std::vector<std::string_view> bodies_;
  std::size_t next_ = 0;
};

ClientOptions Options() {
  ClientOptions o;
  o.url = "https://moodle.school.test";
  o.token = "0123456789abcdef0123456789abcdef";
  o.concurrency = 1;
  o.create_course_concurrency = 1;
  o.enrol_concurrency = 1;
  o.user_concurrency = 1;
  o.max_retries = 1;
  o.give_up_after = std::chrono::seconds(0);
  o.retry_base = std::chrono::milliseconds(0);
  o.sleep = [](std::chrono::milliseconds) {};
  return o;
}

enum Call {
  kSiteInfo, kCategories, kAllCourses, kCoursesByIds, kUsersByField, kUsersByEmail, kParticipants,
  kParticipantsMulti, kUsersByAuth, kCreateCourses, kEnrol, kUnenrol, kAssignRoles, kUnassignRoles,
  kCreateUsers, kUpdateUsers, kDeleteUsers, kRawCall, kCount
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const int call = static_cast<std::uint8_t>(data[0] - 'a') % kCount;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<std::string_view> bodies;
  for (;;) {
    std::size_t nul = rest.find('\0');
    bodies.push_back(rest.substr(0, nul));
    if (nul == std::string_view::npos) break;
    rest.remove_prefix(nul + 1);
  }

  for (std::string_view b : bodies) {
    std::string decoded = wire::DecodeHtml(b);
    if (b.find('&') == std::string_view::npos) FUZZ_CHECK(decoded == b);
    FUZZ_CHECK(decoded.size() <= b.size() * 2);
    (void)wire::CleanText(b);
  }

  Client client(Options(), std::make_unique<ReplayTransport>(bodies));
  switch (call) {
    case kSiteInfo: (void)client.GetSiteInfo(); break;
    case kCategories: (void)client.GetCategories(); break;
    case kAllCourses: (void)client.GetAllCourses(); break;
    case kCoursesByIds: (void)client.GetCoursesByIds({2, 3, 464}); break;
    case kUsersByField: (void)client.GetUsersByField("email", {"a.b@school.test", "c.d@school.test"}); break;
    case kUsersByEmail: (void)client.FindUsersByEmail({"Wendy.Service@school.test", "x_y@school.test"}); break;
    case kParticipants: (void)client.GetParticipants({464, 465}); break;
    case kParticipantsMulti:
      // The first body is the site info: when it lists
      // core_enrol_get_enrolled_users_with_capability, the multi-course reads.
      (void)client.GetSiteInfo();
      (void)client.GetParticipants({464, 465, 466}, {}, {{464, 30}, {465, 3000}});
      break;
    case kUsersByAuth: (void)client.GetUsersByAuth("ldap"); break;
    case kCreateCourses: {
      std::vector<NewCourse> c(3);
      for (int i = 0; i < 3; ++i) {
        c[i].fullname = "Art - 11/Ar" + std::to_string(i);
        c[i].shortname = "11Ar" + std::to_string(i);
        c[i].idnumber = "11/Ar" + std::to_string(i);
        c[i].categoryid = 2;
      }
      FUZZ_CHECK(client.CreateCourses(c).size() == c.size());
      break;
    }
    case kEnrol: {
      std::vector<ManualEnrolment> e = {{464, 896, 5, false}, {464, 897, 3, false}, {465, 896, 5, true}};
      FUZZ_CHECK(client.EnrolUsers(e).size() == e.size());
      break;
    }
    case kUnenrol: {
      std::vector<CourseUserRef> u = {{464, 896}, {465, 897}};
      FUZZ_CHECK(client.UnenrolUsers(u).size() == u.size());
      break;
    }
    case kAssignRoles:
    case kUnassignRoles: {
      std::vector<RoleAssignment> r = {{464, 896, 4}, {464, 897, 3}, {465, 898, 5}};
      auto out = call == kAssignRoles ? client.AssignRoles(r) : client.UnassignRoles(r);
      FUZZ_CHECK(out.size() == r.size());
      break;
    }
    case kCreateUsers: {
      std::vector<NewUser> u = {{"ws.user1", "ldap", {{"firstname", "Wendy-Jo"}, {"email", "w@school.test"}}},
                                {"ws.user2", "ldap", {{"firstname", "Walter"}, {"email", "x@school.test"}}}};
      FUZZ_CHECK(client.CreateUsers(u).size() == u.size());
      break;
    }
    case kUpdateUsers: {
      std::vector<UserUpdate> u = {{896, {{"lastname", "Smith & O'Neill"}}, true}, {897, {}, false}};
      FUZZ_CHECK(client.UpdateUsers(u).size() == u.size());
      break;
    }
    case kDeleteUsers: FUZZ_CHECK(client.DeleteUsers({896, 897}).size() == 2); break;
    case kRawCall: (void)client.Call("core_course_get_contents", {{"courseid", "464"}}); break;
  }
  // Each Client registers its token again (util/secrets.h keeps every
  // registration): forget them, or the registry grows with every input.
  enrolsync::ClearSecretsForTesting();
  return 0;
}
