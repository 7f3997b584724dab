#include "moodle/testing/fake_moodle.h"

#include <cctype>
#include <fstream>
#include <sstream>

#include <httplib.h>

#include "util/strings.h"

namespace enrolsync::moodle::testing {

FormFields DecodeForm(const std::string& body) {
  FormFields out;
  if (body.empty()) return out;
  for (const auto& pair : Split(body, '&')) {
    auto eq = pair.find('=');
    if (eq == std::string::npos) {
      out.emplace_back(UrlDecode(pair), "");
    } else {
      out.emplace_back(UrlDecode(pair.substr(0, eq)), UrlDecode(pair.substr(eq + 1)));
    }
  }
  return out;
}

std::string FieldValue(const FormFields& fields, const std::string& key) {
  for (const auto& [k, v] : fields) {
    if (k == key) return v;
  }
  return {};
}

namespace {
bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
}  // namespace

std::string FormatString(const std::string& raw) {
  // replace_ampersands_not_followed_by_entity(): /&(?![a-zA-Z0-9#]{1,8};)/.
  std::string amp;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '&') {
      amp += raw[i];
      continue;
    }
    std::size_t j = i + 1;
    while (j < raw.size() && j - i <= 8 && (IsAlnum(raw[j]) || raw[j] == '#')) ++j;
    bool entity = j > i + 1 && j - i - 1 <= 8 && j < raw.size() && raw[j] == ';';
    amp += entity ? "&" : "&amp;";
  }
  // strip_tags(): '<' followed by a letter, '/', '!' or '?' opens a tag up to '>'.
  std::string stripped;
  for (std::size_t i = 0; i < amp.size(); ++i) {
    char n = i + 1 < amp.size() ? amp[i + 1] : '\0';
    if (amp[i] == '<' && (std::isalpha(static_cast<unsigned char>(n)) || n == '/' || n == '!' || n == '?')) {
      std::size_t close = amp.find('>', i);
      if (close == std::string::npos) break;  // an unclosed tag eats the rest
      i = close;
      continue;
    }
    stripped += amp[i];
  }
  std::string out;
  for (char c : stripped) {
    if (c == '<') {
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else {
      out += c;
    }
  }
  return out;
}

std::string S(const std::string& raw) {
  std::string out;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    switch (c) {
      case '&': {
        // s() turns "&amp;#123;" back into "&#123;": numeric entities survive.
        std::size_t j = i + 1;
        bool numeric = j < raw.size() && raw[j] == '#';
        if (numeric) {
          std::size_t k = j + 1;
          if (k < raw.size() && (raw[k] == 'x' || raw[k] == 'X')) ++k;
          std::size_t d = k;
          while (k < raw.size() && IsAlnum(raw[k])) ++k;
          numeric = k > d && k < raw.size() && raw[k] == ';';
        }
        out += numeric ? "&" : "&amp;";
        break;
      }
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#039;"; break;
      default: out += c;
    }
  }
  return out;
}

std::optional<nlohmann::json> LoadTranscript(const std::string& name) {
  std::ifstream in(std::string(ENROLSYNC_SHARED_MOODLE) + "/transcripts/" + name + ".json");
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  auto doc = nlohmann::json::parse(ss.str(), nullptr, false);
  if (doc.is_discarded()) return std::nullopt;
  return doc;
}

FakeMoodle::FakeMoodle(Handler handler) : handler_(std::move(handler)), server_(std::make_unique<httplib::Server>()) {
  server_->set_keep_alive_max_count(100000);
  server_->set_keep_alive_timeout(2);  // bounds Stop() while a client keeps a connection open
  server_->set_tcp_nodelay(true);
  // A content-reader handler: httplib refuses form-urlencoded bodies over
  // CPPHTTPLIB_FORM_URL_ENCODED_PAYLOAD_MAX_LENGTH (8 KiB) with HTTP 413
  // unless the handler reads the body itself.
  server_->Post("/webservice/rest/server.php", [this](const httplib::Request& req, httplib::Response& res,
                                                      const httplib::ContentReader& reader) {
    std::string body;
    reader([&](const char* data, std::size_t len) {
      body.append(data, len);
      return true;
    });
    int now = ++in_flight_;
    int prev = max_in_flight_.load();
    while (now > prev && !max_in_flight_.compare_exchange_weak(prev, now)) {
    }
    SeenRequest seen;
    seen.path = req.path;
    seen.restformat = req.has_param("moodlewsrestformat") ? req.get_param_value("moodlewsrestformat") : "";
    seen.content_type = req.get_header_value("Content-Type");
    seen.body = body;
    seen.fields = DecodeForm(body);
    seen.function = FieldValue(seen.fields, "wsfunction");
    seen.remote_port = req.remote_port;
    int index;
    {
      std::lock_guard<std::mutex> lock(mu_);
      index = static_cast<int>(requests_.size());
      requests_.push_back(seen);
      ports_.insert(req.remote_port);
    }
    Reply reply = handler_(seen, index);
    if (reply.delay.count() > 0) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, reply.delay, [this] { return stopping_; });
    }
    res.status = reply.status;
    res.set_content(reply.body, "application/json");
    --in_flight_;
  });
  port_ = server_->bind_to_any_port("127.0.0.1");
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  for (int i = 0; i < 5000 && !server_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

FakeMoodle::~FakeMoodle() { Stop(); }

void FakeMoodle::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    server_->stop();
    thread_.join();
  }
}

std::vector<SeenRequest> FakeMoodle::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

std::size_t FakeMoodle::request_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_.size();
}

std::size_t FakeMoodle::connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ports_.size();
}

}  // namespace enrolsync::moodle::testing
