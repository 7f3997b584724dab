// A deterministic generator for an iSAMS-shaped school: the iSAMS tables and
// the two views Moodle reads (VwMoodleCourseData, VwMoodleEnrolData), at any
// size, for SQLite, PostgreSQL and CSV. The same Options always give the same
// school, byte for byte.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "util/result.h"

namespace enrolsync::schoolgen {

struct Options {
  int pupils = 120;       // the sample school; the README's 458-set school is 800
  int staff = 24;
  unsigned seed = 20261125;
};

// Rows of the two views, exactly as the views return them (the generator
// computes them the same way the SQL views do, so tests can compare).
struct CourseViewRow {
  std::string fullname, shortname, idnumber;
  std::string category;  // "" = NULL
};
struct EnrolViewRow {
  std::string set_code, email;
  int role_id = 5;  // 3 editingteacher, 5 student
};
struct Person {
  std::string username, firstname, lastname, email, idnumber;
  bool staff = false;
};

struct School {
  Options options;
  std::vector<Person> people;             // pupils then staff
  std::vector<CourseViewRow> course_view; // one per set, ordered by set code
  std::vector<EnrolViewRow> enrol_view;   // ordered by set code, email, role
  // The Moodle course categories the view's intCategoryID refers to, as
  // (id, name), ids ascending and contiguous from 2: on a fresh Moodle (where
  // "Category 1" is id 1) creating them in this order gives exactly these ids.
  // Category 999 (Careers) is deliberately not among them.
  std::vector<std::pair<int, std::string>> categories;
  // The raw iSAMS tables, as SQL statements in a portable subset (CREATE
  // TABLE + INSERT). Views are created per back end.
  std::vector<std::string> table_ddl;
  std::vector<std::string> inserts;
};

School Generate(const Options& options);

// Writes the iSAMS tables and both views into a new SQLite file (replaced if present).
Status WriteSqlite(const School& school, const std::string& path);
// An SQL script for PostgreSQL: tables, then views with quoted mixed-case
// names ("VwMoodleCourseData"), in one transaction.
std::string PostgresScript(const School& school);
// VwMoodleCourseData.csv and VwMoodleEnrolData.csv (RFC 4180, UTF-8, header
// row of the view's column names, NULL as an empty field) plus users.csv
// (username,firstname,lastname,email,idnumber) and categories.csv (id,name).
// The directory is created if missing; the four files are replaced.
Status WriteCsv(const School& school, const std::string& directory);

}  // namespace enrolsync::schoolgen
