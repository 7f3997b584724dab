// Replays every recorded Moodle 5.1 transcript (shared/moodle/transcripts)
// against a fresh sandbox and checks that the answer has the recorded shape:
// same HTTP status, same keys and JSON types (recursively; an array element
// must match one of the recorded elements; an empty/non-empty array must
// stay empty/non-empty), the literal `null` / empty body
// where Moodle sent one, and for errors the same exception and errorcode and
// the same message once digits are masked (ids differ).
//
// Each transcript is its own test case. A case starts a new sandbox, seeds
// the objects the recording refers to (category "Unsorted courses", 800
// LDAP pupils with ids 3..802, staff 804 and 823, courses 80 = 10/AX1 and
// 397 = 10/Ma1) and replays every earlier transcript of the recorded session
// first (01..66, plus 67 for 68..71), because the recording is one session:
// e.g. 18 (duplicate meta link) needs 17. Ids in a request are rewritten
// through a map from recorded ids to the sandbox's ids, learnt from the
// seeding and from the responses of the replayed create calls.
//
// Debugging: files 46..65 were recorded with Moodle debugging on. The
// sandbox implements debugging off only, so for them the expected answer is
// the debug-off one: "debuginfo" is dropped, and the codes that debugging
// changes are mapped back: invalidrecord / invaliduser (dml_missing_record)
// -> invalidrecordunknown with "Can't find data record in database.".
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "sandbox/sandbox.h"
#include "util/strings.h"

namespace enrolsync::sandbox {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* kToken = "contract-token";

fs::path TranscriptDir() { return fs::path(ENROLSYNC_SHARED_MOODLE) / "transcripts"; }

int FileNumber(const std::string& name) { return std::atoi(name.c_str()); }

std::vector<std::string> TranscriptFiles() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(TranscriptDir(), ec)) {
    std::string n = e.path().filename().string();
    if (e.path().extension() == ".json" && !n.empty() && std::isdigit(static_cast<unsigned char>(n[0]))) {
      out.push_back(n);
    }
  }
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
    return FileNumber(a) != FileNumber(b) ? FileNumber(a) < FileNumber(b) : a < b;
  });
  if (out.empty()) out.push_back("MISSING-transcripts-directory");
  return out;
}

json LoadTranscript(const std::string& file) {
  std::ifstream in(TranscriptDir() / file);
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

// ---------------------------------------------------------------------------
// Shape comparison

std::string TypeName(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "bool";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "int";
    case json::value_t::number_float: return "float";
    case json::value_t::string: return "string";
    case json::value_t::array: return "array";
    case json::value_t::object: return "object";
    default: return "other";
  }
}

// Returns "" when `actual` has the shape of `expected`, else the first difference.
std::string ShapeDiff(const json& expected, const json& actual, const std::string& path) {
  if (TypeName(expected) != TypeName(actual)) {
    return path + ": expected " + TypeName(expected) + ", got " + TypeName(actual);
  }
  if (expected.is_object()) {
    for (auto it = expected.begin(); it != expected.end(); ++it) {
      if (!actual.contains(it.key())) return path + "." + it.key() + ": missing";
      std::string d = ShapeDiff(it.value(), actual[it.key()], path + "." + it.key());
      if (!d.empty()) return d;
    }
    for (auto it = actual.begin(); it != actual.end(); ++it) {
      if (!expected.contains(it.key())) return path + "." + it.key() + ": unexpected key";
    }
  } else if (expected.is_array()) {
    if (!expected.empty() && actual.empty()) return path + ": expected a non-empty array, got []";
    // Recorded empty lists (no enrolment methods, no warnings, no files) are
    // part of the contract too.
    if (expected.empty()) return actual.empty() ? "" : path + ": expected [], got " + std::to_string(actual.size()) + " elements";
    for (std::size_t i = 0; i < actual.size(); ++i) {
      std::string first;
      bool ok = false;
      for (const json& e : expected) {
        std::string d = ShapeDiff(e, actual[i], path + "[" + std::to_string(i) + "]");
        if (d.empty()) {
          ok = true;
          break;
        }
        if (first.empty()) first = d;
      }
      if (!ok) return first;
    }
  }
  return "";
}

std::string MaskDigits(const std::string& s) { return std::regex_replace(s, std::regex("[0-9]+"), "#"); }

TEST(ShapeDiff, DetectsMissingExtraAndRetypedKeys) {
  json e = json::parse(R"({"a":1,"b":[{"x":"s"}]})");
  EXPECT_EQ(ShapeDiff(e, json::parse(R"({"a":2,"b":[{"x":"t"},{"x":"u"}]})"), "$"), "");
  EXPECT_EQ(ShapeDiff(e, json::parse(R"({"a":"2","b":[]})"), "$"), "$.a: expected int, got string");
  EXPECT_EQ(ShapeDiff(e, json::parse(R"({"a":2})"), "$"), "$.b: missing");
  EXPECT_EQ(ShapeDiff(e, json::parse(R"({"a":2,"b":[{"x":"s","y":1}]})"), "$"), "$.b[0].y: unexpected key");
  EXPECT_EQ(ShapeDiff(e, json::parse(R"({"a":2,"b":[]})"), "$"), "$.b: expected a non-empty array, got []");
  EXPECT_EQ(ShapeDiff(json::parse("[]"), json::parse("[1]"), "$"), "$: expected [], got 1 elements");
}

// ---------------------------------------------------------------------------
// Replaying

using IdMap = std::map<std::string, std::map<long long, long long>>;  // kind -> recorded -> actual

struct Replayer {
  std::unique_ptr<Sandbox> sandbox;
  std::unique_ptr<httplib::Client> client;
  IdMap ids;
  fs::path dir;

  ~Replayer() {
    if (sandbox) sandbox->Stop();
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }

  void Start(const std::string& name, bool ws_enabled, int max_input_vars) {
    dir = fs::temp_directory_path() / ("enrolsync-contract-" + name + "-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    Options o;
    o.state_dir = dir.string();
    o.token = kToken;
    o.webservices_enabled = ws_enabled;
    o.max_input_vars = max_input_vars;
    auto s = Sandbox::Start(o);
    ASSERT_TRUE(s) << s.error().message;
    sandbox = std::move(*s);
    client = std::make_unique<httplib::Client>("127.0.0.1", sandbox->port());
    client->set_read_timeout(120, 0);
  }

  std::pair<int, std::string> Post(const std::string& body) {
    auto res = client->Post("/webservice/rest/server.php?moodlewsrestformat=json", body,
                            "application/x-www-form-urlencoded");
    if (!res) return {-1, "no response: " + httplib::to_string(res.error())};
    return {res->status, res->body};
  }

  json Call(const std::string& body) {
    auto [status, text] = Post(body);
    EXPECT_EQ(status, 200) << body.substr(0, 200);
    return json::parse(text, nullptr, false);
  }

  long long Map(const std::string& kind, long long recorded) const {
    auto k = ids.find(kind);
    if (k == ids.end()) return recorded;
    auto it = k->second.find(recorded);
    return it == k->second.end() ? recorded : it->second;
  }

  // Seeds the objects the recorded session refers to.
  void Seed() {
    std::string t = std::string("wstoken=") + kToken;
    json cat = Call(t + "&wsfunction=core_course_create_categories&categories[0][name]=Unsorted+courses"
                        "&categories[0][idnumber]=unsorted_courses");
    ASSERT_TRUE(cat.is_array()) << cat.dump();
    ids["category"][2] = cat[0]["id"].get<long long>();
    // Pupils 3..802 as auth_ldap made them (no idnumber, as in the recording);
    // 169 is Esme Young.
    for (int start = 3; start <= 802; start += 400) {
      std::string body = t + "&wsfunction=core_user_create_users";
      for (int id = start, i = 0; id < start + 400 && id <= 802; ++id, ++i) {
        std::string p = "&users[" + std::to_string(i) + "]";
        bool esme = id == 169;
        std::string user = esme ? "25younge" : "pupil" + std::to_string(id);
        body += p + "[username]=" + user + p + "[auth]=ldap" + p + "[firstname]=" + (esme ? "Esme" : "Pupil") + p +
                "[lastname]=" + (esme ? "Young" : std::to_string(id)) + p + "[email]=" +
                (esme ? std::string("esme.young") : user) + "%40school.test";
      }
      json r = Call(body);
      ASSERT_TRUE(r.is_array()) << r.dump();
      for (std::size_t i = 0; i < r.size(); ++i) {
        ids["user"][start + static_cast<long long>(i)] = r[i]["id"].get<long long>();
      }
    }
    json staff = Call(t + "&wsfunction=core_user_create_users"
                          "&users[0][username]=rwebb&users[0][auth]=ldap&users[0][firstname]=Ren%C3%A9e"
                          "&users[0][lastname]=Webb&users[0][email]=renee.webb%40school.test"
                          "&users[1][username]=jsmith&users[1][auth]=ldap&users[1][firstname]=James"
                          "&users[1][lastname]=Smith-Taylor&users[1][email]=james.smith%40school.test");
    ASSERT_TRUE(staff.is_array()) << staff.dump();
    ids["user"][804] = staff[0]["id"].get<long long>();
    ids["user"][823] = staff[1]["id"].get<long long>();
    std::string c = std::to_string(ids["category"][2]);
    json courses = Call(t + "&wsfunction=core_course_create_courses"
                            "&courses[0][fullname]=Academic+Extension+-+10%2FAX1"
                            "&courses[0][shortname]=Academic+Extension+-+10%2FAX1&courses[0][categoryid]=" + c +
                            "&courses[0][idnumber]=10%2FAX1"
                            "&courses[1][fullname]=Mathematics+-+10%2FMa1&courses[1][shortname]=Mathematics+-+10%2FMa1"
                            "&courses[1][categoryid]=" + c + "&courses[1][idnumber]=10%2FMa1");
    ASSERT_TRUE(courses.is_array()) << courses.dump();
    ids["course"][80] = courses[0]["id"].get<long long>();
    ids["course"][397] = courses[1]["id"].get<long long>();
    // Renée Webb teaches 10/AX1, so it has a course contact as recorded.
    json e = Call(t + "&wsfunction=enrol_manual_enrol_users&enrolments[0][roleid]=3&enrolments[0][userid]=" +
                  std::to_string(ids["user"][804]) + "&enrolments[0][courseid]=" + std::to_string(ids["course"][80]));
    ASSERT_TRUE(e.is_null()) << e.dump();
  }

  // The recorded form body with ids mapped and the token substituted.
  std::string Rewrite(const std::string& recorded) {
    std::vector<std::pair<std::string, std::string>> vars;
    for (const std::string& part : Split(recorded, '&')) {
      auto eq = part.find('=');
      vars.emplace_back(UrlDecode(part.substr(0, eq)), eq == std::string::npos ? "" : UrlDecode(part.substr(eq + 1)));
    }
    std::map<std::string, std::string> top;
    for (const auto& [k, v] : vars) top[k] = v;
    const std::string fn = top["wsfunction"];
    std::string out;
    for (std::size_t i = 0; i < vars.size(); ++i) {
      const std::string& key = vars[i].first;
      std::string value = vars[i].second;
      auto lb = key.rfind('[');
      std::string last = lb == std::string::npos ? key : key.substr(lb + 1, key.size() - lb - 2);
      std::string base = key.substr(0, key.find('['));
      std::string kind;
      if (last == "courseid" || last == "metacourseid" || last == "instanceid") kind = "course";
      else if (last == "categoryid" || last == "parent") kind = "category";
      else if (last == "userid" || base == "userids") kind = "user";
      else if (last == "groupid") kind = "group";
      else if (base == "cohortids") kind = "cohort";
      else if (last == "id" && base == "users") kind = "user";
      else if (last == "id" && base == "courses") kind = "course";
      else if (key == "value" && fn == "core_course_get_courses_by_field" && top["field"] == "id") kind = "course";
      else if (base == "values" && fn == "core_user_get_users_by_field" && top["field"] == "id") kind = "user";
      else if (last == "value" && key.find("[cohorttype]") != std::string::npos) {
        if (top[key.substr(0, lb) + "[type]"] == "id") kind = "cohort";
      } else if (last == "value" && key.find("[usertype]") != std::string::npos) {
        if (top[key.substr(0, lb) + "[type]"] == "id") kind = "user";
      }
      long long n = 0;
      if (!kind.empty() && ParseInt64(value, &n)) value = std::to_string(Map(kind, n));
      if (key == "wstoken" && value == "TOKEN") value = kToken;
      if (i) out += '&';
      out += UrlEncode(key) + "=" + UrlEncode(value);
    }
    return out;
  }

  // Learns id mappings from a create call's recorded and actual answers.
  void Learn(const std::string& function, const json& recorded, const json& actual) {
    std::string kind;
    if (function == "core_course_create_categories") kind = "category";
    else if (function == "core_course_create_courses") kind = "course";
    else if (function == "core_user_create_users") kind = "user";
    else if (function == "core_group_create_groups") kind = "group";
    else if (function == "core_cohort_create_cohorts") kind = "cohort";
    if (kind.empty() || !recorded.is_array() || !actual.is_array()) return;
    for (std::size_t i = 0; i < recorded.size() && i < actual.size(); ++i) {
      if (recorded[i].contains("id") && actual[i].contains("id")) {
        ids[kind][recorded[i]["id"].get<long long>()] = actual[i]["id"].get<long long>();
      }
    }
  }

  // Replays one transcript; returns the HTTP status and body.
  std::pair<int, std::string> Replay(const json& t) {
    auto [status, body] = Post(Rewrite(t["request_form_body"].get<std::string>()));
    std::string rec = t["response_body"].get<std::string>();
    json recorded = json::parse(rec, nullptr, false);
    json actual = json::parse(body, nullptr, false);
    Learn(t["function"].get<std::string>(), recorded, actual);
    return {status, body};
  }
};

// The debug-off answer Moodle gives for a transcript recorded with debugging on.
json DebugOffExpectation(json recorded) {
  if (!recorded.is_object() || !recorded.contains("exception")) return recorded;
  recorded.erase("debuginfo");
  std::string code = recorded["errorcode"].get<std::string>();
  if (recorded["exception"] == "dml_missing_record_exception" && (code == "invalidrecord" || code == "invaliduser")) {
    recorded["errorcode"] = "invalidrecordunknown";
    recorded["message"] = "Can't find data record in database.";
  }
  return recorded;
}

class Transcript : public ::testing::TestWithParam<std::string> {};

TEST_P(Transcript, AnswersWithTheRecordedShape) {
  const std::string file = GetParam();
  ASSERT_TRUE(fs::is_directory(TranscriptDir()))
      << "ENROLSYNC_SHARED_MOODLE transcripts are missing: " << TranscriptDir();
  const int number = FileNumber(file);
  json t = LoadTranscript(file);
  const bool debug_variant = file.find("-debug-") != std::string::npos;

  Replayer r;
  // 70 was recorded with PHP's default max_input_vars, 71 after raising it.
  int max_vars = number == 71 ? 20000 : 5000;
  bool ws_enabled = t["http_status"].get<int>() != 403;
  ASSERT_NO_FATAL_FAILURE(r.Start(std::to_string(number), ws_enabled, max_vars));
  if (ws_enabled) {
    ASSERT_NO_FATAL_FAILURE(r.Seed());
    for (const std::string& prior : TranscriptFiles()) {
      int n = FileNumber(prior);
      bool needed = n < number && (n <= 66 || (n == 67 && number > 67));
      if (!needed) continue;
      json p = LoadTranscript(prior);
      auto [status, body] = r.Replay(p);
      // A prerequisite behaving differently is that transcript's own failure;
      // note it here so a cascade is easy to trace.
      json exp = json::parse(p["response_body"].get<std::string>(), nullptr, false);
      json act = json::parse(body, nullptr, false);
      bool exp_err = exp.is_object() && exp.contains("exception");
      bool act_err = act.is_object() && act.contains("exception");
      if (exp_err != act_err) {
        std::cerr << "note: prerequisite " << prior << " answered differently: " << body.substr(0, 200) << "\n";
      }
    }
  }

  auto [status, body] = r.Replay(t);
  const std::string rec_body = t["response_body"].get<std::string>();
  SCOPED_TRACE(file + " -> " + body.substr(0, 400));
  ASSERT_EQ(status, t["http_status"].get<int>());
  if (rec_body.empty()) {
    EXPECT_EQ(body, "");
    return;
  }
  if (rec_body == "null") {
    EXPECT_EQ(body, "null");
    return;
  }
  json expected = json::parse(rec_body);
  if (debug_variant) expected = DebugOffExpectation(expected);
  json actual = json::parse(body, nullptr, false);
  ASSERT_FALSE(actual.is_discarded()) << "not JSON: " << body.substr(0, 200);
  if (expected.is_object() && expected.contains("exception")) {
    ASSERT_TRUE(actual.is_object() && actual.contains("exception")) << "expected an error, got " << body.substr(0, 300);
    EXPECT_EQ(actual["exception"], expected["exception"]);
    EXPECT_EQ(actual["errorcode"], expected["errorcode"]);
    EXPECT_EQ(MaskDigits(actual.value("message", "")), MaskDigits(expected["message"].get<std::string>()));
  }
  EXPECT_EQ(ShapeDiff(expected, actual, "$"), "");
}

std::string CaseName(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  if (n.size() > 5 && n.substr(n.size() - 5) == ".json") n = n.substr(0, n.size() - 5);
  for (char& c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return "f" + n;
}

INSTANTIATE_TEST_SUITE_P(Recorded, Transcript, ::testing::ValuesIn(TranscriptFiles()), CaseName);

TEST(ContractTranscripts, AllSeventyTwoRecordedFilesArePresent) {
  ASSERT_TRUE(fs::is_directory(TranscriptDir())) << TranscriptDir();
  auto files = TranscriptFiles();
  EXPECT_EQ(files.size(), 72u);
  EXPECT_EQ(files.front(), "01-core_webservice_get_site_info.json");
  EXPECT_EQ(files.back(), "72-core_webservice_get_site_info-wsdisabled.json");
}

}  // namespace
}  // namespace enrolsync::sandbox
