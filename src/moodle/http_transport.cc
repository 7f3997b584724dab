// The real Transport: HTTP(S) POSTs through cpp-httplib, one keep-alive
// connection per concurrent caller, reused across calls.
#include <algorithm>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include <httplib.h>

#include "moodle/client.h"
#include "moodle/wire.h"
#include "util/secrets.h"
#include "util/strings.h"

namespace enrolsync::moodle {
namespace {

struct SiteUrl {
  std::string scheme_host_port;  // "https://moodle.school.test:443"
  std::string host;              // for messages
  std::string path;              // "" or "/moodle" (no trailing slash)
  bool tls = false;
};

Result<SiteUrl> ParseSiteUrl(const std::string& url) {
  SiteUrl out;
  std::string_view rest = url;
  if (rest.substr(0, 8) == "https://") {
    out.tls = true;
    rest.remove_prefix(8);
  } else if (rest.substr(0, 7) == "http://") {
    rest.remove_prefix(7);
  } else {
    return Fail(ErrorCode::kConfig,
                "Moodle url '" + Redact(url) + "' must start with https:// (or http:// for a local test site)");
  }
  std::size_t slash = rest.find('/');
  std::string hostport(rest.substr(0, slash));
  if (hostport.empty() || hostport.find_first_of("?#@ ") != std::string::npos) {
    return Fail(ErrorCode::kConfig, "Moodle url '" + Redact(url) + "' has no valid host");
  }
  std::string path = slash == std::string_view::npos ? std::string() : std::string(rest.substr(slash));
  if (path.find_first_of("?#") != std::string::npos) {
    return Fail(ErrorCode::kConfig, "Moodle url '" + Redact(url) + "' must be the site root, without ? or #");
  }
  while (!path.empty() && path.back() == '/') path.pop_back();
  out.scheme_host_port = (out.tls ? "https://" : "http://") + hostport;
  out.host = hostport;
  out.path = path;
  return out;
}

class HttpTransport : public Transport {
 public:
  explicit HttpTransport(const ClientOptions& options) : options_(options) {
    RegisterSecret(options_.token);
    auto site = ParseSiteUrl(options_.url);
    if (site) {
      site_ = *site;
    } else {
      url_error_ = site.error();
    }
  }

  Result<std::string> Post(std::string_view function, const FormFields& params) override {
    const std::string fn(function);
    if (url_error_) return Fail(url_error_->Wrap(fn));
    std::string body = wire::EncodeBody(options_.token, function, params);
    std::unique_ptr<httplib::Client> conn = Acquire();
    if (!conn->is_valid()) return Fail(ErrorCode::kConfig, Redact(fn + ": cannot use Moodle url " + options_.url));
    httplib::Headers headers = {{"Accept", "application/json"}, {"User-Agent", "enrolsync"}};
    const auto sent_at = std::chrono::steady_clock::now();
    httplib::Result res = conn->Post(site_.path + std::string(wire::kEndpoint), headers, body,
                                     "application/x-www-form-urlencoded");
    body.clear();
    if (!res) {  // the connection is dropped, not reused
      return Fail(Classify(fn, res.error(), std::chrono::steady_clock::now() - sent_at));
    }
    const int status = res->status;
    std::string answer = std::move(res->body);
    Release(std::move(conn));
    if (status == 200) return answer;
    const std::string http = fn + ": " + site_.host + " answered HTTP " + std::to_string(status);
    if (status == 403) {
      // Moodle answers 403 with an empty body when web services are disabled
      // site-wide; any other 403 (a proxy, a WAF) is still a refusal.
      return Fail(ErrorCode::kAuth, answer.empty() ? fn + ": web services are disabled on the site (HTTP 403)"
                                                   : fn + ": access refused by " + site_.host + " (HTTP 403)");
    }
    // Only 502, 503 and 504 are worth sending again. 503: the server refused
    // it before Moodle ran. 502/504: a proxy in front of Moodle got no
    // (timely) answer from it; Moodle may still have applied it.
    if (status == 503) return Fail(TransportError(ErrorCode::kTransient, TransportFailure::kUnavailable, http));
    if (status == 502 || status == 504)
      return Fail(TransportError(ErrorCode::kTransient, TransportFailure::kGateway,
                                 http + " (a proxy got no answer from Moodle; Moodle may have applied it)"));
    // Moodle answers its own errors with HTTP 200. A 500 is PHP dying inside
    // Moodle (a fatal error: memory_limit, max_execution_time, a broken
    // plugin) after it may have written some of the call; the same call dies
    // the same way again, so it is not retried.
    if (status == 500)
      return Fail(TransportError(ErrorCode::kIo, TransportFailure::kServerError,
                                 http + " (a PHP fatal error on the site, such as a memory or time limit: see its web "
                                        "server's error log; Moodle may have applied part of it); not retried"));
    if (status > 500)
      return Fail(TransportError(ErrorCode::kIo, TransportFailure::kServerError, http + "; not retried"));
    return Fail(TransportError(ErrorCode::kIo, TransportFailure::kServerError, http +
                                    " (is the url the Moodle site root?)"));
  }

 private:
  std::unique_ptr<httplib::Client> Acquire() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        auto conn = std::move(idle_.back());
        idle_.pop_back();
        return conn;
      }
    }
    auto conn = std::make_unique<httplib::Client>(site_.scheme_host_port);
    conn->set_keep_alive(true);
    conn->set_tcp_nodelay(true);  // headers and body go out in separate writes
    const auto timeout = std::max<std::chrono::seconds>(options_.timeout, std::chrono::seconds(1));
    conn->set_connection_timeout(std::min<std::chrono::seconds>(timeout, std::chrono::seconds(30)));
    conn->set_read_timeout(timeout);
    conn->set_write_timeout(timeout);
    conn->set_follow_location(false);
    if (site_.tls) {
      conn->enable_server_certificate_verification(true);
      if (!options_.ca_file.empty()) conn->set_ca_cert_path(options_.ca_file);
    }
    return conn;
  }

  void Release(std::unique_ptr<httplib::Client> conn) {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(std::move(conn));
  }

  // cpp-httplib 0.11 (ClientImpl::send / process_request): Connection,
  // ConnectionTimeout and BindIPAddress come from connecting, SSLConnection
  // and the certificate errors from the TLS handshake, Write from sending the
  // request line, headers or body (a request Moodle never got whole): in
  // each, nothing ran in Moodle. Read means the whole request was sent and
  // the answer did not come (the read timeout, or the connection closed or
  // reset): Moodle may have applied it. Canceled and Unknown are taken as
  // "may have applied" too.
  Error Classify(const std::string& fn, httplib::Error err, std::chrono::steady_clock::duration took) const {
    const std::string detail = httplib::to_string(err);
    const auto timeout = std::max<std::chrono::seconds>(options_.timeout, std::chrono::seconds(1));
    const std::string secs = std::to_string(timeout.count());
    auto error = [&](ErrorCode code, TransportFailure kind, const std::string& text) {
      return TransportError(code, kind, Redact(fn + ": " + text));
    };
    switch (err) {
      case httplib::Error::Connection:
      case httplib::Error::ConnectionTimeout:
      case httplib::Error::BindIPAddress:
        return error(ErrorCode::kTransient, TransportFailure::kConnect,
                     "cannot connect to " + site_.host + " (" + detail + ")");
      case httplib::Error::Write:
        return error(ErrorCode::kTransient, TransportFailure::kConnect,
                     "connection to " + site_.host + " dropped while sending the request (not applied)");
      case httplib::Error::Read:
        // The read timeout ends a wait of `timeout`; anything much sooner is
        // the server closing or resetting the connection.
        if (took + std::chrono::milliseconds(200) >= timeout)
          return error(ErrorCode::kTransient, TransportFailure::kTimeout,
                       "no answer from " + site_.host + " within " + secs +
                           " s (read timeout); Moodle may have applied it");
        return error(ErrorCode::kTransient, TransportFailure::kDropped,
                     "connection to " + site_.host + " dropped after the request was sent; Moodle may have applied it");
      case httplib::Error::SSLConnection:
        return error(ErrorCode::kIo, TransportFailure::kConnect,
                     "TLS handshake with " + site_.host +
                         " failed (does it speak TLS on this port, with a protocol and cipher OpenSSL accepts?); "
                         "not retried");
      case httplib::Error::SSLServerVerification:
        return error(ErrorCode::kIo, TransportFailure::kConnect,
                     "the TLS certificate of " + site_.host +
                         " could not be verified (set ca_file to the site's CA bundle)");
      case httplib::Error::SSLLoadingCerts:
        return error(ErrorCode::kConfig, TransportFailure::kConnect,
                     "cannot load CA certificates" + (options_.ca_file.empty()
                                                          ? std::string(" from the system store")
                                                          : " from '" + options_.ca_file + "'"));
      default:
        return error(ErrorCode::kTransient, TransportFailure::kDropped,
                     "request to " + site_.host + " failed (" + detail + "); Moodle may have applied it");
    }
  }

  ClientOptions options_;
  SiteUrl site_;
  std::optional<Error> url_error_;
  std::mutex mu_;
  std::vector<std::unique_ptr<httplib::Client>> idle_;
};

}  // namespace

std::unique_ptr<Transport> MakeHttpTransport(const ClientOptions& options) {
  return std::make_unique<HttpTransport>(options);
}

}  // namespace enrolsync::moodle
