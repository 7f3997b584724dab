// The LDAP / Active Directory source over libldap (OpenLDAP's client
// library). One connection per read: bind, then every context is searched
// with RFC 2696 paged results. Any failure fails the whole read; a partial
// directory is never returned, because users missing from it would look like
// users who left.
#include "sources/ldap/ldap_directory.h"

#include <ldap.h>
#include <signal.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "sources/username.h"
#include "util/secrets.h"
#include "util/strings.h"

namespace enrolsync::sources {
namespace ldap_internal {
namespace {

constexpr int kDefaultTimeoutSeconds = 30;
// Active Directory's default MaxPageSize (LDAP policy): a larger page size is
// silently cut to 1000 by AD, so ask for at most that.
constexpr int kAdMaxPageSize = 1000;
constexpr long long kAdAccountDisable = 0x2;

// libldap writes to the socket with write(2): if the server has gone away
// that raises SIGPIPE, whose default action kills the process. Block it in
// this thread for the duration of a read and swallow one that arrived.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGPIPE);
    blocked_ = pthread_sigmask(SIG_BLOCK, &block, &old_) == 0;
  }
  ~SigpipeGuard() {
    if (!blocked_) return;
    if (!was_pending_) {
      sigset_t pending;
      sigemptyset(&pending);
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        sigset_t pipe_only;
        sigemptyset(&pipe_only);
        sigaddset(&pipe_only, SIGPIPE);
        timespec zero{0, 0};
        int saved = errno;
        while (sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
        }
        errno = saved;
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t old_;
  bool blocked_ = false;
  bool was_pending_ = false;
};

struct LdapDeleter {
  void operator()(LDAP* ld) const { ldap_unbind_ext_s(ld, nullptr, nullptr); }
};
using LdapHandle = std::unique_ptr<LDAP, LdapDeleter>;

struct MessageDeleter {
  void operator()(LDAPMessage* m) const { ldap_msgfree(m); }
};
using MessagePtr = std::unique_ptr<LDAPMessage, MessageDeleter>;

struct ControlDeleter {
  void operator()(LDAPControl* c) const { ldap_control_free(c); }
};
struct ControlsDeleter {
  void operator()(LDAPControl** c) const { ldap_controls_free(c); }
};

std::string DiagnosticMessage(LDAP* ld) {
  if (ld == nullptr) return "";
  char* diag = nullptr;
  if (ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag) != LDAP_OPT_SUCCESS || diag == nullptr) {
    return "";
  }
  std::string out = Trim(diag);
  ldap_memfree(diag);
  return out;
}

// "No such object (32)", plus the server's or library's diagnostic text.
std::string Describe(LDAP* ld, int rc) {
  std::string out = std::string(ldap_err2string(rc)) + " (" + std::to_string(rc) + ")";
  std::string diag = DiagnosticMessage(ld);
  if (!diag.empty()) out += ": " + diag;
  return out;
}

bool LooksLikeTlsFailure(const std::string& text) {
  std::string lower = ToLower(text);
  return lower.find("certificate") != std::string::npos || lower.find("tls") != std::string::npos ||
         lower.find("ssl") != std::string::npos;
}

// Connection loss, timeouts and a busy server are worth retrying; a TLS
// failure (an untrusted certificate shows up as "Can't contact LDAP
// server") is not.
ErrorCode Classify(int rc, const std::string& description, ErrorCode otherwise) {
  switch (rc) {
    case LDAP_SERVER_DOWN:
    case LDAP_TIMEOUT:
    case LDAP_TIMELIMIT_EXCEEDED:
    case LDAP_BUSY:
    case LDAP_UNAVAILABLE:
      return LooksLikeTlsFailure(description) ? ErrorCode::kSource : ErrorCode::kTransient;
    default:
      return otherwise;
  }
}

Error MakeError(ErrorCode code, const std::string& message) {
  return Error{code, Redact(message), {}, {}};
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && IEquals(s.substr(0, prefix.size()), prefix);
}

bool AnyLdapsUrl(const std::string& urls) {
  for (const auto& part : Split(urls, ' ')) {
    for (const auto& url : Split(part, ',')) {
      if (StartsWithNoCase(Trim(url), "ldaps://")) return true;
    }
  }
  return false;
}

std::optional<long long> ParseSignedInt(const std::string& s) {
  if (s.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

// One read: a bound connection and what has been collected so far.
class DirectoryReader {
 public:
  DirectoryReader(const LdapSettings& settings, const ReadHooks& hooks)
      : s_(settings), hooks_(hooks), ad_(IEquals(settings.user_type, "ad")) {}

  Result<DirectoryRead> Run() {
    if (auto ok = Validate(); !ok) return Fail(ok.error());
    if (auto ok = Connect(); !ok) return Fail(ok.error());
    BuildAttributes();
    for (const auto& context : s_.contexts) {
      if (auto ok = SearchContext(context); !ok) return Fail(ok.error());
    }
    std::sort(read_.users.begin(), read_.users.end(),
              [](const DirectoryUser& a, const DirectoryUser& b) { return a.username < b.username; });
    return std::move(read_);
  }

 private:
  Status Validate() const {
    if (Trim(s_.url).empty()) return Fail(ErrorCode::kConfig, "LDAP url is empty");
    if (s_.contexts.empty()) return Fail(ErrorCode::kConfig, "no LDAP contexts to search");
    for (const auto& c : s_.contexts) {
      if (Trim(c).empty()) return Fail(ErrorCode::kConfig, "an LDAP context is empty");
    }
    if (Trim(s_.user_attribute).empty()) return Fail(ErrorCode::kConfig, "LDAP user_attribute is empty");
    if (!IEquals(s_.user_type, "default") && !IEquals(s_.user_type, "ad")) {
      return Fail(ErrorCode::kConfig,
                  "LDAP user_type \"" + s_.user_type + "\" is not one of: default, ad");
    }
    // An empty password with a DN is an "unauthenticated bind" (RFC 4513
    // 5.1.2) that some servers accept as anonymous: the read would quietly
    // see less.
    if (!s_.bind_dn.empty() && s_.bind_password.empty()) {
      return Fail(ErrorCode::kConfig,
                  "LDAP bind_dn " + s_.bind_dn + " is set but its password is empty");
    }
    if (s_.start_tls && AnyLdapsUrl(s_.url)) {
      return Fail(ErrorCode::kConfig, "LDAP start_tls cannot be used with an ldaps:// url (" + s_.url + ")");
    }
    return Ok();
  }

  Status Connect() {
    LDAP* raw = nullptr;
    int rc = ldap_initialize(&raw, s_.url.c_str());
    ld_.reset(raw);
    if (rc != LDAP_SUCCESS || raw == nullptr) {
      return Fail(MakeError(ErrorCode::kConfig, "invalid LDAP url \"" + s_.url + "\": " +
                                                    ldap_err2string(rc) + " (" + std::to_string(rc) + ")"));
    }
    int version = LDAP_VERSION3;
    timeout_.tv_sec = s_.timeout_seconds > 0 ? s_.timeout_seconds : kDefaultTimeoutSeconds;
    timeout_.tv_usec = 0;
    int timelimit = static_cast<int>(timeout_.tv_sec);
    int demand = LDAP_OPT_X_TLS_DEMAND;
    int new_ctx_is_server = 0;
    if (ldap_set_option(raw, LDAP_OPT_PROTOCOL_VERSION, &version) != LDAP_OPT_SUCCESS ||
        ldap_set_option(raw, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != LDAP_OPT_SUCCESS ||
        ldap_set_option(raw, LDAP_OPT_NETWORK_TIMEOUT, &timeout_) != LDAP_OPT_SUCCESS ||
        ldap_set_option(raw, LDAP_OPT_TIMEOUT, &timeout_) != LDAP_OPT_SUCCESS ||
        ldap_set_option(raw, LDAP_OPT_TIMELIMIT, &timelimit) != LDAP_OPT_SUCCESS) {
      return Fail(ErrorCode::kInternal, "cannot set LDAP connection options");
    }
    // Certificates are always verified; there is deliberately no setting to
    // turn that off.
    if (ldap_set_option(raw, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand) != LDAP_OPT_SUCCESS) {
      return Fail(ErrorCode::kInternal, "cannot require TLS certificate verification");
    }
    if (!s_.ca_file.empty() &&
        ldap_set_option(raw, LDAP_OPT_X_TLS_CACERTFILE, s_.ca_file.c_str()) != LDAP_OPT_SUCCESS) {
      return Fail(ErrorCode::kConfig, "cannot use LDAP ca_file " + s_.ca_file);
    }
    // The TLS options above take effect in a new per-connection context
    // (made only when TLS is used: it loads the CA certificates, and a
    // plain ldap:// read must not fail over a missing system CA bundle).
    const bool tls = s_.start_tls || AnyLdapsUrl(s_.url) || !s_.ca_file.empty();
    if (int trc = tls ? ldap_set_option(raw, LDAP_OPT_X_TLS_NEWCTX, &new_ctx_is_server) : LDAP_OPT_SUCCESS;
        trc != LDAP_OPT_SUCCESS) {
      std::string what = s_.ca_file.empty() ? "the system CA certificates" : "ca_file " + s_.ca_file;
      std::string diag = DiagnosticMessage(raw);
      return Fail(MakeError(ErrorCode::kConfig, "cannot set up TLS for LDAP with " + what +
                                                    " (is it a readable PEM file?)" +
                                                    (diag.empty() ? "" : ": " + diag)));
    }

    if (s_.start_tls) {
      rc = ldap_start_tls_s(raw, nullptr, nullptr);
      if (rc != LDAP_SUCCESS) {
        std::string d = Describe(raw, rc);
        // The server refusing StartTLS, or an untrusted certificate, is not
        // worth retrying; only a server that is not there is.
        if (rc == LDAP_SERVER_DOWN && DiagnosticMessage(raw).empty()) {
          return Fail(MakeError(ErrorCode::kTransient, "LDAP StartTLS to " + s_.url + " failed: " + d));
        }
        if (rc == LDAP_CONNECT_ERROR || rc == LDAP_SERVER_DOWN) d = TlsFailure(raw, rc);
        return Fail(MakeError(ErrorCode::kSource, "LDAP StartTLS to " + s_.url + " failed: " + d));
      }
    }

    berval cred{};
    cred.bv_val = const_cast<char*>(s_.bind_password.data());
    cred.bv_len = s_.bind_password.size();
    rc = ldap_sasl_bind_s(raw, s_.bind_dn.empty() ? nullptr : s_.bind_dn.c_str(), LDAP_SASL_SIMPLE,
                          &cred, nullptr, nullptr, nullptr);
    if (rc != LDAP_SUCCESS) {
      std::string d = Describe(raw, rc);
      std::string who = s_.bind_dn.empty() ? "anonymously" : "as " + s_.bind_dn;
      ErrorCode code = ErrorCode::kSource;
      switch (rc) {
        case LDAP_INVALID_CREDENTIALS:
        case LDAP_INAPPROPRIATE_AUTH:
        case LDAP_INSUFFICIENT_ACCESS:
        case LDAP_UNWILLING_TO_PERFORM:
        case LDAP_CONFIDENTIALITY_REQUIRED:
        case LDAP_STRONG_AUTH_REQUIRED:
          code = ErrorCode::kAuth;
          break;
        default:
          code = Classify(rc, d, ErrorCode::kSource);
      }
      // ldaps://: a failed handshake shows up as "Can't contact LDAP server"
      // with the TLS library's text attached; a server that is not there
      // has none.
      if ((rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR) && AnyLdapsUrl(s_.url) &&
          !DiagnosticMessage(raw).empty()) {
        code = ErrorCode::kSource;
        d = TlsFailure(raw, rc);
      }
      return Fail(MakeError(code, "LDAP bind " + who + " to " + s_.url + " failed: " + d));
    }
    return Ok();
  }

  // "Connect error (-11): <TLS library text>; the TLS handshake failed: ..."
  std::string TlsFailure(LDAP* ld, int rc) const {
    std::string out = std::string(ldap_err2string(rc)) + " (" + std::to_string(rc) + ")";
    std::string diag = DiagnosticMessage(ld);
    if (!diag.empty() && diag != "(unknown error code)") out += ": " + diag;
    out += "; the TLS handshake failed: is the server's certificate issued by a CA in ";
    out += s_.ca_file.empty() ? "the system CA store (set ca_file to trust a private CA)" : "ca_file " + s_.ca_file;
    out += ", unexpired, and for the host name in the url?";
    return out;
  }

  void BuildAttributes() {
    auto add = [&](const std::string& a) {
      if (a.empty()) return;
      for (const auto& have : attrs_) {
        if (IEquals(have, a)) return;
      }
      attrs_.push_back(a);
    };
    add(s_.user_attribute);
    for (const auto& [field, attr] : s_.map) add(attr);
    if (ad_) {
      add("userAccountControl");
      add("objectGUID");
    }
    add("entryUUID");
    for (auto& a : attrs_) attr_ptrs_.push_back(a.data());
    attr_ptrs_.push_back(nullptr);
  }

  int PageSize() const {
    if (s_.page_size <= 0) return 0;  // no paging control
    return ad_ ? std::min(s_.page_size, kAdMaxPageSize) : s_.page_size;
  }

  Status SearchContext(const std::string& context) {
    const std::string filter = UserFilter(s_);
    const int scope = s_.search_sub ? LDAP_SCOPE_SUBTREE : LDAP_SCOPE_ONELEVEL;
    const int page_size = PageSize();
    const std::string what = "LDAP search of " + context;
    int count = 0;
    berval cookie{0, nullptr};
    struct CookieFree {
      berval* c;
      ~CookieFree() {
        if (c->bv_val) ber_memfree(c->bv_val);
      }
    } cookie_free{&cookie};

    for (int page = 1;; ++page) {
      std::unique_ptr<LDAPControl, ControlDeleter> page_control;
      LDAPControl* server_controls[2] = {nullptr, nullptr};
      if (page_size > 0) {
        LDAPControl* raw = nullptr;
        // Not critical: a server without paging returns everything at once
        // (or fails with sizeLimitExceeded, which is an error below).
        int rc = ldap_create_page_control(ld_.get(), page_size, cookie.bv_len ? &cookie : nullptr, 0, &raw);
        if (rc != LDAP_SUCCESS) {
          return Fail(MakeError(ErrorCode::kInternal, what + ": cannot create the paged results control: " +
                                                          Describe(ld_.get(), rc)));
        }
        page_control.reset(raw);
        server_controls[0] = raw;
      }
      timeval timeout = timeout_;
      LDAPMessage* raw_res = nullptr;
      int rc = ldap_search_ext_s(ld_.get(), context.c_str(), scope, filter.c_str(), attr_ptrs_.data(), 0,
                                 server_controls, nullptr, &timeout, LDAP_NO_LIMIT, &raw_res);
      MessagePtr res(raw_res);
      if (rc != LDAP_SUCCESS) {
        std::string d = Describe(ld_.get(), rc);
        std::string message = what + " failed: " + d;
        if (page > 1) message += " (after " + std::to_string(count) + " entries; nothing is used)";
        return Fail(MakeError(Classify(rc, d, ErrorCode::kSource), message));
      }
      int result_code = LDAP_SUCCESS;
      LDAPControl** raw_controls = nullptr;
      rc = ldap_parse_result(ld_.get(), res.get(), &result_code, nullptr, nullptr, nullptr, &raw_controls, 0);
      std::unique_ptr<LDAPControl*, ControlsDeleter> controls(raw_controls);
      if (rc != LDAP_SUCCESS) {
        return Fail(MakeError(Classify(rc, "", ErrorCode::kSource),
                              what + ": cannot parse the result: " + Describe(ld_.get(), rc)));
      }
      if (result_code != LDAP_SUCCESS) {
        std::string d = Describe(ld_.get(), result_code);
        return Fail(MakeError(Classify(result_code, d, ErrorCode::kSource), what + " failed: " + d));
      }

      for (LDAPMessage* e = ldap_first_entry(ld_.get(), res.get()); e != nullptr;
           e = ldap_next_entry(ld_.get(), e)) {
        auto added = AddEntry(context, e);
        if (!added) return Fail(added.error());
        if (*added) ++count;
      }

      if (hooks_.after_page) hooks_.after_page(context, page);

      if (page_size <= 0) break;
      LDAPControl* response =
          controls ? ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, controls.get(), nullptr) : nullptr;
      if (response == nullptr) break;  // the server ignored paging: this was everything
      if (cookie.bv_val) {
        ber_memfree(cookie.bv_val);
        cookie = berval{0, nullptr};
      }
      ber_int_t estimate = 0;
      rc = ldap_parse_pageresponse_control(ld_.get(), response, &estimate, &cookie);
      if (rc != LDAP_SUCCESS) {
        return Fail(MakeError(ErrorCode::kSource, what + ": bad paged results response: " +
                                                      Describe(ld_.get(), rc)));
      }
      if (cookie.bv_len == 0) break;
    }
    read_.context_counts[context] = count;
    return Ok();
  }

  std::optional<std::string> FirstValue(LDAPMessage* e, const std::string& attr) {
    berval** vals = ldap_get_values_len(ld_.get(), e, attr.c_str());
    if (vals == nullptr) return std::nullopt;
    std::optional<std::string> out;
    if (vals[0] != nullptr) out = std::string(vals[0]->bv_val, vals[0]->bv_len);
    ldap_value_free_len(vals);
    return out;
  }

  // Adds one entry; false when it is skipped (no user attribute).
  Result<bool> AddEntry(const std::string& context, LDAPMessage* e) {
    char* raw_dn = ldap_get_dn(ld_.get(), e);
    std::string dn = raw_dn ? raw_dn : "";
    ldap_memfree(raw_dn);

    auto name = FirstValue(e, s_.user_attribute);
    if (!name) return false;
    std::string username = MoodleUsername(*name);
    if (username.empty()) return false;

    DirectoryUser user;
    user.dn = dn;
    user.username = username;
    user.context = context;
    for (const auto& [field, attr] : s_.map) {
      if (auto v = FirstValue(e, attr)) user.fields[field] = *v;
    }
    if (ad_) {
      if (auto uac = FirstValue(e, "userAccountControl")) {
        auto flags = ParseSignedInt(Trim(*uac));
        if (!flags) {
          return Fail(MakeError(ErrorCode::kSource, "LDAP entry " + dn + " has a userAccountControl that is not "
                                                    "a number: \"" + *uac + "\""));
        }
        user.disabled = (*flags & kAdAccountDisable) != 0;
      }
      if (auto guid = FirstValue(e, "objectGUID")) user.guid = FormatObjectGuid(*guid);
    }
    if (user.guid.empty()) {
      if (auto uuid = FirstValue(e, "entryUUID")) user.guid = ToLower(*uuid);
    }

    auto [it, inserted] = index_.emplace(username, read_.users.size());
    if (!inserted) {
      const DirectoryUser& first = read_.users[it->second];
      if (first.dn == dn) {
        return Fail(MakeError(ErrorCode::kSource,
                              "LDAP entry " + dn + " is found under both context " + first.context +
                                  " and context " + context + "; contexts must not overlap"));
      }
      // Guessing which entry is the real user could attach the wrong
      // person's account: refuse instead.
      return Fail(MakeError(ErrorCode::kSource, "username " + username + " appears in two entries: " +
                                                    first.dn + ", " + dn));
    }
    read_.users.push_back(std::move(user));
    return true;
  }

  const LdapSettings& s_;
  const ReadHooks& hooks_;
  const bool ad_;
  LdapHandle ld_;
  timeval timeout_{};
  std::vector<std::string> attrs_;
  std::vector<char*> attr_ptrs_;
  std::map<std::string, std::size_t> index_;
  DirectoryRead read_;
};

}  // namespace

std::string FormatObjectGuid(std::string_view b) {
  if (b.size() != 16) return "";
  static const char* hex = "0123456789abcdef";
  static const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    auto byte = static_cast<unsigned char>(b[order[i]]);
    out += hex[byte >> 4];
    out += hex[byte & 0xF];
  }
  return out;
}

std::string LowerUsername(std::string_view s) { return Utf8ToLower(s); }

Result<DirectoryRead> ReadDirectoryWithHooks(const LdapSettings& settings, const ReadHooks& hooks) {
  RegisterSecret(settings.bind_password);
  SigpipeGuard sigpipe;
  DirectoryReader reader(settings, hooks);
  auto read = reader.Run();
  if (!read) {
    Error e = read.error();
    e.message = Redact(e.message);
    return Fail(std::move(e));
  }
  return read;
}

}  // namespace ldap_internal

Result<DirectoryRead> ReadDirectory(const LdapSettings& settings) {
  return ldap_internal::ReadDirectoryWithHooks(settings, {});
}

std::string EscapeLdapFilterValue(std::string_view value) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(value.size());
  for (char ch : value) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '*' || c == '(' || c == ')' || c == '\\' || c == 0 || c >= 0x80) {
      out += '\\';
      out += hex[c >> 4];
      out += hex[c & 0xF];
    } else {
      out += ch;
    }
  }
  return out;
}

std::string UserFilter(const LdapSettings& settings) {
  std::string oc = Trim(settings.object_class);
  std::string attr = Trim(settings.user_attribute);
  if (!oc.empty() && oc.front() == '(') return oc;
  if (oc.empty()) return "(" + attr + "=*)";
  return "(&(objectClass=" + EscapeLdapFilterValue(oc) + ")(" + attr + "=*))";
}

}  // namespace enrolsync::sources
