// Test helper: a real httplib::Server on 127.0.0.1 (any free port) that
// speaks just enough of Moodle's REST endpoint to drive the client, plus a
// loader for the recorded transcripts in ENROLSYNC_SHARED_MOODLE.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "moodle/client.h"

namespace httplib {
class Server;
}

namespace enrolsync::moodle::testing {

// Decodes an application/x-www-form-urlencoded body into ordered fields.
FormFields DecodeForm(const std::string& body);
// The value of the first field named `key`, or "".
std::string FieldValue(const FormFields& fields, const std::string& key);

// Moodle's escaping of names it returns, so a fake answers like real Moodle.
// FormatString: format_string() with the site defaults (filters off,
// formatstringstriptags on): '&' not followed by an entity-like "xxx;"
// becomes "&amp;", tags are stripped, then '<' and '>' become "&lt;"/"&gt;";
// quotes are left alone. S: s(), htmlspecialchars(ENT_QUOTES|ENT_HTML401)
// with already-numeric entities kept ("&#039;" for ').
std::string FormatString(const std::string& raw);
std::string S(const std::string& raw);

// Loads transcripts/<name>.json (name without .json); nullopt if missing.
std::optional<nlohmann::json> LoadTranscript(const std::string& name);

struct SeenRequest {
  std::string path;          // e.g. /webservice/rest/server.php
  std::string restformat;    // moodlewsrestformat from the query string
  std::string content_type;
  std::string body;          // raw form body
  FormFields fields;         // decoded
  std::string function;      // wsfunction
  int remote_port = 0;       // identifies the client's TCP connection
};

struct Reply {
  int status = 200;
  std::string body;
  // Sleep this long before answering (interrupted when the server stops).
  std::chrono::milliseconds delay{0};
};

class FakeMoodle {
 public:
  using Handler = std::function<Reply(const SeenRequest&, int index)>;

  explicit FakeMoodle(Handler handler);
  ~FakeMoodle();
  FakeMoodle(const FakeMoodle&) = delete;
  FakeMoodle& operator=(const FakeMoodle&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

  std::vector<SeenRequest> requests() const;
  std::size_t request_count() const;
  int max_in_flight() const { return max_in_flight_.load(); }
  std::size_t connections() const;  // distinct client ports seen

  void Stop();

 private:
  Handler handler_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<SeenRequest> requests_;
  std::set<int> ports_;
  std::atomic<int> in_flight_{0};
  std::atomic<int> max_in_flight_{0};
};

}  // namespace enrolsync::moodle::testing
