#include "log/log.h"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "util/secrets.h"

namespace enrolsync {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kLogrotate = "/usr/sbin/logrotate";

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

struct CommandResult {
  int status = -1;
  std::string output;
};

// Runs `cmd` through /bin/sh, capturing stdout+stderr.
CommandResult RunCommand(const std::string& cmd) {
  CommandResult r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  r.status = ::pclose(p);
  return r;
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

std::string ShippedSnippetPath() {
  return std::string(ENROLSYNC_SOURCE_DIR) + "/packaging/logrotate/enrolsync";
}

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/enrolsync-log-test-XXXXXX";  // mkdtemp: 0700, as logrotate wants
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    InstallReopenSignal(SIGUSR1);
  }
  void TearDown() override {
    CloseLog();
    SetRunId("");
    ClearSecretsForTesting();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // The shipped logrotate snippet with the path pointed at dir_, the owner
  // set to the test user, and a postrotate that signals this process.
  std::string TestConfig() {
    std::string user = std::to_string(::geteuid());
    std::string group = std::to_string(::getegid());
    if (struct passwd* pw = ::getpwuid(::geteuid())) user = pw->pw_name;
    if (struct group* gr = ::getgrgid(::getegid())) group = gr->gr_name;

    std::string shipped = ReadFile(ShippedSnippetPath());
    EXPECT_FALSE(shipped.empty()) << ShippedSnippetPath();
    std::string out;
    int paths = 0, creates = 0, scripts = 0;
    bool in_postrotate = false;
    for (const std::string& line : Lines(shipped)) {
      std::string t = line.substr(std::min(line.find_first_not_of(" \t"), line.size()));
      if (in_postrotate && t != "endscript") {
        if (!t.empty() && t[0] != '#') {
          out += "        kill -USR1 " + std::to_string(::getpid()) + "\n";
          ++scripts;
        }
        continue;
      }
      if (t.rfind("/var/log/enrolsync/*.log", 0) == 0) {
        out += dir_.string() + "/*.log" + t.substr(std::strlen("/var/log/enrolsync/*.log")) + "\n";
        ++paths;
      } else if (t.rfind("create ", 0) == 0) {
        out += "    create 0640 " + user + " " + group + "\n";
        out += "    su " + user + " " + group + "\n";
        ++creates;
      } else {
        out += line + "\n";
      }
      if (t == "postrotate") in_postrotate = true;
      if (t == "endscript") in_postrotate = false;
    }
    EXPECT_EQ(paths, 1) << shipped;
    EXPECT_EQ(creates, 1) << shipped;
    EXPECT_EQ(scripts, 1) << shipped;
    return out;
  }

  // Runs the real logrotate --force on the test config; returns its output.
  std::string RunLogrotate() {
    fs::path conf = dir_ / "logrotate.conf";
    if (!fs::exists(conf)) WriteFile(conf, TestConfig());
    CommandResult r = RunCommand(std::string(kLogrotate) + " --force -s " + Quote((dir_ / "state").string()) +
                          " " + Quote(conf.string()));
    EXPECT_EQ(r.status, 0) << r.output;
    return r.output;
  }

  fs::path dir_;
};

TEST_F(LogTest, LinesCarryTimestampLevelAndRunId) {
  // A half-hour offset shows the +HH:MM formatting.
  const char* old_tz = ::getenv("TZ");
  std::string saved = old_tz ? old_tz : "";
  ::setenv("TZ", "XST-05:30", 1);
  ::tzset();

  fs::path file = dir_ / "enrolsync.log";
  ASSERT_TRUE(InitLog({.file = file.string(), .format = "text", .level = "info"}));
  SetRunId("r42");
  LogInfo("hello there");
  LogWarn("first\nsecond\n");
  LogDebug("not at info level");
  LogError("bad");
  SetRunId("");
  LogInfo("outside a run");

  if (old_tz) ::setenv("TZ", saved.c_str(), 1);
  else ::unsetenv("TZ");
  ::tzset();

  std::string text = ReadFile(file);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  std::vector<std::string> lines = Lines(text);
  ASSERT_EQ(lines.size(), 5u) << text;
  const std::string ts = R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+05:30)";
  EXPECT_TRUE(std::regex_match(lines[0], std::regex(ts + R"( INFO  \[run r42\] hello there)"))) << lines[0];
  EXPECT_TRUE(std::regex_match(lines[1], std::regex(ts + R"( WARN  \[run r42\] first)"))) << lines[1];
  EXPECT_TRUE(std::regex_match(lines[2], std::regex(ts + R"( WARN  \[run r42\] second)"))) << lines[2];
  EXPECT_TRUE(std::regex_match(lines[3], std::regex(ts + R"( ERROR \[run r42\] bad)"))) << lines[3];
  EXPECT_TRUE(std::regex_match(lines[4], std::regex(ts + R"( INFO  outside a run)"))) << lines[4];

  struct stat st;
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  mode_t mask = ::umask(0);
  ::umask(mask);
  EXPECT_EQ(st.st_mode & 0777, 0640u & ~mask) << "log file is created 0640 (less the umask)";
}

// The multi-site daemon: each thread bound to its own sink writes only to its
// file, with its own level, format and run id; the process-wide log is left
// alone; SIGUSR1 then ProcessReopenAll() moves every sink to a fresh file.
TEST_F(LogTest, ThreadsBoundToTheirOwnSinksWriteOnlyToTheirFiles) {
  fs::path main_file = dir_ / "main.log";
  ASSERT_TRUE(InitLog({.file = main_file.string()}));
  fs::path a = dir_ / "a.log", b = dir_ / "b.log";
  auto sa = OpenLogSink({.file = a.string(), .format = "text", .level = "debug"});
  auto sb = OpenLogSink({.file = b.string(), .format = "json", .level = "warn", .site = "b"});
  ASSERT_TRUE(sa && sb);
  auto bad = OpenLogSink({.file = (dir_ / "no" / "x.log").string()});
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr("no/x.log"));
  auto write = [](std::shared_ptr<LogSink> sink, const std::string& name) {
    ScopedLogSink bound(std::move(sink));
    SetRunId("r-" + name);
    for (int i = 0; i < 200; ++i) {
      LogDebug("debug " + name);
      LogWarn("warn " + name + " " + std::to_string(i));
    }
    SetRunId("");
  };
  std::thread ta(write, *sa, "a"), tb(write, *sb, "b");
  LogInfo("main line");
  ta.join();
  tb.join();
  std::string at = ReadFile(a), bt = ReadFile(b), mt = ReadFile(main_file);
  EXPECT_EQ(Lines(at).size(), 400u);
  EXPECT_THAT(at, HasSubstr("[run r-a] debug a"));
  EXPECT_THAT(at, Not(HasSubstr(" b")));
  auto bl = Lines(bt);
  ASSERT_EQ(bl.size(), 200u) << "b is at level warn";
  auto j = nlohmann::json::parse(bl[0]);
  EXPECT_EQ(j["site"], "b");
  EXPECT_EQ(j["run"], "r-b");
  EXPECT_EQ(Lines(mt).size(), 1u);
  EXPECT_THAT(mt, HasSubstr("INFO  main line"));

  // Rotation of every file: rename, signal, reopen.
  for (const auto& f : {a, b, main_file}) fs::rename(f, f.string() + ".1");
  ::raise(SIGUSR1);
  ProcessReopenAll();
  for (const auto& f : {a, b, main_file}) EXPECT_TRUE(fs::exists(f)) << f;
  {
    ScopedLogSink bound(*sb);
    LogError("after rotation");
  }
  EXPECT_THAT(ReadFile(b), HasSubstr("after rotation"));
  EXPECT_THAT(ReadFile(b.string() + ".1"), Not(HasSubstr("after rotation")));
}

TEST_F(LogTest, JsonFormatGivesOneValidObjectPerLine) {
  fs::path file = dir_ / "enrolsync.log";
  ASSERT_TRUE(InitLog({.file = file.string(), .format = "json", .level = "debug"}));
  SetRunId("r7");
  LogDebug("plain");
  LogInfo("multi\nline \"quoted\" back\\slash\ttab");
  LogWarn(std::string("control \x01 and bad utf-8 \xff\xfe end"));
  SetRunId("");
  LogError("héllo ✓");

  std::vector<std::string> lines = Lines(ReadFile(file));
  ASSERT_EQ(lines.size(), 4u);
  std::vector<nlohmann::json> objs;
  for (const auto& line : lines) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(j.is_discarded()) << line;
    ASSERT_TRUE(j.is_object()) << line;
    for (const char* key : {"ts", "level", "run", "msg"}) {
      ASSERT_TRUE(j.contains(key) && j[key].is_string()) << key << " in " << line;
    }
    EXPECT_TRUE(std::regex_match(j["ts"].get<std::string>(),
                                 std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2})")))
        << line;
    objs.push_back(j);
  }
  EXPECT_EQ(objs[0]["level"], "debug");
  EXPECT_EQ(objs[0]["run"], "r7");
  EXPECT_EQ(objs[0]["msg"], "plain");
  EXPECT_EQ(objs[1]["level"], "info");
  EXPECT_EQ(objs[1]["msg"], "multi\nline \"quoted\" back\\slash\ttab");
  EXPECT_EQ(objs[2]["level"], "warn");
  EXPECT_THAT(objs[2]["msg"].get<std::string>(), HasSubstr("control \x01 and bad utf-8"));
  EXPECT_EQ(objs[3]["level"], "error");
  EXPECT_EQ(objs[3]["run"], "");
  EXPECT_EQ(objs[3]["msg"], "héllo ✓");
}

TEST_F(LogTest, SecretsAreRedactedInEveryLine) {
  const std::string secret = "tok-9f8e7d6c5b4a";
  const std::string password = "p@ss word!";  // URL-encoded: p%40ss+word%21
  RegisterSecret(secret);
  RegisterSecret(password);
  for (const char* format : {"text", "json"}) {
    SCOPED_TRACE(format);
    fs::path file = dir_ / (std::string(format) + ".log");
    ASSERT_TRUE(InitLog({.file = file.string(), .format = format, .level = "debug"}));
    SetRunId("run-" + secret);
    LogInfo("token=" + secret);
    LogDebug("line one\nwstoken=" + secret + "&x=1\npassword=p%40ss+word%21");
    LogError("db password " + password + " rejected");
    std::string text = ReadFile(file);
    EXPECT_THAT(text, Not(HasSubstr(secret)));
    EXPECT_THAT(text, Not(HasSubstr(password)));
    EXPECT_THAT(text, Not(HasSubstr("p%40ss+word%21")));
    for (const auto& line : Lines(text)) {
      EXPECT_THAT(line, HasSubstr("[REDACTED]")) << line;
    }
  }
}

TEST_F(LogTest, UnwritableLogFileIsAClearError) {
  fs::path good = dir_ / "good.log";
  ASSERT_TRUE(InitLog({.file = good.string()}));

  fs::path missing_dir = dir_ / "no-such-dir" / "enrolsync.log";
  auto st = InitLog({.file = missing_dir.string()});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kIo);
  EXPECT_THAT(st.error().message, HasSubstr(missing_dir.string()));
  EXPECT_THAT(st.error().message, HasSubstr("No such file or directory"));
  EXPECT_FALSE(fs::exists(dir_ / "no-such-dir")) << "the parent directory must not be created";

  auto st2 = InitLog({.file = dir_.string()});  // a directory
  ASSERT_FALSE(st2);
  EXPECT_EQ(st2.error().code, ErrorCode::kIo);
  EXPECT_THAT(st2.error().message, HasSubstr(dir_.string()));

  auto bad_format = InitLog({.file = good.string(), .format = "xml"});
  ASSERT_FALSE(bad_format);
  EXPECT_EQ(bad_format.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(bad_format.error().message, HasSubstr("xml"));
  auto bad_level = InitLog({.file = good.string(), .level = "loud"});
  ASSERT_FALSE(bad_level);
  EXPECT_THAT(bad_level.error().message, HasSubstr("loud"));

  // The failed calls left the working configuration in place.
  LogInfo("still here");
  EXPECT_THAT(ReadFile(good), HasSubstr("still here"));
}

TEST_F(LogTest, KeepsFiftyTwo) {
  std::string text = ReadFile(ShippedSnippetPath());
  ASSERT_FALSE(text.empty()) << ShippedSnippetPath();
  std::vector<std::string> directives;
  bool in_block = false, in_script = false;
  std::string header, script;
  for (const std::string& raw : Lines(text)) {
    std::size_t b = raw.find_first_not_of(" \t");
    if (b == std::string::npos || raw[b] == '#') continue;
    std::string t = raw.substr(b);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.pop_back();
    if (in_script) {
      if (t == "endscript") in_script = false;
      else script += t + "\n";
      continue;
    }
    if (!in_block) {
      ASSERT_EQ(t.back(), '{') << t;
      header = t.substr(0, t.size() - 1);
      in_block = true;
      continue;
    }
    if (t == "}") {
      in_block = false;
      continue;
    }
    if (t == "postrotate") in_script = true;
    directives.push_back(t);
  }
  EXPECT_FALSE(in_block);
  EXPECT_THAT(header, HasSubstr("/var/log/enrolsync/*.log"));
  EXPECT_THAT(directives, ::testing::UnorderedElementsAre(
                              "weekly", "rotate 52", "compress", "delaycompress", "notifempty",
                              "missingok", "create 0640 enrolsync enrolsync", "sharedscripts",
                              "postrotate"));
  EXPECT_THAT(script, HasSubstr("systemctl kill -s USR1 enrolsync.service"));
  EXPECT_THAT(script, HasSubstr("pkill -USR1 -x enrolsync"));
  EXPECT_THAT(script, HasSubstr("|| true"));
}

TEST_F(LogTest, EmptyLogIsNotRotated) {
  ASSERT_TRUE(fs::exists(kLogrotate)) << "install logrotate (scripts/install-deps.sh)";
  fs::path file = dir_ / "enrolsync.log";
  ASSERT_TRUE(InitLog({.file = file.string()}));
  ASSERT_TRUE(fs::exists(file));
  ASSERT_EQ(fs::file_size(file), 0u);

  std::string out = RunLogrotate();
  EXPECT_FALSE(fs::exists(dir_ / "enrolsync.log.1")) << out;
  EXPECT_TRUE(fs::exists(file));

  // The same config does rotate once there is something in the file.
  LogInfo("now there is a line");
  out = RunLogrotate();
  EXPECT_TRUE(fs::exists(dir_ / "enrolsync.log.1")) << out;
  EXPECT_THAT(ReadFile(dir_ / "enrolsync.log.1"), HasSubstr("now there is a line"));
}

TEST_F(LogTest, RotationWithTheShippedPolicyKeepsEveryLine) {
  ASSERT_TRUE(fs::exists(kLogrotate)) << "install logrotate (scripts/install-deps.sh)";
  constexpr int kMinLines = 20000;
  constexpr int kRotations = 6;
  fs::path file = dir_ / "enrolsync.log";
  ASSERT_TRUE(InitLog({.file = file.string(), .format = "text", .level = "info"}));
  SetRunId("rot");

  std::atomic<int> written{0};
  std::atomic<bool> rotations_done{false};
  // Keeps writing until every rotation happened, so each one races a writer.
  std::thread writer([&] {
    char buf[32];
    for (int i = 0; !(rotations_done.load() && i >= kMinLines); ++i) {
      std::snprintf(buf, sizeof buf, "line %07d", i);
      LogInfo(buf);
      written.store(i + 1);
      if (i % 50 == 49) std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  });
  // An ASSERT below returns early; still stop and join the writer.
  struct Joiner {
    std::thread& t;
    std::atomic<bool>& done;
    ~Joiner() {
      done.store(true);
      if (t.joinable()) t.join();
    }
  } joiner{writer, rotations_done};

  std::string outputs;
  for (int r = 1; r <= kRotations; ++r) {
    int threshold = r * kMinLines / (kRotations + 1);
    while (written.load() < threshold) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    outputs += RunLogrotate();
    // The postrotate signalled us; wait until the writer uses the new file,
    // as the daemon would long before the next weekly rotation.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    std::error_code ec;
    while (!(fs::exists(file, ec) && fs::file_size(file, ec) > 0) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_GT(fs::file_size(file, ec), 0u) << "writer never reopened after rotation " << r;
  }
  rotations_done.store(true);
  writer.join();
  const int total = written.load();
  ASSERT_GE(total, kMinLines);

  // delaycompress: the newest rotated file is plain; older ones are gzip.
  ASSERT_TRUE(fs::exists(dir_ / "enrolsync.log.1")) << outputs;
  EXPECT_FALSE(fs::exists(dir_ / "enrolsync.log.1.gz"));
  std::vector<std::string> contents;  // oldest first
  for (int n = kRotations; n >= 2; --n) {
    fs::path gz = dir_ / ("enrolsync.log." + std::to_string(n) + ".gz");
    ASSERT_TRUE(fs::exists(gz)) << gz << "\n" << outputs;
    EXPECT_FALSE(fs::exists(dir_ / ("enrolsync.log." + std::to_string(n))));
    CommandResult test = RunCommand("gzip -t " + Quote(gz.string()));
    ASSERT_EQ(test.status, 0) << gz << ": " << test.output;
    CommandResult unzipped = RunCommand("gzip -dc " + Quote(gz.string()));
    ASSERT_EQ(unzipped.status, 0) << gz;
    contents.push_back(unzipped.output);
  }
  EXPECT_FALSE(fs::exists(dir_ / ("enrolsync.log." + std::to_string(kRotations + 1) + ".gz")));
  contents.push_back(ReadFile(dir_ / "enrolsync.log.1"));
  contents.push_back(ReadFile(file));

  const std::regex line_re(
      R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2} INFO  \[run rot\] line (\d{7}))");
  int next = 0;
  for (std::size_t f = 0; f < contents.size(); ++f) {
    const std::string& c = contents[f];
    EXPECT_FALSE(c.empty()) << "file #" << f << " (oldest first) is empty";
    if (c.empty()) continue;
    EXPECT_EQ(c.back(), '\n') << "file #" << f << " ends in a partial line";
    for (const std::string& line : Lines(c)) {
      std::smatch m;
      ASSERT_TRUE(std::regex_match(line, m, line_re)) << "split or garbled line in file #" << f
                                                      << ": " << line;
      int n = std::stoi(m[1].str());
      ASSERT_EQ(n, next) << "file #" << f << ": lines lost, duplicated or out of order";
      ++next;
    }
  }
  EXPECT_EQ(next, total);
}

}  // namespace
}  // namespace enrolsync
