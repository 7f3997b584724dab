// Test harness: a throwaway OpenLDAP server (slapd) of its own.
//
// slapd.conf in a temp dir with the core, cosine, inetorgperson and nis
// schemas plus a small Active-Directory-like schema (sAMAccountName,
// userAccountControl, objectGUID, objectClass `user` SUP
// organizationalPerson), one mdb database for dc=school,dc=test, the rootdn
// cn=admin,dc=school,dc=test and a service account cn=reader,dc=school,dc=test
// to read with. slapd runs in the foreground (-d 0) on 127.0.0.1 at a free
// port and gets SIGTERM if the test process dies. Needs the Debian packages
// slapd and ldap-utils (ldapmodify, ldapdelete). Works as root and as an
// ordinary user.
//
// The rootdn bypasses ACLs and size limits: read as reader_dn() to see them.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "support/pg_server.h"  // TempDir, WriteFile
#include "util/result.h"

namespace enrolsync::testsupport {

struct SlapdOptions {
  // Entries loaded with slapadd before the first start, after the suffix
  // entry and cn=reader (so do not repeat those).
  std::string ldif;
  // Size limit (soft and hard) for everyone but the rootdn; 0 = unlimited.
  // A non-paged search returning more entries fails with sizeLimitExceeded
  // (4); paged searches may return any total ("size.prtotal=unlimited"), in
  // pages of at most this many.
  int size_limit = 0;
  // Subtrees nobody but the rootdn may see ("access to dn.subtree=X by *
  // none"): searching one as a base fails with noSuchObject (32).
  std::vector<std::string> unreadable_subtrees;
  // Also serve TLS: a fresh CA and server certificate (for 127.0.0.1 and
  // localhost), StartTLS on url() and ldaps on ldaps_url().
  bool tls = false;
  // With tls: the server certificate names elsewhere.test only, so a client
  // checking the host name must refuse it even with the CA trusted.
  bool tls_cert_for_other_host = false;
};

class SlapdServer {
 public:
  using Options = SlapdOptions;

  static Result<std::unique_ptr<SlapdServer>> Start(Options options = {});
  ~SlapdServer();
  SlapdServer(const SlapdServer&) = delete;
  SlapdServer& operator=(const SlapdServer&) = delete;

  std::string url() const;        // "ldap://127.0.0.1:<port>"
  std::string ldaps_url() const;  // "ldaps://127.0.0.1:<port>" (tls only)
  int port() const { return port_; }
  static std::string suffix() { return "dc=school,dc=test"; }
  static std::string admin_dn() { return "cn=admin,dc=school,dc=test"; }
  const std::string& admin_password() const { return admin_password_; }
  static std::string reader_dn() { return "cn=reader,dc=school,dc=test"; }
  const std::string& reader_password() const { return reader_password_; }
  const std::string& ca_file() const { return ca_file_; }  // PEM; tls only
  const std::string& dir() const { return dir_.path(); }
  bool running() const { return pid_ > 0; }

  // Changes entries as the rootdn through ldapmodify / ldapdelete (LDIF
  // as ldapadd / ldapmodify take it).
  Status Add(const std::string& ldif) const;
  Status Modify(const std::string& ldif) const;
  Status Delete(const std::string& dn) const;

  // SIGTERM and wait (the data stays).
  void Stop();
  // SIGKILL and wait: the server vanishes mid-conversation.
  void Kill();
  // Starts it again on the same port(s) with the same data.
  Status Restart();
  // Rewrites slapd.conf from `options` (size limit, ACLs; ldif and tls are
  // ignored) and restarts.
  Status Reconfigure(const Options& options);

 private:
  SlapdServer() = default;
  Status Init();
  Status WriteConfig();
  Status MakeCertificates();
  Status Launch();
  Status RunLdapTool(const std::vector<std::string>& argv, const std::string& input) const;
  void Signal(int sig);

  TempDir dir_;
  Options options_;
  std::string admin_password_, reader_password_, ca_file_, conf_;
  int port_ = 0, tls_port_ = 0;
  pid_t pid_ = -1;
};

// The server shared by every test in this binary: SchoolLdif(800, 90) with
// size_limit 500 (so only paged reads see every pupil). Started on first
// use, stopped at exit; returns the startup error on every call if it
// failed.
Result<SlapdServer*> SharedSlapdServer();

// A deterministic school: ou=Students,dc=school,dc=test with `pupils`
// inetOrgPerson entries uid=pupil0001.. and ou=Staff with `staff` entries
// uid=staff001.. (uid, givenName, sn, cn, mail <uid>@school.test,
// employeeNumber P0001 / S001). Names have accents and apostrophes: pupil
// k (from 0) is kFirstNames[k % n] + kLastNames[(k + k / n) % m]; staff j
// (from 1) uses k = j. So pupil0001 is Zoë O'Brien, pupil0003 Siân Núñez,
// staff001 Renée D'Souza.
std::string SchoolLdif(int pupils, int staff);
extern const std::vector<std::string> kFirstNames;
extern const std::vector<std::string> kLastNames;

// One LDIF line "attr: value", or "attr:: base64" when the value needs it
// (non-ASCII, leading space/colon/<, trailing space, control characters).
std::string LdifLine(const std::string& attr, const std::string& value);

}  // namespace enrolsync::testsupport
