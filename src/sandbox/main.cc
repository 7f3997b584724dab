// enrolsync-sandbox: serves a simulated Moodle 5.1 web-service endpoint until
// SIGTERM/SIGINT. Never prints the token.
#include <chrono>
#include <csignal>
#include <cstdio>
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

// Reads a CSV with a header row; `need` columns must be there. Rows as
// column name -> value. False (message printed) on error.
bool ReadCsvFile(const std::string& path, const std::vector<std::string>& need,
                 std::vector<std::map<std::string, std::string>>* out) {
  std::ifstream in(path);
  if (!in) {
    std::cerr << "enrolsync-sandbox: cannot read " << path << "\n";
    return false;
  }
  std::vector<std::string> header, row;
  if (!ReadCsvRecord(in, &header)) return true;
  std::map<std::string, std::size_t> col;
  for (std::size_t i = 0; i < header.size(); ++i) col[enrolsync::ToLower(enrolsync::Trim(header[i]))] = i;
  for (const std::string& n : need) {
    if (!col.count(n)) {
      std::cerr << "enrolsync-sandbox: " << path << ": header has no '" << n << "' column\n";
      return false;
    }
  }
  while (ReadCsvRecord(in, &row)) {
    if (row.size() == 1 && enrolsync::Trim(row[0]).empty()) continue;
    std::map<std::string, std::string> r;
    for (const auto& [name, i] : col) r[name] = i < row.size() ? enrolsync::Trim(row[i]) : std::string();
    out->push_back(std::move(r));
  }
  return true;
}

// All the users in one transaction (Sandbox::SeedLdapUsers). Returns how
// many were created, -1 on error.
int SeedUsers(enrolsync::sandbox::Sandbox& sandbox, const std::string& path) {
  std::vector<std::map<std::string, std::string>> rows;
  if (!ReadCsvFile(path, {"username", "firstname", "lastname", "email"}, &rows)) return -1;
  std::vector<enrolsync::sandbox::Sandbox::SeedUser> users;
  users.reserve(rows.size());
  for (auto& r : rows) {
    users.push_back({std::move(r["username"]), std::move(r["firstname"]), std::move(r["lastname"]),
                     std::move(r["email"]), std::move(r["idnumber"])});
  }
  rows.clear();
  auto n = sandbox.SeedLdapUsers(users);
  if (!n) {
    std::cerr << "enrolsync-sandbox: " << path << ": " << n.error().message << "\n";
    return -1;
  }
  return *n;
}

// categories.csv (id,name), as enrolsync-gen-school writes it.
bool SeedCategories(enrolsync::sandbox::Sandbox& sandbox, const std::string& path) {
  std::vector<std::map<std::string, std::string>> rows;
  if (!ReadCsvFile(path, {"id", "name"}, &rows)) return false;
  std::vector<std::pair<enrolsync::model::MoodleId, std::string>> cats;
  for (auto& r : rows) {
    long long id = 0;
    if (!enrolsync::ParseInt64(r["id"], &id)) {
      std::cerr << "enrolsync-sandbox: " << path << ": bad category id '" << r["id"] << "'\n";
      return false;
    }
    cats.emplace_back(id, r["name"]);
  }
  auto st = sandbox.SeedCategories(cats);
  if (!st) {
    std::cerr << "enrolsync-sandbox: " << path << ": " << st.error().message << "\n";
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"enrolsync-sandbox: a simulated Moodle 5.1 web-service endpoint"};
  std::string listen = "127.0.0.1:0", state, token, token_file, seed, seed_categories, cost_model;
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
  app.add_option("--seed-users", seed,
                 "CSV username,firstname,lastname,email,idnumber: create as auth=ldap (one transaction)");
  app.add_option("--seed-categories", seed_categories,
                 "CSV id,name (enrolsync-gen-school's categories.csv): create these top-level categories");
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
  if (!seed_categories.empty() && !SeedCategories(**sandbox, seed_categories)) return 1;
  if (!seed.empty()) {
    auto t0 = std::chrono::steady_clock::now();
    int n = SeedUsers(**sandbox, seed);
    if (n < 0) return 1;
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    char took[32];
    std::snprintf(took, sizeof took, "%.2f", secs);
    std::cerr << "enrolsync-sandbox: seeded " << n << " users from " << seed << " in " << took << " s\n";
  }
  std::cout << "enrolsync-sandbox listening on " << (*sandbox)->url() << std::endl;
  int sig = 0;
  sigwait(&set, &sig);
  (*sandbox)->Stop();
  return 0;
}
