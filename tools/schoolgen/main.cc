// enrolsync-gen-school: writes a deterministic iSAMS-shaped school.
//
//   enrolsync-gen-school --sqlite school.db
//   enrolsync-gen-school --pupils 800 --staff 90 --postgres-sql school.sql --csv out/
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "schoolgen/schoolgen.h"

int main(int argc, char** argv) {
  namespace sg = enrolsync::schoolgen;
  sg::Options options;
  std::string sqlite_path, postgres_path, csv_dir;

  CLI::App app{"Generate a deterministic iSAMS-shaped school with the VwMoodleCourseData and "
               "VwMoodleEnrolData views (same options, same school, byte for byte)."};
  app.add_option("--pupils", options.pupils, "Number of pupils (Years 7-13)")
      ->check(CLI::Range(0, 10000000))
      ->capture_default_str();
  app.add_option("--staff", options.staff, "Number of staff")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  app.add_option("--seed", options.seed, "Random seed")->capture_default_str();
  app.add_option("--sqlite", sqlite_path, "Write an SQLite database (replaced if present)");
  app.add_option("--postgres-sql", postgres_path,
                 "Write an SQL script for psql (tables, rows and views in one transaction)");
  app.add_option("--csv", csv_dir,
                 "Write VwMoodleCourseData.csv, VwMoodleEnrolData.csv, users.csv and "
                 "categories.csv into this directory");
  CLI11_PARSE(app, argc, argv);

  const sg::School school = sg::Generate(options);
  int pupils = 0, staff = 0;
  for (const auto& p : school.people) (p.staff ? staff : pupils)++;
  std::cout << "school: " << pupils << " pupils, " << staff << " staff, "
            << school.course_view.size() << " sets, " << school.enrol_view.size()
            << " enrolment rows (seed " << options.seed << ")\n";

  int rc = 0;
  auto report = [&](const enrolsync::Status& st, const std::string& what) {
    if (st) {
      std::cout << "wrote " << what << "\n";
    } else {
      std::cerr << "enrolsync-gen-school: " << st.error().message << "\n";
      rc = 1;
    }
  };
  if (!sqlite_path.empty()) report(sg::WriteSqlite(school, sqlite_path), sqlite_path);
  if (!postgres_path.empty()) {
    std::ofstream out(postgres_path, std::ios::binary | std::ios::trunc);
    out << sg::PostgresScript(school);
    out.close();
    report(out ? enrolsync::Status{}
               : enrolsync::Fail(enrolsync::ErrorCode::kIo, "cannot write " + postgres_path),
           postgres_path);
  }
  if (!csv_dir.empty()) report(sg::WriteCsv(school, csv_dir), csv_dir);
  if (sqlite_path.empty() && postgres_path.empty() && csv_dir.empty())
    std::cerr << "(nothing written: give --sqlite, --postgres-sql and/or --csv)\n";
  return rc;
}
