#include "schedule/cron.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <limits>
#include <vector>

#include "util/strings.h"

namespace enrolsync::schedule {
namespace {

constexpr std::array<const char*, 12> kMonthAbbr = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                     "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<const char*, 7> kDayAbbr = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};
constexpr std::array<const char*, 12> kMonthName = {"January", "February", "March",     "April",
                                                    "May",     "June",     "July",      "August",
                                                    "September", "October", "November", "December"};
constexpr std::array<const char*, 7> kDayName = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                 "Thursday", "Friday", "Saturday"};
// Longest each month can be (February in a leap year).
constexpr std::array<int, 13> kMaxMonthDays = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

struct FieldSpec {
  int number;        // 1-5, for messages
  const char* name;  // "hour"
  int lo, hi;        // accepted values (day-of-week: 0-7)
  const char* const* names = nullptr;  // three-letter names, value = names_base + index
  int name_count = 0;
  int names_base = 0;
  const char* names_hint = "";
};

const FieldSpec kFields[5] = {
    {1, "minute", 0, 59},
    {2, "hour", 0, 23},
    {3, "day-of-month", 1, 31},
    {4, "month", 1, 12, kMonthAbbr.data(), 12, 1, "JAN-DEC"},
    {5, "day-of-week", 0, 7, kDayAbbr.data(), 7, 0, "SUN-SAT"},
};

using Bits = std::bitset<64>;

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// One number or name. The error text is the detail after the field prefix.
tl::expected<int, std::string> ParseValue(const FieldSpec& f, std::string_view text,
                                          std::string_view item) {
  if (text.empty()) return tl::unexpected("\"" + std::string(item) + "\" is missing a number");
  if (AllDigits(text)) {
    int v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || p != text.data() + text.size() || v < f.lo || v > f.hi) {
      return tl::unexpected(std::string(f.name) + " " + std::string(text) + " is out of range " +
                            std::to_string(f.lo) + "-" + std::to_string(f.hi));
    }
    return v;
  }
  if (f.names) {
    for (int i = 0; i < f.name_count; ++i) {
      if (IEquals(text, f.names[i])) return f.names_base + i;
    }
    return tl::unexpected("unknown " + std::string(f.name) + " name \"" + std::string(text) +
                          "\" (expected " + f.names_hint + " or " + std::to_string(f.lo) + "-" +
                          std::to_string(f.hi) + ")");
  }
  return tl::unexpected("\"" + std::string(text) + "\" is not a number");
}

tl::expected<void, std::string> ParseItem(const FieldSpec& f, std::string_view item, Bits& bits) {
  if (item.empty()) return tl::unexpected(std::string("empty list item (stray comma?)"));
  std::string_view base = item;
  int step = 1;
  bool has_step = false;
  if (auto slash = item.find('/'); slash != std::string_view::npos) {
    has_step = true;
    base = item.substr(0, slash);
    std::string_view st = item.substr(slash + 1);
    int v = 0;
    bool ok = AllDigits(st);
    if (ok) {
      auto [p, ec] = std::from_chars(st.data(), st.data() + st.size(), v);
      ok = ec == std::errc() && p == st.data() + st.size();
    }
    if (!ok || v < 1 || v > f.hi) {
      return tl::unexpected("bad step \"/" + std::string(st) + "\" in \"" + std::string(item) +
                            "\": the step must be a number from 1 to " + std::to_string(f.hi));
    }
    step = v;
  }
  int a = 0, b = 0;
  if (base == "*") {
    a = f.lo;
    b = f.hi;
  } else if (auto dash = base.find('-'); dash != std::string_view::npos) {
    auto lo = ParseValue(f, base.substr(0, dash), item);
    if (!lo) return tl::unexpected(lo.error());
    auto hi = ParseValue(f, base.substr(dash + 1), item);
    if (!hi) return tl::unexpected(hi.error());
    if (*lo > *hi) {
      return tl::unexpected("range \"" + std::string(base) +
                            "\" is reversed (the start must not be after the end; ranges do not wrap)");
    }
    a = *lo;
    b = *hi;
  } else {
    auto v = ParseValue(f, base, item);
    if (!v) return tl::unexpected(v.error());
    if (has_step) {
      return tl::unexpected("step \"" + std::string(item) + "\" needs a range or \"*\" before the '/': write \"" +
                            std::string(base) + "-" + std::to_string(f.hi) + std::string(item.substr(item.find('/'))) +
                            "\"");
    }
    a = b = *v;
  }
  for (int v = a; v <= b; v += step) bits.set(static_cast<std::size_t>(v));
  return {};
}

template <std::size_t N>
std::bitset<N> Narrow(const Bits& b) {
  std::bitset<N> out;
  for (std::size_t i = 0; i < N; ++i) out[i] = b[i];
  return out;
}

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

Result<CronSchedule> ParseFields(std::string_view original, std::string_view fields_text) {
  auto fail = [&](const std::string& detail) {
    return Fail(ErrorCode::kInvalidArgument, "cron " + Quote(original) + ": " + detail);
  };
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  while (i < fields_text.size()) {
    while (i < fields_text.size() && (fields_text[i] == ' ' || fields_text[i] == '\t')) ++i;
    if (i >= fields_text.size()) break;
    std::size_t j = i;
    while (j < fields_text.size() && fields_text[j] != ' ' && fields_text[j] != '\t') ++j;
    fields.push_back(fields_text.substr(i, j - i));
    i = j;
  }
  if (fields.size() != 5) {
    std::string msg = "expected 5 fields (minute hour day-of-month month day-of-week), got " +
                      std::to_string(fields.size());
    if (fields.size() > 5) msg += " (a seconds or year field, or a command, is not supported)";
    return fail(msg);
  }

  Bits bits[5];
  for (int f = 0; f < 5; ++f) {
    const FieldSpec& spec = kFields[f];
    std::string_view text = fields[static_cast<std::size_t>(f)];
    std::size_t start = 0;
    while (true) {
      std::size_t comma = text.find(',', start);
      std::string_view item =
          text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      auto ok = ParseItem(spec, item, bits[f]);
      if (!ok) {
        return fail("field " + std::to_string(spec.number) + " (" + spec.name + ") " + Quote(text) + ": " +
                    ok.error());
      }
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
  }
  if (bits[4][7]) bits[4].set(0);  // 7 is Sunday too

  CronSchedule s;
  s.expr = std::string(original);
  s.minutes = Narrow<60>(bits[0]);
  s.hours = Narrow<24>(bits[1]);
  s.days_of_month = Narrow<32>(bits[2]);
  s.months = Narrow<13>(bits[3]);
  s.days_of_week = Narrow<7>(bits[4]);
  s.dom_restricted = fields[2][0] != '*';
  s.dow_restricted = fields[4][0] != '*';
  s.wildcard_time = fields[0][0] == '*' || fields[1][0] == '*';

  // A day-of-month that can never happen in the chosen months, when the
  // day-of-month alone decides (day-of-week unrestricted): never runs.
  if (!(s.dom_restricted && s.dow_restricted)) {
    int longest = 0;
    for (int m = 1; m <= 12; ++m) {
      if (s.months[static_cast<std::size_t>(m)]) longest = std::max(longest, kMaxMonthDays[static_cast<std::size_t>(m)]);
    }
    int first_day = 1;
    while (first_day <= 31 && !s.days_of_month[static_cast<std::size_t>(first_day)]) ++first_day;
    if (first_day > longest) {
      return fail("day-of-month " + Quote(fields[2]) + " never occurs in month " + Quote(fields[3]) +
                  " (the longest of those months has " + std::to_string(longest) +
                  " days), so the schedule would never run");
    }
  }
  return s;
}

// ---- civil-time arithmetic (proleptic Gregorian, H. Hinnant's algorithms)

std::int64_t FloorDiv(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

std::int64_t DaysFromCivil(std::int64_t y, int m, int d) {
  y -= m <= 2;
  const std::int64_t era = FloorDiv(y, 400);
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void CivilFromDays(std::int64_t z, std::int64_t& y, int& m, int& d) {
  z += 719468;
  const std::int64_t era = FloorDiv(z, 146097);
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  y = yoe + era * 400 + (m <= 2);
}

// 0 = Sunday; day 0 (1970-01-01) was a Thursday.
int WeekdayFromDays(std::int64_t z) { return static_cast<int>(z + 4 - FloorDiv(z + 4, 7) * 7); }

// UTC offset (seconds east) in effect at instant t, per the current TZ.
long OffsetAt(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  if (!localtime_r(&tt, &tm)) return 0;
  return tm.tm_gmtoff;
}

constexpr std::int64_t kDay = 86400;
constexpr std::int64_t kMaxShift = 3 * 3600;  // largest offset change we allow for

// The instants at which the local wall-clock minute `civil` (seconds since
// 1970-01-01 00:00 as if local time were UTC) happens for a job, per the DST
// rules in cron.h. Sets `backward_shift` to how far the clock goes back if a
// fall-back transition is within a day either side (else 0): only then can a
// later wall-clock minute happen at an earlier instant.
void Resolve(std::int64_t civil, bool wildcard, std::vector<std::int64_t>& out, std::int64_t& backward_shift) {
  out.clear();
  const long before = OffsetAt(civil - kDay);
  const long after = OffsetAt(civil + kDay);
  backward_shift = std::clamp<std::int64_t>(before - after, 0, kMaxShift);
  if (before == after) {
    out.push_back(civil - before);
    return;
  }
  std::int64_t valid[2];
  int n = 0;
  for (long o : {before, after}) {
    if (OffsetAt(civil - o) == o) valid[n++] = civil - o;
  }
  if (n == 2) {
    if (valid[0] > valid[1]) std::swap(valid[0], valid[1]);
    out.push_back(valid[0]);                // first pass
    if (wildcard) out.push_back(valid[1]);  // second pass, wildcard jobs only
    return;
  }
  if (n == 1) {
    out.push_back(valid[0]);
    return;
  }
  // In a spring-forward gap: fixed-time jobs run at the first instant after it.
  if (wildcard) return;
  std::int64_t lo = civil - std::max(before, after);  // still the old offset
  std::int64_t hi = civil - std::min(before, after);  // already the new offset
  const long new_offset = OffsetAt(hi);
  while (hi - lo > 1) {
    std::int64_t mid = lo + (hi - lo) / 2;
    if (OffsetAt(mid) == new_offset) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  out.push_back(hi);
}

std::string TwoDigits(int v) { return (v < 10 ? "0" : "") + std::to_string(v); }

// "1-5,7,9" style, with optional names for values.
template <std::size_t N>
std::string RangeList(const std::bitset<N>& bits, int lo, int hi, const char* const* names = nullptr,
                      int names_base = 0) {
  auto label = [&](int v) { return names ? std::string(names[v - names_base]) : std::to_string(v); };
  std::string out;
  int v = lo;
  while (v <= hi) {
    if (!bits[static_cast<std::size_t>(v)]) {
      ++v;
      continue;
    }
    int e = v;
    while (e + 1 <= hi && bits[static_cast<std::size_t>(e + 1)]) ++e;
    if (!out.empty()) out += ",";
    out += label(v);
    if (e == v + 1) {
      out += "," + label(e);
    } else if (e > v) {
      out += "-" + label(e);
    }
    v = e + 1;
  }
  return out;
}

template <std::size_t N>
bool AllSet(const std::bitset<N>& bits, int lo, int hi) {
  for (int v = lo; v <= hi; ++v) {
    if (!bits[static_cast<std::size_t>(v)]) return false;
  }
  return true;
}

std::string JoinAnd(const std::vector<std::string>& parts) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += (i + 1 == parts.size()) ? " and " : ", ";
    out += parts[i];
  }
  return out;
}

}  // namespace

bool CronSchedule::MatchesDay(int month, int mday, int wday) const {
  if (month < 1 || month > 12 || mday < 1 || mday > 31 || wday < 0 || wday > 6) return false;
  if (!months[static_cast<std::size_t>(month)]) return false;
  const bool dom = days_of_month[static_cast<std::size_t>(mday)];
  const bool dow = days_of_week[static_cast<std::size_t>(wday)];
  if (dom_restricted && dow_restricted) return dom || dow;
  return dom && dow;
}

bool CronSchedule::Matches(const std::tm& local) const {
  if (local.tm_min < 0 || local.tm_min > 59 || local.tm_hour < 0 || local.tm_hour > 23) return false;
  return minutes[static_cast<std::size_t>(local.tm_min)] && hours[static_cast<std::size_t>(local.tm_hour)] &&
         MatchesDay(local.tm_mon + 1, local.tm_mday, local.tm_wday);
}

Result<CronSchedule> ParseCron(std::string_view expr) {
  const std::string trimmed = Trim(expr);
  if (trimmed.empty()) {
    return Fail(ErrorCode::kInvalidArgument,
                "cron \"\": empty expression (expected 5 fields: minute hour day-of-month month day-of-week)");
  }
  if (trimmed[0] != '@') return ParseFields(trimmed, trimmed);
  static const std::pair<const char*, const char*> kShortcuts[] = {
      {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"},
  };
  for (const auto& [name, fields] : kShortcuts) {
    if (IEquals(trimmed, name)) return ParseFields(trimmed, fields);
  }
  if (IEquals(trimmed, "@reboot")) {
    return Fail(ErrorCode::kInvalidArgument,
                "cron \"" + trimmed +
                    "\": @reboot is not supported: the enrolsync daemon runs jobs on a time schedule only "
                    "(run `enrolsync sync` from your init system instead)");
  }
  return Fail(ErrorCode::kInvalidArgument,
              "cron \"" + trimmed +
                  "\": unknown shortcut (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or "
                  "@hourly)");
}

std::optional<std::time_t> NextRun(const CronSchedule& s, std::time_t after) {
  ::tzset();
  std::tm lt{};
  if (!localtime_r(&after, &lt)) return std::nullopt;
  const std::int64_t a = static_cast<std::int64_t>(after);
  const std::int64_t civil_after = DaysFromCivil(lt.tm_year + 1900LL, lt.tm_mon + 1, lt.tm_mday) * kDay +
                                   lt.tm_hour * 3600 + lt.tm_min * 60 + lt.tm_sec;
  // Near a fall-back, wall-clock minutes up to the size of the shift before
  // civil_after can still happen after `after` (the repeated hour's second
  // pass). Otherwise local time only moves forward with real time.
  const std::int64_t lookback = std::clamp<std::int64_t>(OffsetAt(a - kDay) - OffsetAt(a + kDay), 0, kMaxShift);
  const std::int64_t start =
      lookback > 0 ? FloorDiv(civil_after - lookback, 60) * 60 : FloorDiv(civil_after, 60) * 60 + 60;

  const std::int64_t first_day = FloorDiv(start, kDay);
  const int first_minute = static_cast<int>((start - first_day * kDay) / 60);
  const std::int64_t last_day = first_day + 10 * 366;

  std::optional<std::int64_t> best;
  std::int64_t stop_civil = std::numeric_limits<std::int64_t>::max();
  std::vector<std::int64_t> instants;
  for (std::int64_t day = first_day; day <= last_day; ++day) {
    if (day * kDay > stop_civil) break;
    std::int64_t y;
    int m, d;
    CivilFromDays(day, y, m, d);
    if (!s.months[static_cast<std::size_t>(m)]) {
      day = (m == 12 ? DaysFromCivil(y + 1, 1, 1) : DaysFromCivil(y, m + 1, 1)) - 1;
      continue;
    }
    if (!s.MatchesDay(m, d, WeekdayFromDays(day))) continue;
    for (int h = 0; h < 24; ++h) {
      if (!s.hours[static_cast<std::size_t>(h)]) continue;
      for (int mi = 0; mi < 60; ++mi) {
        if (!s.minutes[static_cast<std::size_t>(mi)]) continue;
        const int minute_of_day = h * 60 + mi;
        if (day == first_day && minute_of_day < first_minute) continue;
        const std::int64_t civil = day * kDay + minute_of_day * 60;
        if (civil > stop_civil) return static_cast<std::time_t>(*best);
        std::int64_t backward_shift = 0;
        Resolve(civil, s.wildcard_time, instants, backward_shift);
        for (std::int64_t t : instants) {
          if (t > a && (!best || t < *best)) best = t;
        }
        // Once something is found, later wall-clock minutes can only beat it
        // around a fall-back, and then only within the size of the shift.
        if (best && stop_civil == std::numeric_limits<std::int64_t>::max()) {
          stop_civil = civil + backward_shift;
        }
      }
    }
  }
  if (!best) return std::nullopt;
  return static_cast<std::time_t>(*best);
}

std::string Describe(const CronSchedule& s) {
  // Time of day.
  std::string when;
  const bool all_minutes = AllSet(s.minutes, 0, 59);
  const bool all_hours = AllSet(s.hours, 0, 23);
  const std::size_t nmin = s.minutes.count(), nhour = s.hours.count();
  int step = 0;  // minutes == {0, step, 2*step, ...} up to 59
  if (s.minutes[0] && nmin > 1) {
    int second = 1;
    while (!s.minutes[static_cast<std::size_t>(second)]) ++second;
    bool regular = true;
    for (int v = 0; v < 60; ++v) regular = regular && (s.minutes[static_cast<std::size_t>(v)] == (v % second == 0));
    if (regular && 60 % second == 0) step = second;
  }
  const std::string hour_list = RangeList(s.hours, 0, 23);
  if (all_minutes) {
    when = all_hours ? "every minute" : "every minute of hour " + hour_list;
  } else if (step > 1) {
    when = "every " + std::to_string(step) + " minutes" + (all_hours ? "" : " during hour " + hour_list);
  } else if (nmin * nhour <= 8) {
    std::vector<std::string> times;
    for (int h = 0; h < 24; ++h) {
      for (int m = 0; m < 60; ++m) {
        if (s.hours[static_cast<std::size_t>(h)] && s.minutes[static_cast<std::size_t>(m)]) {
          times.push_back(TwoDigits(h) + ":" + TwoDigits(m));
        }
      }
    }
    when = "at " + JoinAnd(times);
  } else if (all_hours && nmin == 1 && s.minutes[0]) {
    when = "every hour, on the hour";
  } else if (all_hours) {
    when = nmin == 1 ? "at minute " + RangeList(s.minutes, 0, 59) + " of every hour"
                     : "at minutes " + RangeList(s.minutes, 0, 59) + " of every hour";
  } else {
    when = "at minute " + RangeList(s.minutes, 0, 59) + " of hour " + hour_list;
  }

  // Days.
  const bool all_dom = AllSet(s.days_of_month, 1, 31);
  const bool all_dow = AllSet(s.days_of_week, 0, 6);
  const std::string dom_text = "day " + RangeList(s.days_of_month, 1, 31) + " of the month";
  const std::string dow_text = RangeList(s.days_of_week, 0, 6, kDayName.data(), 0);
  std::string days;
  if (s.dom_restricted && s.dow_restricted) {
    days = "on " + dom_text + " or on " + dow_text;
  } else if (!all_dom && !all_dow) {
    days = "on " + dom_text + " if it is " + dow_text;
  } else if (!all_dom) {
    days = "on " + dom_text;
  } else if (!all_dow) {
    days = dow_text;
  } else {
    days = "every day";
  }
  std::string out = when + ", " + days;
  if (!AllSet(s.months, 1, 12)) out += ", in " + RangeList(s.months, 1, 12, kMonthName.data(), 1);
  return out;
}

}  // namespace enrolsync::schedule
