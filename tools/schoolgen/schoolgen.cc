#include "schoolgen/schoolgen.h"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string_view>
#include <tuple>

namespace enrolsync::schoolgen {
namespace {

// ---------------------------------------------------------------------------
// Randomness: splitmix64, so the school depends on nothing but Options.
// ---------------------------------------------------------------------------
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t Next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); n > 0.
  int Below(int n) { return static_cast<int>(Next() % static_cast<std::uint64_t>(n)); }
  // True with probability p.
  bool Chance(double p) { return static_cast<double>(Next() >> 11) * 0x1.0p-53 < p; }
  template <class T>
  void Shuffle(std::vector<T>& v) {
    for (std::size_t i = v.size(); i > 1; --i) {
      std::size_t j = static_cast<std::size_t>(Next() % i);
      std::swap(v[i - 1], v[j]);
    }
  }

 private:
  std::uint64_t state_;
};

// ---------------------------------------------------------------------------
// Names. About one in six is accented or has an apostrophe.
// ---------------------------------------------------------------------------
constexpr const char* kForenames[] = {
    "Oliver", "George", "Harry", "Jack", "Jacob", "Noah", "Charlie", "Thomas", "Oscar",
    "William", "James", "Leo", "Alfie", "Henry", "Joshua", "Freddie", "Archie", "Ethan",
    "Isaac", "Alexander", "Samuel", "Daniel", "Adam", "Mohammed", "Arjun", "Kwame", "Tariq",
    "Olivia", "Amelia", "Isla", "Ava", "Emily", "Sophie", "Grace", "Mia", "Poppy", "Ella",
    "Lily", "Evie", "Isabella", "Charlotte", "Jessica", "Daisy", "Freya", "Alice", "Ruby",
    "Hannah", "Lucy", "Priya", "Aisha", "Fatima", "Nadia", "Mei", "Amara", "Eleanor",
    "Zoë", "Renée", "Siân", "Chloé", "Noémie", "Søren", "Seán", "Björn", "Aoife", "Niamh",
    "Iñaki", "Zoé", "Anaïs", "Łucja", "José", "Ciarán", "Dafydd", "Rhiannon", "Mary-Jane",
};
constexpr const char* kSurnames[] = {
    "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas",
    "Johnson", "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards",
    "Hughes", "Green", "Hall", "Lewis", "Harris", "Clarke", "Patel", "Jackson", "Wood",
    "Turner", "Martin", "Cooper", "Hill", "Ward", "Morris", "Moore", "Clark", "Lee", "King",
    "Baker", "Harrison", "Morgan", "Allen", "James", "Scott", "Phillips", "Watson", "Davis",
    "Parker", "Price", "Bennett", "Young", "Griffiths", "Mitchell", "Kelly", "Cook", "Carter",
    "Richardson", "Bailey", "Collins", "Bell", "Shaw", "Murphy", "Miller", "Cox", "Richards",
    "Khan", "Marshall", "Anderson", "Simpson", "Ellis", "Adams", "Singh", "Begum", "Wilkinson",
    "Foster", "Chapman", "Powell", "Webb", "Rogers", "Gray", "Mason", "Ali", "Hussain",
    "Campbell", "Matthews", "Owen", "Palmer", "Holmes", "Mills", "Barnes", "Knight", "Lloyd",
    "Butler", "Russell", "Barker", "Fisher", "Stevens", "Jenkins", "Okafor", "Kowalski",
    "Nowak", "Ahmed", "Chen", "Nguyen", "Mensah", "Da Silva", "Smith-Jones",
    "O'Brien", "D'Souza", "Núñez", "Ørsted", "O'Connor", "Müller", "García", "Öztürk",
    "Brontë", "Ó Súilleabháin", "Łukasiewicz", "Ibáñez", "Gonçalves", "O'Neill", "Dvořák",
};
constexpr const char* kTitles[] = {"Mr", "Mrs", "Ms", "Dr", "Miss"};

// The recorded school is set in the 2026-27 academic year: Year 7 joined in 2026.
constexpr int kYear7Entry = 26;

// Latin letters with diacritics -> ASCII, for usernames and emails.
const char* FoldCodePoint(char32_t cp) {
  struct Fold { char32_t cp; const char* ascii; };
  static const Fold kFolds[] = {
      {U'à', "a"}, {U'á', "a"}, {U'â', "a"}, {U'ã', "a"}, {U'ä', "a"}, {U'å', "a"}, {U'ą', "a"},
      {U'æ', "ae"}, {U'ç', "c"}, {U'ć', "c"}, {U'č', "c"}, {U'è', "e"}, {U'é', "e"}, {U'ê', "e"},
      {U'ë', "e"}, {U'ę', "e"}, {U'ě', "e"}, {U'ì', "i"}, {U'í', "i"}, {U'î', "i"}, {U'ï', "i"},
      {U'ı', "i"}, {U'ð', "d"}, {U'đ', "d"}, {U'ñ', "n"}, {U'ń', "n"}, {U'ò', "o"}, {U'ó', "o"},
      {U'ô', "o"}, {U'õ', "o"}, {U'ö', "o"}, {U'ø', "o"}, {U'ő', "o"}, {U'ù', "u"}, {U'ú', "u"},
      {U'û', "u"}, {U'ü', "u"}, {U'ű', "u"}, {U'ý', "y"}, {U'ÿ', "y"}, {U'þ', "th"}, {U'ß', "ss"},
      {U'ł', "l"}, {U'ś', "s"}, {U'š', "s"}, {U'ş', "s"}, {U'ź', "z"}, {U'ż', "z"}, {U'ž', "z"},
      {U'ğ', "g"}, {U'ř', "r"},
      {U'À', "a"}, {U'Á', "a"}, {U'Â', "a"}, {U'Ã', "a"}, {U'Ä', "a"}, {U'Å', "a"}, {U'Æ', "ae"},
      {U'Ç', "c"}, {U'Č', "c"}, {U'È', "e"}, {U'É', "e"}, {U'Ê', "e"}, {U'Ë', "e"}, {U'Ì', "i"},
      {U'Í', "i"}, {U'Î', "i"}, {U'Ï', "i"}, {U'Ñ', "n"}, {U'Ò', "o"}, {U'Ó', "o"}, {U'Ô', "o"},
      {U'Õ', "o"}, {U'Ö', "o"}, {U'Ø', "o"}, {U'Ù', "u"}, {U'Ú', "u"}, {U'Û', "u"}, {U'Ü', "u"},
      {U'Ý', "y"}, {U'Þ', "th"}, {U'Ł', "l"}, {U'Ś', "s"}, {U'Š', "s"}, {U'Ş', "s"}, {U'Ż', "z"},
      {U'Ź', "z"}, {U'Ž', "z"}, {U'Ř', "r"},
  };
  for (const Fold& f : kFolds) {
    if (f.cp == cp) return f.ascii;
  }
  return "";
}

// Lower-case ASCII letters and digits only: "Ó Súilleabháin" -> "osuilleabhain".
std::string Fold(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c >= 'A' && c <= 'Z') out += static_cast<char>(c - 'A' + 'a');
      else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) out += static_cast<char>(c);
      ++i;
      continue;
    }
    int len = (c >= 0xF0) ? 4 : (c >= 0xE0) ? 3 : (c >= 0xC0) ? 2 : 1;
    char32_t cp = len == 4 ? (c & 0x07) : len == 3 ? (c & 0x0F) : len == 2 ? (c & 0x1F) : c;
    for (int k = 1; k < len && i + k < s.size(); ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    out += FoldCodePoint(cp);
    i += static_cast<std::size_t>(len);
  }
  return out;
}

// Hands out names nobody has yet: Take("jsmith") gives "jsmith", then
// "jsmith2", "jsmith3"...; Numbered("7/Ma") gives "7/Ma1", "7/Ma2"... Each base
// remembers where it got to, so a 100x school stays linear.
class UniqueNames {
 public:
  std::string Take(const std::string& base) {
    if (used_.insert(base).second) return base;
    return Next(base, 2);
  }
  std::string Numbered(const std::string& prefix) { return Next(prefix, 1); }

 private:
  std::string Next(const std::string& base, int first) {
    auto [it, fresh] = next_.try_emplace(base, first);
    (void)fresh;
    for (;; ++it->second) {
      std::string candidate = base + std::to_string(it->second);
      if (used_.insert(candidate).second) {
        ++it->second;
        return candidate;
      }
    }
  }
  std::set<std::string> used_;
  std::map<std::string, int> next_;
};

// ---------------------------------------------------------------------------
// The curriculum. Subject ids are the TblTeachingManagerSubjectsID values.
// Departments and categories follow the recorded school (db-sync-1.log).
// ---------------------------------------------------------------------------
constexpr int kNullCategory = -1;
constexpr int kStaffAreaCategory = 9;

struct SubjectDef {
  int id;
  const char* name;
  const char* code;        // in set codes: 7/Ma2
  const char* department;  // nullptr: no department, no staff area
  int category;            // kNullCategory: NULL
};
enum SubjectId {
  kMa = 1, kEn, kSc, kBi, kCh, kPh, kCs, kAr, kDT, kDr, kMu, kHi, kGg, kRS, kEc, kFr, kGe,
  kSp, kLa, kAX, kCR, kEP, kSubjectEnd
};
constexpr SubjectDef kSubjects[] = {
    {kMa, "Mathematics", "Ma", "Mathematics", 3},
    {kEn, "English", "En", "English", 4},
    {kSc, "Science", "Sc", "Science", 5},
    {kBi, "Biology", "Bi", "Science", 5},
    {kCh, "Chemistry", "Ch", "Science", 5},
    {kPh, "Physics", "Ph", "Science", 5},
    {kCs, "Computer Science", "Cs", "Computing", 5},
    {kAr, "Art", "Ar", "Art", 8},
    {kDT, "Design & Technology", "DT", "DT", 8},
    {kDr, "Drama", "Dr", "Drama", 8},
    {kMu, "Music", "Mu", "Music", 8},
    {kHi, "History", "Hi", "History", 6},
    {kGg, "Geography", "Gg", "Geography", 6},
    {kRS, "Religious Studies", "RS", "RS", 6},
    {kEc, "Economics", "Ec", "Economics", 6},
    {kFr, "French", "Fr", "MFL", 7},
    {kGe, "German", "Ge", "MFL", 7},
    {kSp, "Spanish", "Sp", "MFL", 7},
    {kLa, "Latin", "La", "Classics", 7},
    {kAX, "Academic Extension", "AX", nullptr, 2},
    // The recorded `Careers - 11/CR1`: a category Moodle does not have.
    {kCR, "Careers", "CR", nullptr, 999},
    // The one set with a NULL category (goes to Moodle's default category).
    {kEP, "Extended Project", "EP", nullptr, kNullCategory},
};
const SubjectDef& Subject(int id) { return kSubjects[id - 1]; }

const std::vector<std::pair<int, std::string>>& Categories() {
  static const std::vector<std::pair<int, std::string>> kCategories = {
      {2, "Academic Extension"}, {3, "Mathematics"}, {4, "English"}, {5, "Sciences"},
      {6, "Humanities"},         {7, "Languages"},   {8, "Arts"},    {9, "Staff Areas"},
  };
  return kCategories;
}

// Staff per department in the recorded school (90 staff: 87 in departments,
// 3 outside any, who teach Academic Extension and Careers).
struct DepartmentDef {
  const char* name;
  int staff;
};
constexpr DepartmentDef kDepartments[] = {
    {"Art", 6},  {"Classics", 2},   {"Computing", 5}, {"DT", 5},        {"Drama", 6},
    {"Economics", 1}, {"English", 7}, {"Geography", 6}, {"History", 6}, {"MFL", 12},
    {"Mathematics", 7}, {"Music", 5}, {"RS", 6},      {"Science", 13},
};
constexpr int kDepartmentCount = static_cast<int>(std::size(kDepartments));
constexpr int kRecordedDepartmentStaff = 87;
constexpr int kRecordedStaff = 90;

int DepartmentIndex(const char* name) {
  if (name == nullptr) return -1;
  for (int i = 0; i < kDepartmentCount; ++i) {
    if (std::string_view(kDepartments[i].name) == name) return i;
  }
  return -1;
}

int RoundPositive(double x) { return std::max(1, static_cast<int>(std::lround(x))); }
int CeilDiv(int a, int b) { return (a + b - 1) / b; }

// ---------------------------------------------------------------------------
// The generator's own model of the iSAMS tables.
// ---------------------------------------------------------------------------
struct Pupil {
  std::string school_id, user_code, forename, surname, email, form;
  int nc_year = 7;
};
struct Staff {
  std::string user_code, title, forename, surname, initials, email;
  int department = -1;  // index into kDepartments, -1: none
};
struct Set {
  int id = 0;
  int subject = 0;
  int year = 0;
  std::string code;
  int teacher = -1;                  // index into staff, -1: NULL
  std::vector<int> associated;       // indices into staff
  std::vector<int> pupils;           // indices into pupils
};

class Builder {
 public:
  explicit Builder(const Options& o)
      : opt_(o), rng_(0x5C4001D5EEDULL ^ (static_cast<std::uint64_t>(o.seed) * 0x9E3779B97F4A7C15ULL)) {}

  void Run() {
    MakePupils();
    MakeStaff();
    for (int y = 7; y <= 9; ++y) KeyStage3(y);
    for (int y = 10; y <= 11; ++y) Gcse(y);
    for (int y = 12; y <= 13; ++y) SixthForm(y);
  }

  std::vector<Pupil> pupils;
  std::vector<Staff> staff;
  std::vector<Set> sets;

 private:
  std::pair<std::string, std::string> RandomName() {
    std::string f = kForenames[rng_.Below(static_cast<int>(std::size(kForenames)))];
    std::string s = kSurnames[rng_.Below(static_cast<int>(std::size(kSurnames)))];
    return {f, s};
  }

  std::string Email(const std::string& forename, const std::string& surname) {
    return email_locals_.Take(Fold(forename) + "." + Fold(surname)) + "@school.test";
  }

  void MakePupils() {
    // Year sizes as in the recorded school: 125 in each of Years 7-11, 88 and
    // 87 in the sixth form; scaled by cumulative rounding so they sum exactly.
    static const int kCumulative[] = {125, 250, 375, 500, 625, 713, 800};
    const int total = std::max(0, opt_.pupils);
    int previous = 0;
    // Names that must appear (when the year is big enough): accents,
    // apostrophes, and the recorded "25younge".
    static const std::tuple<int, const char*, const char*> kShowcase[] = {
        {7, "Zoë", "O'Brien"}, {7, "Renée", "D'Souza"}, {7, "Siân", "Núñez"},
        {8, "Søren", "Ørsted"}, {8, "Emily", "Young"},  {9, "Seán", "Ó Súilleabháin"},
    };
    for (int y = 7; y <= 13; ++y) {
      const int boundary = static_cast<int>(
          (static_cast<long long>(total) * kCumulative[y - 7] + 400) / 800);
      const int size = boundary - previous;
      previous = boundary;
      const int forms = std::max(1, CeilDiv(size, 22));
      std::vector<std::pair<const char*, const char*>> showcase;
      for (const auto& [sy, sf, ss] : kShowcase)
        if (sy == y) showcase.emplace_back(sf, ss);
      for (int i = 0; i < size; ++i) {
        Pupil p;
        p.nc_year = y;
        auto [f, s] = RandomName();
        if (i < static_cast<int>(showcase.size())) {
          f = showcase[i].first;
          s = showcase[i].second;
        }
        p.forename = f;
        p.surname = s;
        const int entry = kYear7Entry - (y - 7);
        p.user_code = usernames_.Take(std::to_string(entry) + Fold(s) + Fold(f).substr(0, 1));
        p.email = Email(f, s);
        const int form = i % forms;  // 7A..7Z, then 7A2..
        p.form = std::to_string(y) + static_cast<char>('A' + form % 26) +
                 (form >= 26 ? std::to_string(form / 26 + 1) : std::string());
        const long long n = static_cast<long long>(pupils.size());
        char id[32];
        std::snprintf(id, sizeof id, "%012lld",
                      100000000000LL + n * 1009 + static_cast<long long>(rng_.Below(1009)));
        p.school_id = id;
        year_members_[y].push_back(static_cast<int>(pupils.size()));
        pupils.push_back(std::move(p));
      }
    }
  }

  void MakeStaff() {
    const int total = std::max(0, opt_.staff);
    // How many staff each department gets: start with one each, then give
    // each further member to the department furthest below its recorded share.
    int outside = total > kDepartmentCount
                      ? std::max(1, static_cast<int>(std::lround(
                                        total * double(kRecordedStaff - kRecordedDepartmentStaff) /
                                        kRecordedStaff)))
                      : 0;
    int in_departments = total - outside;
    std::vector<int> count(kDepartmentCount, 0);
    if (in_departments >= kDepartmentCount) {
      std::fill(count.begin(), count.end(), 1);
      for (int k = kDepartmentCount; k < in_departments; ++k) {
        int best = 0;
        for (int d = 1; d < kDepartmentCount; ++d) {
          // w_d / c_d > w_best / c_best
          if (kDepartments[d].staff * count[best] > kDepartments[best].staff * count[d]) best = d;
        }
        ++count[best];
      }
    } else {
      // Fewer staff than departments: the biggest departments get one each.
      std::vector<int> order(kDepartmentCount);
      for (int d = 0; d < kDepartmentCount; ++d) order[d] = d;
      std::stable_sort(order.begin(), order.end(), [](int a, int b) {
        return kDepartments[a].staff > kDepartments[b].staff;
      });
      for (int k = 0; k < in_departments; ++k) count[order[k]] = 1;
    }
    std::vector<int> department_of;
    for (int d = 0; d < kDepartmentCount; ++d)
      for (int k = 0; k < count[d]; ++k) department_of.push_back(d);
    for (int k = 0; k < outside; ++k) department_of.push_back(-1);
    rng_.Shuffle(department_of);

    static const std::pair<const char*, const char*> kShowcase[] = {
        {"Siobhán", "O'Connor"}, {"José", "Núñez"}, {"Anaïs", "D'Souza"}};
    for (int i = 0; i < total; ++i) {
      Staff s;
      auto [f, n] = RandomName();
      if (i < static_cast<int>(std::size(kShowcase))) {
        f = kShowcase[i].first;
        n = kShowcase[i].second;
      }
      s.forename = f;
      s.surname = n;
      s.title = kTitles[rng_.Below(static_cast<int>(std::size(kTitles)))];
      s.user_code = usernames_.Take(Fold(f).substr(0, 1) + Fold(n));
      std::string initials = Fold(f).substr(0, 1);
      if (rng_.Chance(0.3)) initials += static_cast<char>('a' + rng_.Below(26));  // middle name
      initials += Fold(n).substr(0, 1);
      for (char& c : initials) c = static_cast<char>(c - 'a' + 'A');
      s.initials = initials;
      s.email = Email(f, n);
      s.department = department_of[i];
      staff.push_back(std::move(s));
    }
    pools_.assign(kAnyone + 1, {});
    for (int i = 0; i < total; ++i) {
      const int d = staff[i].department;
      pools_[d < 0 ? kOutside : d].push_back(i);
      pools_[kAnyone].push_back(i);
    }
    next_in_pool_.assign(kAnyone + 1, 0);
  }

  // Which pool teaches a subject: its department's staff, else the staff
  // outside departments, else everyone (kAnyone).
  static constexpr int kOutside = kDepartmentCount;
  static constexpr int kAnyone = kDepartmentCount + 1;
  int PoolFor(int subject) const {
    const int d = DepartmentIndex(Subject(subject).department);
    if (d >= 0 && !pools_[d].empty()) return d;
    if (!pools_[kOutside].empty()) return kOutside;
    return kAnyone;
  }

  // Creates a set with its teachers. Its code is `code_prefix` plus the first
  // free number ("7/Ma2"), or, `by_initials`, plus the teacher's initials
  // ("9/M/RCA", then "9/M/RCA2").
  Set& AddSet(int subject, int year, const std::string& code_prefix, bool by_initials) {
    Set s;
    s.id = static_cast<int>(sets.size()) + 1;
    s.subject = subject;
    s.year = year;
    const int key = PoolFor(subject);
    const std::vector<int>& pool = pools_[key];
    if (!pool.empty()) {
      int& next = next_in_pool_[key];
      // Teachers take turns; now and then one takes two parallel sets of the
      // same subject and year (hence codes like 9/M/RCA and 9/M/RCA2).
      const bool parallel = !sets.empty() && sets.back().subject == subject &&
                            sets.back().year == year && sets.back().teacher >= 0 &&
                            rng_.Chance(0.2);
      if (parallel) {
        s.teacher = sets.back().teacher;
      } else {
        s.teacher = pool[next % pool.size()];
        ++next;
      }
      // About one set in six has a second (associated) teacher.
      if (pool.size() >= 2 && rng_.Chance(0.17)) {
        int other = pool[rng_.Below(static_cast<int>(pool.size()))];
        if (other == s.teacher) other = pool[(next) % pool.size()];
        if (other != s.teacher) s.associated.push_back(other);
      }
    }
    if (by_initials) {
      std::string initials = s.teacher >= 0 ? staff[s.teacher].initials : "XX";
      s.code = set_codes_.Take(code_prefix + initials);
    } else {
      s.code = set_codes_.Numbered(code_prefix);
    }
    sets.push_back(std::move(s));
    return sets.back();
  }

  // Splits `members` into k near-equal sets, coded "<y>/<Code>1..k" or
  // `prefix` + teacher initials.
  void SplitIntoSets(int subject, int year, std::vector<int> members, int k,
                     const std::string& prefix = "", bool by_initials = false) {
    if (members.empty()) return;
    k = std::clamp(k, 1, static_cast<int>(members.size()));
    const std::string code_prefix =
        prefix.empty() ? std::to_string(year) + "/" + Subject(subject).code : prefix;
    const std::size_t n = members.size();
    for (int j = 0; j < k; ++j) {
      Set& s = AddSet(subject, year, code_prefix, by_initials);
      std::size_t from = n * static_cast<std::size_t>(j) / static_cast<std::size_t>(k);
      std::size_t to = n * static_cast<std::size_t>(j + 1) / static_cast<std::size_t>(k);
      s.pupils.assign(members.begin() + static_cast<std::ptrdiff_t>(from),
                      members.begin() + static_cast<std::ptrdiff_t>(to));
    }
  }
  std::vector<int> Shuffled(const std::vector<int>& v) {
    std::vector<int> out = v;
    rng_.Shuffle(out);
    return out;
  }

  void KeyStage3(int y) {
    const std::vector<int>& cohort = year_members_[y];
    const int n = static_cast<int>(cohort.size());
    if (n == 0) return;
    static const int kWhole[] = {kAr, kCs, kDT, kDr, kEn, kFr, kGg, kHi, kMa, kMu, kRS, kSc};
    for (int subject : kWhole) {
      const int k = RoundPositive(n / 18.0);
      if (y == 9 && (subject == kEn || subject == kMa)) {
        // Year 9 English and Maths are set by teacher: 9/E/TT, 9/M/RCA2.
        SplitIntoSets(subject, y, Shuffled(cohort), k, subject == kEn ? "9/E/" : "9/M/", true);
      } else {
        SplitIntoSets(subject, y, Shuffled(cohort), k);
      }
    }
    // Half take German, half Spanish (a small year takes just one of them);
    // a quarter also take Latin, if that makes a class of ten.
    std::vector<int> order = Shuffled(cohort);
    if (n >= 40) {
      std::vector<int> german(order.begin(), order.begin() + (n + 1) / 2);
      std::vector<int> spanish(order.begin() + (n + 1) / 2, order.end());
      SplitIntoSets(kGe, y, german, RoundPositive(german.size() / 21.0));
      SplitIntoSets(kSp, y, spanish, RoundPositive(spanish.size() / 21.0));
    } else {
      SplitIntoSets(y % 2 ? kSp : kGe, y, order, RoundPositive(n / 21.0));
    }
    order = Shuffled(cohort);
    order.resize(static_cast<std::size_t>(std::lround(n * 30.0 / 125.0)));
    if (order.size() >= 10) SplitIntoSets(kLa, y, order, RoundPositive(order.size() / 15.0));
  }

  void Gcse(int y) {
    const std::vector<int>& cohort = year_members_[y];
    const int n = static_cast<int>(cohort.size());
    if (n == 0) return;
    for (int subject : {kMa, kEn, kBi, kCh, kPh})
      SplitIntoSets(subject, y, Shuffled(cohort), RoundPositive(n / 21.0));
    // Four options each from thirteen; a small year offers fewer (about one
    // option per three pupils, at least four) so classes stay viable.
    std::vector<int> options = {kAr, kCs, kDT, kDr, kEc, kFr, kGe, kGg, kHi, kLa, kMu, kRS, kSp};
    const int offered = std::clamp(static_cast<int>(std::lround(n / 3.0)), 4,
                                   static_cast<int>(options.size()));
    if (offered < static_cast<int>(options.size())) {
      rng_.Shuffle(options);
      options.resize(static_cast<std::size_t>(offered));
      std::sort(options.begin(), options.end());
    }
    std::map<int, std::vector<int>> takers;
    for (int p : cohort) {
      std::vector<int> choice = options;
      rng_.Shuffle(choice);
      for (int k = 0; k < 4; ++k) takers[choice[k]].push_back(p);
    }
    for (int subject : options) {
      const auto& t = takers[subject];
      SplitIntoSets(subject, y, t, CeilDiv(static_cast<int>(t.size()), 24));
    }
    std::vector<int> ax = Shuffled(cohort);
    ax.resize(static_cast<std::size_t>(std::lround(n * 36.0 / 125.0)));
    SplitIntoSets(kAX, y, ax, CeilDiv(static_cast<int>(ax.size()), 12));
    if (y == 11) {
      std::vector<int> careers = Shuffled(cohort);
      careers.resize(static_cast<std::size_t>(std::min(n, RoundPositive(n * 18.0 / 125.0))));
      SplitIntoSets(kCR, y, careers, 1);
    }
  }

  void SixthForm(int y) {
    const std::vector<int>& cohort = year_members_[y];
    const int n = static_cast<int>(cohort.size());
    if (n == 0) return;
    struct Choice { int subject; int weight; };
    static const Choice kChoices[] = {
        {kMa, 25}, {kBi, 15}, {kCh, 15}, {kEc, 13}, {kEn, 12}, {kHi, 12}, {kPh, 12}, {kGg, 10},
        {kCs, 10}, {kAr, 8},  {kRS, 8},  {kFr, 6},  {kSp, 6},  {kDT, 6},  {kDr, 6},  {kGe, 5},
        {kMu, 5},
    };
    // A small sixth form offers only the most popular subjects: about one
    // per two pupils, at least three.
    const int kCount = std::clamp(static_cast<int>(std::lround(n / 2.0)), 3,
                                  static_cast<int>(std::size(kChoices)));
    // Each pupil takes three subjects; one in three takes a fourth.
    std::map<int, std::vector<int>> takers;
    for (int p : cohort) {
      const int how_many = std::min(kCount, rng_.Chance(1.0 / 3.0) ? 4 : 3);
      std::vector<bool> taken(kCount, false);
      for (int k = 0; k < how_many; ++k) {
        int total = 0;
        for (int c = 0; c < kCount; ++c) if (!taken[c]) total += kChoices[c].weight;
        int r = rng_.Below(total);
        for (int c = 0; c < kCount; ++c) {
          if (taken[c]) continue;
          if (r < kChoices[c].weight) {
            taken[c] = true;
            takers[kChoices[c].subject].push_back(p);
            break;
          }
          r -= kChoices[c].weight;
        }
      }
    }
    // Each subject's sets sit in different option blocks A-E; a pupil joins
    // the set whose block they have free, else the emptiest.
    std::map<int, std::vector<char>> block_used;  // pupil -> blocks taken
    for (int ci = 0; ci < kCount; ++ci) {
      const Choice& c = kChoices[ci];
      const std::vector<int>& t = takers[c.subject];
      if (t.empty()) continue;
      const int k = RoundPositive(static_cast<double>(t.size()) / 15.0);
      const int first_block = rng_.Below(5);
      const std::size_t block_at = std::to_string(y).size() + 1;  // "12/B/TH"[3]
      std::vector<std::size_t> indices;
      for (int j = 0; j < k; ++j) {
        const char block = static_cast<char>('A' + (first_block + j) % 5);
        AddSet(c.subject, y, std::to_string(y) + "/" + block + "/", true);
        indices.push_back(sets.size() - 1);
      }
      // Each pupil joins the emptiest set, counting a set in a block they
      // already use as six pupils fuller.
      for (int p : t) {
        std::vector<char>& used = block_used[p];
        std::size_t best = indices[0];
        std::size_t best_cost = SIZE_MAX;
        for (std::size_t idx : indices) {
          const char block = sets[idx].code[block_at];
          const bool clash = std::find(used.begin(), used.end(), block) != used.end();
          const std::size_t cost = sets[idx].pupils.size() + (clash ? 6 : 0);
          if (cost < best_cost) {
            best = idx;
            best_cost = cost;
          }
        }
        sets[best].pupils.push_back(p);
        used.push_back(sets[best].code[block_at]);
      }
    }
    // Academic Extension: two sets of twelve in Year 12; in Year 13 one, plus
    // the Extended Project set (NULL category).
    const double per = n / 88.0;
    std::vector<int> ax = Shuffled(cohort);
    ax.resize(static_cast<std::size_t>(std::lround((y == 12 ? 24 : 12) * per)));
    SplitIntoSets(kAX, y, ax, CeilDiv(static_cast<int>(ax.size()), 12));
    if (y == 13) {
      std::vector<int> ep = Shuffled(cohort);
      ep.resize(static_cast<std::size_t>(std::min(n, RoundPositive(12 * per))));
      SplitIntoSets(kEP, y, ep, 1);
    }
  }

  Options opt_;
  Rng rng_;
  std::map<int, std::vector<int>> year_members_;
  UniqueNames usernames_, email_locals_, set_codes_;
  std::vector<std::vector<int>> pools_;
  std::vector<int> next_in_pool_;
};

// ---------------------------------------------------------------------------
// SQL text.
// ---------------------------------------------------------------------------
std::string Q(std::string_view identifier) { return "\"" + std::string(identifier) + "\""; }

std::string Lit(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  out += '\'';
  return out;
}
std::string Lit(int v) { return std::to_string(v); }
std::string LitOrNull(int v, bool null) { return null ? "NULL" : std::to_string(v); }

// Rows of one table as multi-row INSERTs, 500 rows a statement.
void AddInserts(std::vector<std::string>& out, const std::string& table,
                const std::vector<std::string>& columns,
                const std::vector<std::string>& rows) {
  constexpr std::size_t kRowsPerStatement = 500;
  std::string head = "INSERT INTO " + Q(table) + " (";
  for (std::size_t i = 0; i < columns.size(); ++i) head += (i ? ", " : "") + Q(columns[i]);
  head += ") VALUES\n";
  for (std::size_t start = 0; start < rows.size(); start += kRowsPerStatement) {
    std::string stmt = head;
    const std::size_t end = std::min(rows.size(), start + kRowsPerStatement);
    for (std::size_t i = start; i < end; ++i) {
      stmt += "(" + rows[i] + ")";
      stmt += (i + 1 < end) ? ",\n" : ";";
    }
    out.push_back(std::move(stmt));
  }
}

std::vector<std::string> TableDdl() {
  return {
      "CREATE TABLE \"TblPupilManagementPupils\" (\n"
      "  \"TblPupilManagementPupilsID\" INTEGER PRIMARY KEY,\n"
      "  \"txtSchoolID\" VARCHAR(50) NOT NULL UNIQUE,\n"
      "  \"txtUserCode\" VARCHAR(50),\n"
      "  \"txtForename\" VARCHAR(100),\n"
      "  \"txtSurname\" VARCHAR(100),\n"
      "  \"txtEmailAddress\" VARCHAR(255),\n"
      "  \"intNCYear\" INTEGER,\n"
      "  \"txtForm\" VARCHAR(20),\n"
      "  \"intSystemStatus\" INTEGER NOT NULL\n"
      ");",
      "CREATE TABLE \"TblStaff\" (\n"
      "  \"TblStaffID\" INTEGER PRIMARY KEY,\n"
      "  \"User_Code\" VARCHAR(50) NOT NULL UNIQUE,\n"
      "  \"Title\" VARCHAR(20),\n"
      "  \"Firstname\" VARCHAR(100),\n"
      "  \"Surname\" VARCHAR(100),\n"
      "  \"Initials\" VARCHAR(10),\n"
      "  \"SchoolEmailAddress\" VARCHAR(255),\n"
      "  \"SystemStatus\" INTEGER NOT NULL,\n"
      "  \"TeachingStaff\" INTEGER NOT NULL\n"
      ");",
      "CREATE TABLE \"TblTeachingManagerSubjects\" (\n"
      "  \"TblTeachingManagerSubjectsID\" INTEGER PRIMARY KEY,\n"
      "  \"txtSubjectName\" VARCHAR(100) NOT NULL,\n"
      "  \"txtSubjectCode\" VARCHAR(10),\n"
      "  \"txtDepartment\" VARCHAR(100),\n"
      "  \"intMoodleCategoryID\" INTEGER\n"
      ");",
      "CREATE TABLE \"TblTeachingManagerSets\" (\n"
      "  \"TblTeachingManagerSetsID\" INTEGER PRIMARY KEY,\n"
      "  \"intSubject\" INTEGER NOT NULL,\n"
      "  \"intYear\" INTEGER NOT NULL,\n"
      "  \"txtSetCode\" VARCHAR(50) NOT NULL UNIQUE,\n"
      "  \"txtTeacher\" VARCHAR(50)\n"
      ");",
      "CREATE TABLE \"TblTeachingManagerSetLists\" (\n"
      "  \"TblTeachingManagerSetListsID\" INTEGER PRIMARY KEY,\n"
      "  \"intSetID\" INTEGER NOT NULL,\n"
      "  \"txtSchoolID\" VARCHAR(50) NOT NULL\n"
      ");",
      "CREATE INDEX \"IX_TblTeachingManagerSetLists_intSetID\" ON "
      "\"TblTeachingManagerSetLists\" (\"intSetID\");",
      "CREATE TABLE \"TblTeachingManagerSetAssociatedTeachers\" (\n"
      "  \"TblTeachingManagerSetAssociatedTeachersID\" INTEGER PRIMARY KEY,\n"
      "  \"intSetID\" INTEGER NOT NULL,\n"
      "  \"txtTeacher\" VARCHAR(50) NOT NULL\n"
      ");",
  };
}

constexpr const char* kTableNames[] = {
    "TblTeachingManagerSetAssociatedTeachers", "TblTeachingManagerSetLists",
    "TblTeachingManagerSets", "TblTeachingManagerSubjects", "TblStaff",
    "TblPupilManagementPupils",
};

// The two views. Plain SQL that SQLite and PostgreSQL both accept; the C++
// in Generate() computes the same rows.
std::vector<std::string> ViewDdl() {
  return {
      "CREATE VIEW \"VwMoodleCourseData\" "
      "(\"txtFullName\", \"txtShortName\", \"txtCourseID\", \"intCategoryID\") AS\n"
      "SELECT sub.\"txtSubjectName\" || ' - ' || s.\"txtSetCode\",\n"
      "       sub.\"txtSubjectName\" || ' - ' || s.\"txtSetCode\",\n"
      "       s.\"txtSetCode\",\n"
      "       sub.\"intMoodleCategoryID\"\n"
      "  FROM \"TblTeachingManagerSets\" s\n"
      "  JOIN \"TblTeachingManagerSubjects\" sub\n"
      "    ON sub.\"TblTeachingManagerSubjectsID\" = s.\"intSubject\"\n"
      "UNION ALL\n"
      "SELECT d.\"txtDepartment\" || ' Staff Area - Stf/' || d.\"txtDepartment\",\n"
      "       d.\"txtDepartment\" || ' Staff Area - Stf/' || d.\"txtDepartment\",\n"
      "       'Stf/' || d.\"txtDepartment\",\n"
      "       9\n"
      "  FROM (SELECT DISTINCT \"txtDepartment\" FROM \"TblTeachingManagerSubjects\"\n"
      "         WHERE \"txtDepartment\" IS NOT NULL) d;",

      "CREATE VIEW \"VwMoodleEnrolData\" "
      "(\"txtSetCode\", \"txtEmailAddress\", \"intRoleID\") AS\n"
      "SELECT s.\"txtSetCode\", p.\"txtEmailAddress\", 5\n"
      "  FROM \"TblTeachingManagerSetLists\" l\n"
      "  JOIN \"TblTeachingManagerSets\" s ON s.\"TblTeachingManagerSetsID\" = l.\"intSetID\"\n"
      "  JOIN \"TblPupilManagementPupils\" p ON p.\"txtSchoolID\" = l.\"txtSchoolID\"\n"
      " WHERE p.\"intSystemStatus\" = 1 AND p.\"txtEmailAddress\" IS NOT NULL\n"
      "UNION ALL\n"
      "SELECT s.\"txtSetCode\", st.\"SchoolEmailAddress\", 3\n"
      "  FROM \"TblTeachingManagerSets\" s\n"
      "  JOIN \"TblStaff\" st ON st.\"User_Code\" = s.\"txtTeacher\"\n"
      " WHERE st.\"SystemStatus\" = 1 AND st.\"SchoolEmailAddress\" IS NOT NULL\n"
      "UNION ALL\n"
      "SELECT s.\"txtSetCode\", st.\"SchoolEmailAddress\", 3\n"
      "  FROM \"TblTeachingManagerSetAssociatedTeachers\" a\n"
      "  JOIN \"TblTeachingManagerSets\" s ON s.\"TblTeachingManagerSetsID\" = a.\"intSetID\"\n"
      "  JOIN \"TblStaff\" st ON st.\"User_Code\" = a.\"txtTeacher\"\n"
      " WHERE st.\"SystemStatus\" = 1 AND st.\"SchoolEmailAddress\" IS NOT NULL\n"
      "UNION ALL\n"
      "SELECT DISTINCT 'Stf/' || sub.\"txtDepartment\", st.\"SchoolEmailAddress\", 3\n"
      "  FROM (SELECT \"intSubject\", \"txtTeacher\" FROM \"TblTeachingManagerSets\"\n"
      "        UNION\n"
      "        SELECT s.\"intSubject\", a.\"txtTeacher\"\n"
      "          FROM \"TblTeachingManagerSetAssociatedTeachers\" a\n"
      "          JOIN \"TblTeachingManagerSets\" s\n"
      "            ON s.\"TblTeachingManagerSetsID\" = a.\"intSetID\") t\n"
      "  JOIN \"TblTeachingManagerSubjects\" sub\n"
      "    ON sub.\"TblTeachingManagerSubjectsID\" = t.\"intSubject\"\n"
      "  JOIN \"TblStaff\" st ON st.\"User_Code\" = t.\"txtTeacher\"\n"
      " WHERE sub.\"txtDepartment\" IS NOT NULL\n"
      "   AND st.\"SystemStatus\" = 1 AND st.\"SchoolEmailAddress\" IS NOT NULL;",
  };
}

// ---------------------------------------------------------------------------
// CSV.
// ---------------------------------------------------------------------------
std::string CsvField(std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string CsvLine(std::initializer_list<std::string_view> fields) {
  std::string line;
  bool first = true;
  for (std::string_view f : fields) {
    if (!first) line += ',';
    first = false;
    line += CsvField(f);
  }
  line += "\r\n";
  return line;
}

Status WriteFile(const std::filesystem::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Fail(ErrorCode::kIo, "cannot write " + path.string());
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  out.close();
  if (!out) return Fail(ErrorCode::kIo, "cannot write " + path.string());
  return Ok();
}

}  // namespace

School Generate(const Options& options) {
  Builder b(options);
  b.Run();

  School school;
  school.options = options;
  school.categories = Categories();

  // People: pupils then staff.
  school.people.reserve(b.pupils.size() + b.staff.size());
  for (const Pupil& p : b.pupils)
    school.people.push_back({p.user_code, p.forename, p.surname, p.email, p.school_id, false});
  for (const Staff& s : b.staff)
    school.people.push_back({s.user_code, s.forename, s.surname, s.email, s.user_code, true});

  // VwMoodleCourseData.
  for (const Set& s : b.sets) {
    const SubjectDef& sub = Subject(s.subject);
    std::string name = std::string(sub.name) + " - " + s.code;
    school.course_view.push_back(
        {name, name, s.code,
         sub.category == kNullCategory ? std::string() : std::to_string(sub.category)});
  }
  std::set<std::string> departments;
  for (const SubjectDef& sub : kSubjects)
    if (sub.department) departments.insert(sub.department);
  for (const std::string& d : departments) {
    std::string name = d + " Staff Area - Stf/" + d;
    school.course_view.push_back({name, name, "Stf/" + d, std::to_string(kStaffAreaCategory)});
  }
  std::sort(school.course_view.begin(), school.course_view.end(),
            [](const CourseViewRow& a, const CourseViewRow& b) { return a.idnumber < b.idnumber; });

  // VwMoodleEnrolData, grouped by set, then each group sorted (cheaper than
  // sorting 850,000 rows of strings for the 100x school).
  struct Item {
    const std::string* email;
    int role;
  };
  std::vector<std::pair<std::string, std::vector<Item>>> groups;
  std::map<std::string, std::set<int>> staff_areas;  // department -> staff indices
  for (const Set& s : b.sets) {
    std::vector<Item> items;
    items.reserve(s.pupils.size() + 1 + s.associated.size());
    for (int p : s.pupils) items.push_back({&b.pupils[p].email, 5});
    std::vector<int> teachers = s.associated;
    if (s.teacher >= 0) teachers.push_back(s.teacher);
    for (int t : teachers) {
      items.push_back({&b.staff[t].email, 3});
      if (const char* d = Subject(s.subject).department) staff_areas[d].insert(t);
    }
    groups.emplace_back(s.code, std::move(items));
  }
  for (const auto& [d, members] : staff_areas) {
    std::vector<Item> items;
    for (int t : members) items.push_back({&b.staff[t].email, 3});
    groups.emplace_back("Stf/" + d, std::move(items));
  }
  std::sort(groups.begin(), groups.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::size_t total_rows = 0;
  for (auto& [code, items] : groups) {
    std::sort(items.begin(), items.end(), [](const Item& x, const Item& y) {
      const int c = x.email->compare(*y.email);
      return c != 0 ? c < 0 : x.role < y.role;
    });
    total_rows += items.size();
  }
  school.enrol_view.reserve(total_rows);
  for (const auto& [code, items] : groups)
    for (const Item& it : items) school.enrol_view.push_back({code, *it.email, it.role});

  // The iSAMS tables.
  school.table_ddl = TableDdl();
  std::vector<std::string> rows;
  rows.reserve(b.pupils.size());
  for (std::size_t i = 0; i < b.pupils.size(); ++i) {
    const Pupil& p = b.pupils[i];
    rows.push_back(Lit(static_cast<int>(i) + 1) + ", " + Lit(p.school_id) + ", " +
                   Lit(p.user_code) + ", " + Lit(p.forename) + ", " + Lit(p.surname) + ", " +
                   Lit(p.email) + ", " + Lit(p.nc_year) + ", " + Lit(p.form) + ", 1");
  }
  AddInserts(school.inserts, "TblPupilManagementPupils",
             {"TblPupilManagementPupilsID", "txtSchoolID", "txtUserCode", "txtForename",
              "txtSurname", "txtEmailAddress", "intNCYear", "txtForm", "intSystemStatus"},
             rows);
  rows.clear();
  for (std::size_t i = 0; i < b.staff.size(); ++i) {
    const Staff& s = b.staff[i];
    rows.push_back(Lit(static_cast<int>(i) + 1) + ", " + Lit(s.user_code) + ", " + Lit(s.title) +
                   ", " + Lit(s.forename) + ", " + Lit(s.surname) + ", " + Lit(s.initials) +
                   ", " + Lit(s.email) + ", 1, 1");
  }
  AddInserts(school.inserts, "TblStaff",
             {"TblStaffID", "User_Code", "Title", "Firstname", "Surname", "Initials",
              "SchoolEmailAddress", "SystemStatus", "TeachingStaff"},
             rows);
  rows.clear();
  for (const SubjectDef& sub : kSubjects) {
    rows.push_back(Lit(sub.id) + ", " + Lit(sub.name) + ", " + Lit(sub.code) + ", " +
                   (sub.department ? Lit(sub.department) : "NULL") + ", " +
                   LitOrNull(sub.category, sub.category == kNullCategory));
  }
  AddInserts(school.inserts, "TblTeachingManagerSubjects",
             {"TblTeachingManagerSubjectsID", "txtSubjectName", "txtSubjectCode", "txtDepartment",
              "intMoodleCategoryID"},
             rows);
  rows.clear();
  for (const Set& s : b.sets) {
    rows.push_back(Lit(s.id) + ", " + Lit(s.subject) + ", " + Lit(s.year) + ", " + Lit(s.code) +
                   ", " + (s.teacher >= 0 ? Lit(b.staff[s.teacher].user_code) : "NULL"));
  }
  AddInserts(school.inserts, "TblTeachingManagerSets",
             {"TblTeachingManagerSetsID", "intSubject", "intYear", "txtSetCode", "txtTeacher"},
             rows);
  rows.clear();
  int list_id = 0;
  for (const Set& s : b.sets) {
    for (int p : s.pupils)
      rows.push_back(Lit(++list_id) + ", " + Lit(s.id) + ", " + Lit(b.pupils[p].school_id));
  }
  AddInserts(school.inserts, "TblTeachingManagerSetLists",
             {"TblTeachingManagerSetListsID", "intSetID", "txtSchoolID"}, rows);
  rows.clear();
  int assoc_id = 0;
  for (const Set& s : b.sets) {
    for (int t : s.associated)
      rows.push_back(Lit(++assoc_id) + ", " + Lit(s.id) + ", " + Lit(b.staff[t].user_code));
  }
  AddInserts(school.inserts, "TblTeachingManagerSetAssociatedTeachers",
             {"TblTeachingManagerSetAssociatedTeachersID", "intSetID", "txtTeacher"}, rows);
  return school;
}

Status WriteSqlite(const School& school, const std::string& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
  if (ec) return Fail(ErrorCode::kIo, "cannot replace " + path + ": " + ec.message());
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Fail(ErrorCode::kIo, "cannot create SQLite database " + path + ": " + msg);
  }
  auto exec = [&](const std::string& sql) -> Status {
    char* err = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown error";
      sqlite3_free(err);
      return Fail(ErrorCode::kIo, path + ": " + msg);
    }
    return Ok();
  };
  Status st = exec("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; BEGIN;");
  for (const auto* list : {&school.table_ddl, &school.inserts}) {
    for (const std::string& sql : *list) {
      if (!st) break;
      st = exec(sql);
    }
  }
  for (const std::string& sql : ViewDdl()) {
    if (!st) break;
    st = exec(sql);
  }
  if (st) st = exec("COMMIT;");
  sqlite3_close(db);
  if (!st) std::filesystem::remove(path, ec);
  return st;
}

std::string PostgresScript(const School& school) {
  std::string out;
  out += "-- iSAMS-shaped school from enrolsync-gen-school: pupils=" +
         std::to_string(school.options.pupils) + " staff=" + std::to_string(school.options.staff) +
         " seed=" + std::to_string(school.options.seed) + "\n";
  out += "SET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\nBEGIN;\n";
  out += "DROP VIEW IF EXISTS \"VwMoodleEnrolData\";\n";
  out += "DROP VIEW IF EXISTS \"VwMoodleCourseData\";\n";
  for (const char* t : kTableNames) out += "DROP TABLE IF EXISTS " + Q(t) + ";\n";
  for (const std::string& sql : school.table_ddl) out += sql + "\n";
  for (const std::string& sql : school.inserts) out += sql + "\n";
  for (const std::string& sql : ViewDdl()) out += sql + "\n";
  out += "COMMIT;\n";
  return out;
}

Status WriteCsv(const School& school, const std::string& directory) {
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  if (ec) return Fail(ErrorCode::kIo, "cannot create " + directory + ": " + ec.message());
  const std::filesystem::path dir(directory);

  std::string courses = CsvLine({"txtFullName", "txtShortName", "txtCourseID", "intCategoryID"});
  for (const CourseViewRow& r : school.course_view)
    courses += CsvLine({r.fullname, r.shortname, r.idnumber, r.category});
  std::string enrols = CsvLine({"txtSetCode", "txtEmailAddress", "intRoleID"});
  for (const EnrolViewRow& r : school.enrol_view)
    enrols += CsvLine({r.set_code, r.email, std::to_string(r.role_id)});
  std::string users = CsvLine({"username", "firstname", "lastname", "email", "idnumber"});
  for (const Person& p : school.people)
    users += CsvLine({p.username, p.firstname, p.lastname, p.email, p.idnumber});
  std::string categories = CsvLine({"id", "name"});
  for (const auto& [id, name] : school.categories) categories += CsvLine({std::to_string(id), name});

  if (Status s = WriteFile(dir / "VwMoodleCourseData.csv", courses); !s) return s;
  if (Status s = WriteFile(dir / "VwMoodleEnrolData.csv", enrols); !s) return s;
  if (Status s = WriteFile(dir / "users.csv", users); !s) return s;
  return WriteFile(dir / "categories.csv", categories);
}

}  // namespace enrolsync::schoolgen
