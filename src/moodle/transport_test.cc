// The HTTP transport against a real httplib::Server on 127.0.0.1: exact form
// encoding (from the transcripts), HTTP status classification, timeouts,
// retries and keep-alive.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <filesystem>

#include <gtest/gtest.h>

#include "moodle/client.h"
#include "moodle/testing/fake_moodle.h"
#include "moodle/testing/transcripts.h"
#include "util/strings.h"

namespace enrolsync::moodle {
namespace {

using testing::DecodeForm;
using testing::FakeMoodle;
using testing::Reply;
using testing::ResponseOf;
using testing::SeenRequest;
using testing::Transcript;

constexpr const char* kToken = "6f1e2d3c4b5a69788796a5b4c3d2e1f0";

ClientOptions Options(const FakeMoodle& server) {
  ClientOptions o;
  o.url = server.url();
  o.token = kToken;
  o.timeout = std::chrono::seconds(5);
  o.retry_base = std::chrono::milliseconds(10);
  return o;
}

std::string WithToken(std::string body, const std::string& token = kToken) {
  const std::string from = "wstoken=TOKEN&";
  if (body.rfind(from, 0) == 0) body = "wstoken=" + token + "&" + body.substr(from.size());
  return body;
}

class TransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(std::string(ENROLSYNC_SHARED_MOODLE) + "/transcripts/INDEX.tsv"))
        << "recorded transcripts missing: " << ENROLSYNC_SHARED_MOODLE;
  }
};

// Moves each course's courseformatoptions fields after its other fields
// (PHP builds the same array whatever the order of keys inside courses[i]).
FormFields FormatOptionsLast(const FormFields& in) {
  FormFields head, out;
  std::map<std::string, FormFields> tail;  // courses[i] -> its format options
  std::vector<std::string> order;
  for (const auto& f : in) {
    auto pos = f.first.find("][courseformatoptions]");
    std::string course = f.first.rfind("courses[", 0) == 0 ? f.first.substr(0, f.first.find(']') + 1) : "";
    if (!course.empty() && (order.empty() || order.back() != course)) order.push_back(course);
    if (pos != std::string::npos) {
      tail[course].push_back(f);
    } else if (course.empty()) {
      head.push_back(f);
    } else {
      tail[course + "!"].push_back(f);
    }
  }
  out = head;
  for (const auto& c : order) {
    for (const auto& f : tail[c + "!"]) out.push_back(f);
    for (const auto& f : tail[c]) out.push_back(f);
  }
  return out;
}

TEST_F(TransportTest, FormEncodingMatchesTranscript) {
  std::string answer;
  FakeMoodle server([&](const SeenRequest&, int) { return Reply{200, answer}; });
  Client client(Options(server));

  // 05: core_course_create_courses, two courses, one with a format option.
  {
    const auto t = Transcript("05-core_course_create_courses");
    answer = t["response_body"];
    std::vector<NewCourse> courses(2);
    courses[0].fullname = "WS Parent - Year 10 Maths";
    courses[0].shortname = "WS-PARENT-10MA";
    courses[0].idnumber = "WS-PARENT-10MA";
    courses[0].categoryid = 11;
    courses[0].fields = {{"format", "topics"}, {"visible", "0"}, {"enablecompletion", "1"}};
    courses[0].format_options = {{"coursedisplay", "1"}};
    courses[1].fullname = "WS Course B";
    courses[1].shortname = "WS-COURSE-B";
    courses[1].idnumber = "WS-COURSE-B";
    courses[1].categoryid = 11;
    auto ids = client.CreateCourses(courses);
    ASSERT_EQ(ids.size(), 2u);
    ASSERT_TRUE(ids[0]) << ids[0].error().message;
    ASSERT_TRUE(ids[1]) << ids[1].error().message;
    EXPECT_EQ(*ids[0], 464);
    EXPECT_EQ(*ids[1], 465);
    auto reqs = server.requests();
    ASSERT_EQ(reqs.size(), 1u);
    const auto expected = DecodeForm(WithToken(t["request_form_body"]));
    // The transcript sent enablecompletion after the format options; our
    // order is fixed fields, extra fields, format options. Same PHP array.
    EXPECT_EQ(reqs[0].fields, FormatOptionsLast(expected));
  }

  // 12: enrol_manual_enrol_users. We always send the full state, so item 0
  // carries timestart/timeend/suspend that the transcript's item 0 left out.
  {
    const auto t = Transcript("12-enrol_manual_enrol_users");
    answer = t["response_body"];
    auto st = client.EnrolUsers({{464, 896, 5, false}, {464, 897, 3, false}});
    ASSERT_EQ(st.size(), 2u);
    EXPECT_TRUE(st[0] && st[1]);
    auto reqs = server.requests();
    ASSERT_EQ(reqs.size(), 2u);
    FormFields expected = DecodeForm(WithToken(t["request_form_body"]));
    auto at = std::find_if(expected.begin(), expected.end(),
                           [](const auto& f) { return f.first == "enrolments[1][roleid]"; });
    ASSERT_NE(at, expected.end());
    expected.insert(at, {{"enrolments[0][timestart]", "0"}, {"enrolments[0][timeend]", "0"},
                         {"enrolments[0][suspend]", "0"}});
    EXPECT_EQ(reqs[1].fields, expected);
    // Item 1 of the transcript is already in the full form: bytes match.
    const std::string tb = WithToken(t["request_form_body"]);
    const std::string item1 = tb.substr(tb.find("&enrolments%5B1%5D"));
    EXPECT_NE(reqs[1].body.find(item1), std::string::npos) << reqs[1].body;
  }

  // 13: core_enrol_get_enrolled_users with the transcript's own options,
  // through the raw Call (GetParticipants asks for fewer fields).
  {
    const auto t = Transcript("13-core_enrol_get_enrolled_users");
    answer = t["response_body"];
    FormFields params = DecodeForm(t["request_form_body"]);
    params.erase(params.begin(), params.begin() + 2);  // wstoken, wsfunction
    auto r = client.Call("core_enrol_get_enrolled_users", params);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(*r, t["response_body"].get<std::string>());
    auto reqs = server.requests();
    EXPECT_EQ(reqs.back().body, WithToken(t["request_form_body"]));
  }

  // 14: core_role_assign_roles: byte for byte.
  {
    const auto t = Transcript("14-core_role_assign_roles");
    answer = t["response_body"];
    auto st = client.AssignRoles({{464, 896, 4}});
    ASSERT_EQ(st.size(), 1u);
    EXPECT_TRUE(st[0]);
    auto reqs = server.requests();
    EXPECT_EQ(reqs.back().body, WithToken(t["request_form_body"]));
    EXPECT_EQ(reqs.back().fields, DecodeForm(WithToken(t["request_form_body"])));
  }

  for (const auto& r : server.requests()) {
    EXPECT_EQ(r.path, "/webservice/rest/server.php");
    EXPECT_EQ(r.restformat, "json");
    EXPECT_EQ(r.content_type, "application/x-www-form-urlencoded");
  }
}

// Every recorded request body (transcripts 01-72) is reproduced byte for byte
// by the encoder when given the same fields.
TEST_F(TransportTest, FormEncodingRoundTripsEveryTranscript) {
  FakeMoodle server([](const SeenRequest&, int) { return Reply{200, "null"}; });
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(ENROLSYNC_SHARED_MOODLE) + "/transcripts")) {
    if (entry.path().extension() != ".json") continue;
    auto t = testing::LoadTranscript(entry.path().stem().string());
    ASSERT_TRUE(t) << entry.path();
    const std::string body = (*t)["request_form_body"];
    FormFields fields = DecodeForm(body);
    ASSERT_GE(fields.size(), 2u) << entry.path();
    ASSERT_EQ(fields[0].first, "wstoken");
    ASSERT_EQ(fields[1].first, "wsfunction");
    const std::string token = fields[0].second == "TOKEN" ? kToken : fields[0].second;
    ClientOptions o = Options(server);
    o.token = token;
    auto transport = MakeHttpTransport(o);
    const std::string fn = fields[1].second;
    fields.erase(fields.begin(), fields.begin() + 2);
    auto r = transport->Post(fn, fields);
    ASSERT_TRUE(r) << entry.path() << ": " << r.error().message;
    EXPECT_EQ(server.requests().back().body, WithToken(body, token)) << entry.path();
    ++checked;
  }
  EXPECT_GE(checked, 72);
}

TEST_F(TransportTest, WsDisabled403IsAuthError) {
  const auto t = Transcript("72-core_webservice_get_site_info-wsdisabled");
  FakeMoodle server([&](const SeenRequest&, int) { return Reply{t["http_status"].get<int>(), t["response_body"]}; });
  Client client(Options(server));
  auto r = client.GetSiteInfo();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kAuth);
  EXPECT_EQ(r.error().message, "core_webservice_get_site_info: web services are disabled on the site (HTTP 403)");
  EXPECT_EQ(server.request_count(), 1u);  // not retried
}

TEST_F(TransportTest, TransientFailureIsRetriedWithBackoff) {
  const std::string ok = ResponseOf("01-core_webservice_get_site_info");
  FakeMoodle server([&](const SeenRequest&, int i) {
    return i < 2 ? Reply{503, "<html>Service Unavailable</html>"} : Reply{200, ok};
  });
  ClientOptions o = Options(server);
  o.max_retries = 3;
  o.retry_base = std::chrono::milliseconds(100);
  Client client(o);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = client.GetSiteInfo();
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->sitename, "iSAMS Sync Oracle");
  EXPECT_EQ(r->release, "5.1+ (Build: 20251017)");
  EXPECT_EQ(server.request_count(), 3u);
  // Backoff with jitter in [0.5, 1] x base x 2^attempt: at least 50 + 100 ms.
  EXPECT_GE(elapsed, std::chrono::milliseconds(150));
  EXPECT_LT(elapsed, std::chrono::milliseconds(2000));
  auto stats = client.Stats();
  EXPECT_EQ(stats["core_webservice_get_site_info"].calls, 3);
  EXPECT_EQ(stats["core_webservice_get_site_info"].failed, 2);

  // Out of retries: the 5xx stays kTransient.
  FakeMoodle down([](const SeenRequest&, int) { return Reply{502, "Bad Gateway"}; });
  ClientOptions o2 = Options(down);
  o2.max_retries = 2;
  Client client2(o2);
  auto r2 = client2.GetSiteInfo();
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().code, ErrorCode::kTransient);
  EXPECT_NE(r2.error().message.find("HTTP 502"), std::string::npos) << r2.error().message;
  EXPECT_EQ(down.request_count(), 3u);
}

TEST_F(TransportTest, TimeoutIsTransientAndBounded) {
  const std::string ok = ResponseOf("01-core_webservice_get_site_info");
  FakeMoodle server([&](const SeenRequest&, int) { return Reply{200, ok, std::chrono::milliseconds(6000)}; });
  ClientOptions o = Options(server);
  o.timeout = std::chrono::seconds(1);
  o.max_retries = 1;
  Client client(o);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = client.GetSiteInfo();
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kTransient);
  EXPECT_EQ(server.request_count(), 2u);
  EXPECT_GE(elapsed, std::chrono::milliseconds(1900));
  EXPECT_LT(elapsed, std::chrono::milliseconds(4500));
}

TEST_F(TransportTest, ConnectFailureIsTransient) {
  int port;
  {
    FakeMoodle gone([](const SeenRequest&, int) { return Reply{200, "null"}; });
    port = gone.port();
  }
  ClientOptions o;
  o.url = "http://127.0.0.1:" + std::to_string(port);
  o.token = kToken;
  o.max_retries = 2;
  o.retry_base = std::chrono::milliseconds(1);
  Client client(o);
  auto r = client.GetSiteInfo();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kTransient);
  EXPECT_EQ(client.Stats()["core_webservice_get_site_info"].calls, 3);
}

TEST_F(TransportTest, BadUrlIsConfigError) {
  ClientOptions o;
  o.url = "moodle.school.test";
  o.token = kToken;
  Client client(o);
  auto r = client.GetSiteInfo();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kConfig);
}

TEST_F(TransportTest, SubdirectorySiteUrl) {
  FakeMoodle server([](const SeenRequest&, int) { return Reply{404, "not found"}; });
  ClientOptions o = Options(server);
  o.url = server.url() + "/moodle/";
  Client client(o);
  auto r = client.Call("core_webservice_get_site_info", {});
  ASSERT_FALSE(r);  // the fake serves only the root; the 404 shows the path
  EXPECT_EQ(r.error().code, ErrorCode::kIo);
  EXPECT_NE(r.error().message.find("HTTP 404"), std::string::npos);
}

TEST_F(TransportTest, KeepAliveReusesConnections) {
  const std::string info = ResponseOf("01-core_webservice_get_site_info");
  FakeMoodle server([&](const SeenRequest& r, int) {
    return Reply{200, r.function == "core_webservice_get_site_info" ? info : "null"};
  });
  ClientOptions o = Options(server);
  o.concurrency = 2;
  o.max_batch_rows = 25;
  Client client(o);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(client.GetSiteInfo());
  EXPECT_EQ(server.connections(), 1u);  // sequential calls: one connection
  std::vector<ManualEnrolment> many;
  for (int i = 0; i < 500; ++i) many.push_back({100, 1000 + i, 5, false});
  for (const auto& s : client.EnrolUsers(many)) ASSERT_TRUE(s);
  EXPECT_EQ(server.request_count(), 40u);
  EXPECT_LE(server.connections(), 2u);  // one per worker, reused
}

// Only 502, 503 and 504 are sent again. HTTP 500 is PHP dying inside Moodle
// (a fatal error, a memory or time limit) after it may have written part of
// the call, and the same call dies the same way again; 501, 505 and the
// rest are not transient either. They used to be retried as "HTTP 5xx".
TEST_F(TransportTest, OnlyHttp502To504AreRetried) {
  for (int status : {500, 501, 505, 507}) {
    FakeMoodle server([&](const SeenRequest&, int) { return Reply{status, "<html>error</html>"}; });
    ClientOptions o = Options(server);
    o.max_retries = 3;
    o.retry_base = std::chrono::milliseconds(1);
    Client client(o);
    auto r = client.EnrolUsers({{3, 4, 5, false}});
    ASSERT_FALSE(r[0]);
    EXPECT_EQ(r[0].error().code, ErrorCode::kIo) << status;
    EXPECT_NE(r[0].error().message.find("answered HTTP " + std::to_string(status)), std::string::npos)
        << r[0].error().message;
    EXPECT_NE(r[0].error().message.find("not retried"), std::string::npos) << r[0].error().message;
    if (status == 500) {
      EXPECT_NE(r[0].error().message.find("PHP fatal error"), std::string::npos);
    }
    EXPECT_EQ(server.request_count(), 1u) << "HTTP " << status << " was sent again";
    EXPECT_TRUE(client.Retries().empty());
  }
  for (int status : {502, 503, 504}) {
    FakeMoodle server([&](const SeenRequest&, int) { return Reply{status, "<html>error</html>"}; });
    ClientOptions o = Options(server);
    o.max_retries = 2;
    o.retry_base = std::chrono::milliseconds(1);
    Client client(o);
    auto r = client.EnrolUsers({{3, 4, 5, false}});
    ASSERT_FALSE(r[0]);
    EXPECT_EQ(r[0].error().code, ErrorCode::kTransient) << status;
    EXPECT_EQ(server.request_count(), 3u) << "HTTP " << status;
  }
}

// A TLS handshake that fails (here: the server speaks plain HTTP) is not
// transient: it is reported once, as what it is.
TEST_F(TransportTest, TlsHandshakeFailureIsNotRetried) {
  FakeMoodle server([](const SeenRequest&, int) { return Reply{200, "null"}; });
  ClientOptions o = Options(server);
  o.url = "https://127.0.0.1:" + std::to_string(server.port());
  o.max_retries = 3;
  o.retry_base = std::chrono::milliseconds(1);
  Client client(o);
  auto r = client.GetSiteInfo();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kIo) << r.error().message;
  EXPECT_NE(r.error().message.find("TLS handshake with 127.0.0.1:"), std::string::npos) << r.error().message;
  EXPECT_EQ(client.Stats()["core_webservice_get_site_info"].calls, 1);
  EXPECT_TRUE(client.Retries().empty());
}

// A server that reads each whole request and closes the connection without
// answering: Moodle got the call and may have applied it.
class HangUpServer {
 public:
  HangUpServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0) return;
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        std::string got;
        char buf[4096];
        for (;;) {
          const auto head = got.find("\r\n\r\n");
          if (head != std::string::npos) {
            const auto cl = ToLower(got.substr(0, head)).find("content-length:");
            const std::size_t length = cl == std::string::npos ? 0 : std::stoul(got.substr(cl + 15));
            if (got.size() >= head + 4 + length) break;
          }
          const ssize_t n = ::recv(c, buf, sizeof buf, 0);
          if (n <= 0) break;
          got.append(buf, static_cast<std::size_t>(n));
        }
        ++requests_;
        ::close(c);
      }
    });
  }
  ~HangUpServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_; }
  int requests() const { return requests_.load(); }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

// A connection dropped after the request was sent is not "cannot connect":
// Moodle may have applied it. An enrolment is sent again (doing it twice is
// the same as once); a course create is not (a second one fails on the
// duplicate shortname): it is reported, for the next run to read back.
TEST_F(TransportTest, ADropAfterTheRequestWasSentSaysSoAndIsResentOnlyWhenIdempotent) {
  HangUpServer server;
  ASSERT_GT(server.port(), 0);
  ClientOptions o;
  o.url = "http://127.0.0.1:" + std::to_string(server.port());
  o.token = kToken;
  o.timeout = std::chrono::seconds(5);
  o.max_retries = 2;
  o.retry_base = std::chrono::milliseconds(1);
  Client client(o);
  auto st = client.EnrolUsers({{3, 4, 5, false}});
  ASSERT_FALSE(st[0]);
  EXPECT_EQ(st[0].error().code, ErrorCode::kTransient);
  const std::string& m = st[0].error().message;
  EXPECT_EQ(m.find("cannot connect"), std::string::npos) << m;
  EXPECT_NE(m.find("enrol_manual_enrol_users: connection to 127.0.0.1:" + std::to_string(server.port()) +
                   " dropped after the request was sent; Moodle may have applied it"),
            std::string::npos)
      << m;
  EXPECT_EQ(server.requests(), 3);
  auto made = client.CreateCourses({{"Art", "ART", "ART1", 1, {}, {}}});
  ASSERT_FALSE(made[0]);
  EXPECT_NE(made[0].error().message.find("dropped after the request was sent"), std::string::npos);
  EXPECT_NE(made[0].error().message.find("not sent again"), std::string::npos) << made[0].error().message;
  EXPECT_EQ(server.requests(), 4) << "the course create was sent again";
}

}  // namespace
}  // namespace enrolsync::moodle
