#include "support/slapd_server.h"

#include "support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ldap.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

namespace enrolsync::testsupport {
namespace fs = std::filesystem;

const std::vector<std::string> kFirstNames = {
    "Zoë",  "Renée",  "Siân",   "Łukasz", "José",  "Chloé",    "Oisín",  "Mårten", "Aoife",
    "Björn", "François", "Noémie", "Niamh", "Oliver", "Amelia", "Mohammed", "Priya", "Anaïs"};
const std::vector<std::string> kLastNames = {
    "O'Brien", "D'Souza", "Núñez",  "Müller",     "O'Connor", "Ó Súilleabháin", "Brontë",
    "Łęcka",   "Smith",   "Nguyễn", "Kowalski",   "García",   "Dvořák",         "N'Diaye",
    "Jones",   "Øster",   "Zöllner"};

namespace {

const char* kSlapd = "/usr/sbin/slapd";
const char* kSlapadd = "/usr/sbin/slapadd";
const char* kSchemaDir = "/etc/ldap/schema";
const char* kModuleDir = "/usr/lib/ldap";

// A small Active-Directory-like schema (OIDs under a private arc; real AD
// uses 1.2.840.113556.*). Enough for entries that look like AD users.
const char* kAdSchema = R"(# enrolsync test schema: the AD attributes the directory source reads.
attributetype ( 1.3.6.1.4.1.99999.42.1.1 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.42.1.2 NAME 'userAccountControl'
  EQUALITY integerMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.42.1.3 NAME 'objectGUID'
  EQUALITY octetStringMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.42.1.4 NAME 'userPrincipalName'
  EQUALITY caseIgnoreMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.42.1.5 NAME 'employeeID'
  EQUALITY caseIgnoreMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.99999.42.2.1 NAME 'user'
  SUP organizationalPerson STRUCTURAL
  MAY ( sAMAccountName $ userAccountControl $ objectGUID $ userPrincipalName $
        employeeID $ givenName $ mail $ displayName $ employeeNumber $
        departmentNumber $ o ) )
)";





Status Run(const std::vector<std::string>& argv, const std::string& log, const std::string& input_file = "") {
  std::error_code ec;
  fs::remove(log, ec);
  SpawnOptions o;
  o.log = log;
  o.input_file = input_file;
  return RunToCompletion(argv, o);
}

std::string Base64(const std::string& in) {
  static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  while (i + 2 < in.size()) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    out += tbl[(v >> 18) & 63];
    out += tbl[(v >> 12) & 63];
    out += tbl[(v >> 6) & 63];
    out += tbl[v & 63];
    i += 3;
  }
  if (i + 1 == in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += tbl[(v >> 18) & 63];
    out += tbl[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += tbl[(v >> 18) & 63];
    out += tbl[(v >> 12) & 63];
    out += tbl[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

bool ProcessGone(pid_t pid, int* status) {
  pid_t r = waitpid(pid, status, WNOHANG);
  return r == pid || (r < 0 && errno == ECHILD);
}

// True once a simple bind as `dn` succeeds.
bool CanBind(const std::string& url, const std::string& dn, const std::string& password) {
  LDAP* ld = nullptr;
  if (ldap_initialize(&ld, url.c_str()) != LDAP_SUCCESS) return false;
  int version = LDAP_VERSION3;
  timeval tv{1, 0};
  ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
  ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
  ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
  berval cred{};
  cred.bv_val = const_cast<char*>(password.data());
  cred.bv_len = password.size();
  int rc = ldap_sasl_bind_s(ld, dn.c_str(), LDAP_SASL_SIMPLE, &cred, nullptr, nullptr, nullptr);
  ldap_unbind_ext_s(ld, nullptr, nullptr);
  return rc == LDAP_SUCCESS;
}

}  // namespace

std::string LdifLine(const std::string& attr, const std::string& value) {
  bool safe = !value.empty() ? (value.front() != ' ' && value.front() != ':' && value.front() != '<' &&
                                value.back() != ' ')
                             : true;
  for (char ch : value) {
    auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80 || c == 0 || c == '\n' || c == '\r') safe = false;
  }
  return safe ? attr + ": " + value : attr + ":: " + Base64(value);
}

std::string SchoolLdif(int pupils, int staff) {
  const std::string base = SlapdServer::suffix();
  std::string out;
  auto person = [&](const std::string& uid, const std::string& ou, int k, const std::string& number) {
    const std::size_t n = kFirstNames.size(), m = kLastNames.size();
    const auto uk = static_cast<std::size_t>(k);
    const std::string& given = kFirstNames[uk % n];
    const std::string& sn = kLastNames[(uk + uk / n) % m];
    out += "dn: uid=" + uid + ",ou=" + ou + "," + base + "\n";
    out += "objectClass: inetOrgPerson\n";
    out += "uid: " + uid + "\n";
    out += LdifLine("givenName", given) + "\n";
    out += LdifLine("sn", sn) + "\n";
    out += LdifLine("cn", given + " " + sn) + "\n";
    out += "mail: " + uid + "@school.test\n";
    out += "employeeNumber: " + number + "\n\n";
  };
  out += "dn: ou=Students," + base + "\nobjectClass: organizationalUnit\nou: Students\n\n";
  out += "dn: ou=Staff," + base + "\nobjectClass: organizationalUnit\nou: Staff\n\n";
  char buf[32];
  for (int i = 1; i <= pupils; ++i) {
    std::snprintf(buf, sizeof buf, "%04d", i);
    person(std::string("pupil") + buf, "Students", i - 1, std::string("P") + buf);
  }
  for (int j = 1; j <= staff; ++j) {
    std::snprintf(buf, sizeof buf, "%03d", j);
    person(std::string("staff") + buf, "Staff", j, std::string("S") + buf);
  }
  return out;
}

// ---------------------------------------------------------------------------

Result<std::unique_ptr<SlapdServer>> SlapdServer::Start(Options options) {
  std::unique_ptr<SlapdServer> server(new SlapdServer());
  server->options_ = std::move(options);
  if (auto ok = server->Init(); !ok) return Fail(ok.error());
  return server;
}

Status SlapdServer::Init() {
  if (dir_.path().empty()) return Fail(ErrorCode::kIo, "cannot create a temporary directory");
  if (access(kSlapd, X_OK) != 0) {
    return Fail(ErrorCode::kNotFound, std::string(kSlapd) + " not found: apt-get install slapd ldap-utils");
  }
  admin_password_ = "Adm-" + RandomHex(16);
  reader_password_ = "Rd-" + RandomHex(16);
  conf_ = dir_.File("slapd.conf");
  std::error_code ec;
  fs::create_directory(dir_.File("db"), ec);
  if (ec) return Fail(ErrorCode::kIo, "cannot create " + dir_.File("db") + ": " + ec.message());
  if (auto ok = WriteFile(dir_.File("ad.schema"), kAdSchema); !ok) return ok;
  if (options_.tls) {
    if (auto ok = MakeCertificates(); !ok) return ok;
  }
  if (auto ok = WriteConfig(); !ok) return ok;

  const std::string base = suffix();
  std::string ldif = "dn: " + base + "\nobjectClass: dcObject\nobjectClass: organization\no: School\ndc: school\n\n";
  ldif += "dn: " + reader_dn() +
          "\nobjectClass: person\nobjectClass: simpleSecurityObject\ncn: reader\nsn: reader\n" +
          LdifLine("userPassword", reader_password_) + "\n\n";
  ldif += options_.ldif;
  if (!ldif.empty() && ldif.back() != '\n') ldif += '\n';
  if (auto ok = WriteFile(dir_.File("initial.ldif"), ldif); !ok) return ok;
  if (auto ok = Run({kSlapadd, "-f", conf_, "-q", "-l", dir_.File("initial.ldif")}, dir_.File("slapadd.log"));
      !ok) {
    return ok;
  }
  return Launch();
}

Status SlapdServer::MakeCertificates() {
  if (std::system("command -v openssl >/dev/null 2>&1") != 0) {
    return Fail(ErrorCode::kNotFound, "openssl not found (needed for the test certificates): apt-get install openssl");
  }
  const std::string log = dir_.File("openssl.log");
  const std::string ca_key = dir_.File("ca.key"), ca = dir_.File("ca.pem");
  const std::string key = dir_.File("server.key"), csr = dir_.File("server.csr"), cert = dir_.File("server.pem");
  const std::string ext = dir_.File("server.ext");
  if (auto ok = WriteFile(ext,
                          "basicConstraints=critical,CA:FALSE\n"
                          "keyUsage=critical,digitalSignature,keyEncipherment\n"
                          "extendedKeyUsage=serverAuth\n" +
                              std::string(options_.tls_cert_for_other_host
                                              ? "subjectAltName=DNS:elsewhere.test\n"
                                              : "subjectAltName=IP:127.0.0.1,DNS:localhost\n"));
      !ok) {
    return ok;
  }
  std::vector<std::vector<std::string>> steps = {
      {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=enrolsync test CA " + RandomHex(6),
       "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"},
      {"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
       key, "-out", csr, "-subj", options_.tls_cert_for_other_host ? "/CN=elsewhere.test" : "/CN=127.0.0.1"},
      {"openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
       "-days", "2", "-extfile", ext},
  };
  for (const auto& step : steps) {
    if (auto ok = Run(step, log); !ok) return ok;
  }
  ca_file_ = ca;
  return Ok();
}

Status SlapdServer::WriteConfig() {
  std::ostringstream c;
  c << "# enrolsync test slapd\n";
  for (const char* schema : {"core", "cosine", "inetorgperson", "nis"}) {
    c << "include " << kSchemaDir << "/" << schema << ".schema\n";
  }
  c << "include " << dir_.File("ad.schema") << "\n"
    << "pidfile " << dir_.File("slapd.pid") << "\n"
    << "argsfile " << dir_.File("slapd.args") << "\n"
    << "modulepath " << kModuleDir << "\n"
    << "moduleload back_mdb\n";
  if (options_.tls) {
    c << "TLSCACertificateFile " << ca_file_ << "\n"
      << "TLSCertificateFile " << dir_.File("server.pem") << "\n"
      << "TLSCertificateKeyFile " << dir_.File("server.key") << "\n";
  }
  if (options_.size_limit > 0) {
    // Paged searches: pages up to the limit, any total.
    c << "sizelimit size.soft=" << options_.size_limit << " size.hard=" << options_.size_limit
      << " size.prtotal=unlimited\n";
  } else {
    c << "sizelimit unlimited\n";
  }
  c << "timelimit unlimited\n"
    << "database mdb\n"
    << "maxsize 268435456\n"
    << "suffix \"" << suffix() << "\"\n"
    << "rootdn \"" << admin_dn() << "\"\n"
    << "rootpw " << admin_password_ << "\n"
    << "directory " << dir_.File("db") << "\n"
    << "dbnosync\n"
    << "index objectClass eq\n"
    << "access to attrs=userPassword by anonymous auth by * none\n";
  for (const auto& dn : options_.unreadable_subtrees) {
    c << "access to dn.subtree=\"" << dn << "\" by * none\n";
  }
  c << "access to * by * read\n";
  return WriteFile(conf_, c.str());
}

Status SlapdServer::Launch() {
  const std::string log = dir_.File("slapd.log");
  std::string last_error;
  const bool fixed_ports = port_ != 0;  // Restart: keep the URLs
  for (int attempt = 0; attempt < (fixed_ports ? 1 : 5); ++attempt) {
    if (!fixed_ports) {
      port_ = FreePort();
      tls_port_ = options_.tls ? FreePort() : 0;
      if (port_ == 0 || (options_.tls && (tls_port_ == 0 || tls_port_ == port_))) {
        last_error = "cannot find a free TCP port";
        port_ = 0;
        continue;
      }
    }
    std::string listen = url() + "/";
    if (options_.tls) listen += " " + ldaps_url() + "/";
    // -d 0: stay in the foreground (no detach), no debug output.
    SpawnOptions so;
    so.log = log;
    pid_ = Spawn({kSlapd, "-h", listen, "-f", conf_, "-d", "0"}, so);
    if (pid_ < 0) return Fail(ErrorCode::kIo, "fork failed");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    bool ready = false;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (ProcessGone(pid_, &status)) {  // exited: port taken? bad config?
        pid_ = -1;
        last_error = "slapd exited (status " + std::to_string(status) + "); log " + log + ":\n" + ReadTail(log);
        break;
      }
      if (CanBind(url(), admin_dn(), admin_password_)) {
        ready = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (ready) return Ok();
    if (pid_ > 0) {
      Kill();
      last_error = "slapd did not answer in 30 s; log " + log + ":\n" + ReadTail(log);
    }
    if (!fixed_ports) port_ = 0;
  }
  return Fail(ErrorCode::kInternal, "cannot start the test slapd: " + last_error);
}

void SlapdServer::Signal(int sig) {
  if (pid_ <= 0) return;
  kill(pid_, sig);
  int status = 0;
  for (int i = 0; i < 400; ++i) {  // 20 s
    if (ProcessGone(pid_, &status)) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

void SlapdServer::Stop() { Signal(SIGTERM); }
void SlapdServer::Kill() { Signal(SIGKILL); }

Status SlapdServer::Restart() {
  Stop();
  return Launch();
}

Status SlapdServer::Reconfigure(const Options& options) {
  options_.size_limit = options.size_limit;
  options_.unreadable_subtrees = options.unreadable_subtrees;
  Stop();
  if (auto ok = WriteConfig(); !ok) return ok;
  return Launch();
}

SlapdServer::~SlapdServer() { Stop(); }

std::string SlapdServer::url() const { return "ldap://127.0.0.1:" + std::to_string(port_); }
std::string SlapdServer::ldaps_url() const { return "ldaps://127.0.0.1:" + std::to_string(tls_port_); }

Status SlapdServer::RunLdapTool(const std::vector<std::string>& args, const std::string& input) const {
  // The password goes through a file (-y), not the command line.
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  const std::string pwfile = dir_.File("admin.pw");
  const std::string in = dir_.File("tool-input.ldif");
  if (auto ok = WriteFile(pwfile, admin_password_); !ok) return ok;
  chmod(pwfile.c_str(), 0600);
  if (auto ok = WriteFile(in, input); !ok) return ok;
  std::vector<std::string> argv = args;
  for (const auto& a : {std::string("-x"), std::string("-H"), url(), std::string("-D"), admin_dn(),
                        std::string("-y"), pwfile}) {
    argv.push_back(a);
  }
  return Run(argv, dir_.File("tool.log"), in);
}

Status SlapdServer::Add(const std::string& ldif) const { return RunLdapTool({"ldapmodify", "-a"}, ldif); }
Status SlapdServer::Modify(const std::string& ldif) const { return RunLdapTool({"ldapmodify"}, ldif); }
Status SlapdServer::Delete(const std::string& dn) const { return RunLdapTool({"ldapdelete"}, dn + "\n"); }

Result<SlapdServer*> SharedSlapdServer() {
  static std::mutex mu;
  static std::unique_ptr<SlapdServer> server;
  static std::optional<Error> error;
  std::lock_guard<std::mutex> lock(mu);
  if (server) return server.get();
  if (error) return Fail(*error);
  SlapdOptions options;
  options.ldif = SchoolLdif(800, 90);
  options.size_limit = 500;
  auto started = SlapdServer::Start(std::move(options));
  if (!started) {
    error = started.error();
    return Fail(*error);
  }
  server = std::move(*started);
  return server.get();
}

}  // namespace enrolsync::testsupport
