// enrolsync-sandbox: serves a simulated Moodle 5.1 web-service endpoint until
// SIGTERM/SIGINT. Never prints the token.
#include <csignal>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "sandbox/sandbox.h"
#include "util/strings.h"

namespace {

// One CSV record (RFC 4180 quoting); false at end of input.
bool ReadCsvRecord(std::istream& in, std::vector<std::string>* fields) {
  fields->clear();
  std::string field;
  bool quoted = false, any = false;
  char c;
  while (in.get(c)) {
    any = true;
    if (quoted) {
      if (c == '"') {
        if (in.peek() == '"') {
          field += '"';
          in.get();
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields->push_back(field);
      field.clear();
    } else if (c == '\n') {
      break;
    } else if (c != '\r') {
      field += c;
    }
  }
  if (!any) return false;
  fields->push_back(field);
  return true;
}

int SeedUsers(enrolsync::sandbox::Sandbox& sandbox, const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    std::cerr << "enrolsync-sandbox: cannot read " << path << "\n";
    return -1;
  }
  std::vector<std::string> header, row;
  if (!ReadCsvRecord(in, &header)) return 0;
  std::map<std::string, std::size_t> col;
  for (std::size_t i = 0; i < header.size(); ++i) col[enrolsync::ToLower(enrolsync::Trim(header[i]))] = i;
  for (const char* need : {"username", "firstname", "lastname", "email"}) {
    if (!col.count(need)) {
      std::cerr << "enrolsync-sandbox: " << path << ": header has no '" << need << "' column\n";
      return -1;
    }
  }
  auto get = [&](const char* name) {
    auto it = col.find(name);
    return it != col.end() && it->second < row.size() ? enrolsync::Trim(row[it->second]) : std::string();
  };
  int n = 0, line = 1;
  while (ReadCsvRecord(in, &row)) {
    ++line;
    if (row.size() == 1 && enrolsync::Trim(row[0]).empty()) continue;
    auto id = sandbox.EnsureLdapUser(get("username"), get("firstname"), get("lastname"), get("email"), get("idnumber"));
    if (!id) {
      std::cerr << "enrolsync-sandbox: " << path << " row " << line << ": " << id.error().message << "\n";
      return -1;
    }
    ++n;
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"enrolsync-sandbox: a simulated Moodle 5.1 web-service endpoint"};
  std::string listen = "127.0.0.1:0", state, token, token_file, seed, cost_model;
  int latency = 0, max_vars = 5000;
  bool no_welcome = false;
  app.add_option("--listen", listen, "HOST:PORT to listen on (port 0 = any free port)");
  app.add_option("--state", state, "directory holding the site's state (site.db)")->required();
  auto* tok = app.add_option("--token", token, "the web-service token clients must send");
  app.add_option("--token-file", token_file, "file whose first line is the token")->excludes(tok);
  app.add_option("--latency-ms", latency, "milliseconds added to every call (Moodle bootstrap ~50)");
  app.add_option("--cost-model", cost_model,
                 "charge every call what it costs that Moodle, serving as many at once as it can "
                 "(moodle-5.1: 2-core Moodle 5.1, see bench/README.md)")
      ->check(CLI::IsMember({"moodle-5.1"}));
  app.add_option("--max-input-vars", max_vars, "PHP max_input_vars: POST variables past it are lost");
  app.add_flag("--no-welcome-messages", no_welcome,
               "new courses' manual instance does not send the course welcome message");
  app.add_option("--seed-users", seed, "CSV username,firstname,lastname,email,idnumber: create as auth=ldap");
  CLI11_PARSE(app, argc, argv);

  enrolsync::sandbox::Options options;
  options.state_dir = state;
  options.latency_ms = latency;
  options.cost_model = cost_model;
  options.max_input_vars = max_vars;
  options.manual_welcome_message = !no_welcome;
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    std::cerr << "enrolsync-sandbox: --listen must be HOST:PORT\n";
    return 2;
  }
  options.host = listen.substr(0, colon);
  long long port = 0;
  if (!enrolsync::ParseInt64(listen.substr(colon + 1), &port) || port > 65535) {
    std::cerr << "enrolsync-sandbox: bad port in --listen\n";
    return 2;
  }
  options.port = static_cast<int>(port);
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    if (!in || !std::getline(in, token)) {
      std::cerr << "enrolsync-sandbox: cannot read the token file " << token_file << "\n";
      return 2;
    }
    token = enrolsync::Trim(token);
  }
  if (!token.empty()) options.token = token;

  // Block the signals before any thread starts, then wait for them here.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  auto sandbox = enrolsync::sandbox::Sandbox::Start(options);
  if (!sandbox) {
    std::cerr << "enrolsync-sandbox: " << sandbox.error().message << "\n";
    return 1;
  }
  if (!seed.empty()) {
    int n = SeedUsers(**sandbox, seed);
    if (n < 0) return 1;
    std::cerr << "enrolsync-sandbox: seeded " << n << " users from " << seed << "\n";
  }
  std::cout << "enrolsync-sandbox listening on " << (*sandbox)->url() << std::endl;
  int sig = 0;
  sigwait(&set, &sig);
  (*sandbox)->Stop();
  return 0;
}
