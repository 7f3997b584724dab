// Usernames are lower-cased as Moodle's core_text::strtolower (PHP 8.2's
// mb_strtolower) does, by every user source alike.
#include "sources/username.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "util/strings.h"

#include <gtest/gtest.h>

namespace enrolsync::sources {
namespace {


TEST(Utf8ToLowerTest, LowersAsciiAndLatin) {
  EXPECT_EQ(Utf8ToLower("J.Smith-O'Brien_2"), "j.smith-o'brien_2");
  EXPECT_EQ(Utf8ToLower("ÀÉÎÕÜÞ×ŁŚŻŸ"), "àéîõüþ×łśżÿ");
  EXPECT_EQ(Utf8ToLower("ΑΒΓΔ ΆΈ АБВЯ ЁЂ"), "αβγδ άέ абвя ёђ");
}

// Everything beyond the two-byte range, which the first lowering (ASCII only
// in the SQL source, two-byte only in the LDAP source) left alone.
TEST(Utf8ToLowerTest, LowersThreeAndFourByteCharactersLikeMbStrtolower) {
  EXPECT_EQ(Utf8ToLower("NGUYỄN"), "nguyễn");        // Latin Extended Additional U+1EC4
  EXPECT_EQ(Utf8ToLower("ΣΩΚΡΆΤΗΣ"), "σωκράτησ");    // no final-sigma rule in PHP 8.2
  EXPECT_EQ(Utf8ToLower("ᲛᲐᲠᲘᲐᲛ"), "მარიამ");        // Georgian Mtavruli U+1C9B…
  EXPECT_EQ(Utf8ToLower("ᎠᏴ"), "ꭰᏼ");                // Cherokee
  EXPECT_EQ(Utf8ToLower("ＡＢＣ"), "ａｂｃ");          // full-width
  EXPECT_EQ(Utf8ToLower("Ⓜ"), "ⓜ");                  // circled letters (So, but cased)
  EXPECT_EQ(Utf8ToLower("\U00010400\U0001E900"), "\U00010428\U0001E922");  // Deseret, Adlam
  EXPECT_EQ(Utf8ToLower("KΩÅ"), "kωå");  // Kelvin, Ohm and Angstrom signs U+212A/2126/212B
  EXPECT_EQ(Utf8ToLower("İstanbul"), "i\xCC\x87stanbul");  // U+0130: two code points
  EXPECT_EQ(Utf8ToLower("ǅǈ"), "ǆǉ");  // title-case digraphs
}

TEST(Utf8ToLowerTest, KeepsMalformedBytes) {
  EXPECT_EQ(Utf8ToLower(std::string("A\xC3", 2)), std::string("a\xC3", 2));
  EXPECT_EQ(Utf8ToLower("\xC0\xC1Z"), "\xC0\xC1z");              // overlong lead bytes
  EXPECT_EQ(Utf8ToLower("\xED\xA0\x80Q"), "\xED\xA0\x80q");      // a surrogate
  EXPECT_EQ(Utf8ToLower("\xF4\x90\x80\x80W"), "\xF4\x90\x80\x80w");  // above U+10FFFF
  EXPECT_EQ(Utf8ToLower("\xE1\xBB"), "\xE1\xBB");                // truncated
}

TEST(MoodleUsernameTest, LowersThenTrimsAsPhpTrim) {
  EXPECT_EQ(MoodleUsername("  ÉLODIE.Ça\t\n"), "élodie.ça");
  EXPECT_EQ(MoodleUsername(std::string("\0\x0B" "Ab\r", 5)), "ab");
  EXPECT_EQ(MoodleUsername("\fAb"), "\fab") << "PHP's trim keeps a form feed";
  EXPECT_EQ(MoodleUsername("   "), "");
}

// Every code point against PHP's own mb_strtolower, when PHP with mbstring is
// installed (it is wherever the realmoodle tests run).
TEST(Utf8ToLowerTest, AgreesWithPhpMbStrtolowerOnEveryCodePoint) {
  if (std::system("php -r 'exit(function_exists(\"mb_strtolower\") ? 0 : 1);' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "php with mbstring is not installed";
  char dir[] = "/tmp/utf8lower.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string in = std::string(dir) + "/in", out = std::string(dir) + "/out";
  std::string all;
  for (char32_t cp = 1; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    if (cp == '\n') continue;
    AppendUtf8(all, cp);
    all += "\n";
  }
  std::ofstream(in, std::ios::binary) << all;
  const std::string cmd = "php -r '$f = fopen(\"" + in + "\", \"r\"); $o = fopen(\"" + out +
                          "\", \"w\"); while (($l = fgets($f)) !== false) fwrite($o, mb_strtolower($l, \"UTF-8\"));'";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream got(out, std::ios::binary);
  std::string php((std::istreambuf_iterator<char>(got)), {});
  std::string ours = Utf8ToLower(all);
  std::remove(in.c_str());
  std::remove(out.c_str());
  rmdir(dir);
  ASSERT_EQ(php.size(), ours.size());
  int differences = 0;
  std::size_t a = 0, b = 0;
  while (a < php.size() && differences < 10) {
    std::size_t ea = php.find('\n', a), eb = ours.find('\n', b);
    if (php.compare(a, ea - a, ours, b, eb - b) != 0) {
      ADD_FAILURE() << "PHP: " << php.substr(a, ea - a) << " ours: " << ours.substr(b, eb - b);
      ++differences;
    }
    a = ea + 1;
    b = eb + 1;
  }
  EXPECT_EQ(php, ours);
}

}  // namespace
}  // namespace enrolsync::sources
