#include "util/moodle_values.h"

#include <gtest/gtest.h>

#include <string>

namespace enrolsync {
namespace {

TEST(MoodleValues, EmailsAsMoodlesValidateEmail) {
  for (const char* ok : {"a.pupil@school.test", "J.Smith@School.org", "o'brien+x@a-b.school.test", "\"quoted\"@school.test",
                         "a@[192.0.2.1]", "a@[IPv6:2001:db8::1]", "x@xn--bcher-kva.example"}) {
    EXPECT_TRUE(IsMoodleEmail(ok)) << ok;
  }
  for (const char* bad : {"", " a.pupil@school.test ", "bad\"quote@school.test", "two\nlines@school.test",
                          "a@b", "a@school.123", "a b@school.test", "<a@school.test>", "a@@school.test",
                          "a..b@school.test", ".a@school.test", "a.@school.test", "a@-school.test",
                          "a@school-.test", "josé@school.test", "a,b@school.test", "a@school.test\r",
                          "\"a b\"@school.test", "a@[300.1.1.1]", "@school.test", "a@"}) {
    EXPECT_FALSE(IsMoodleEmail(bad)) << bad;
  }
  EXPECT_TRUE(IsMoodleEmail(std::string(64, 'a') + "@school.test"));
  EXPECT_FALSE(IsMoodleEmail(std::string(65, 'a') + "@school.test"));
  EXPECT_FALSE(IsMoodleEmail("a@" + std::string(64, 'b') + ".test"));
  EXPECT_FALSE(IsMoodleEmail(std::string(1 << 20, 'x') + "@school.test"));
}

TEST(MoodleValues, UsernamesAsParamUsername) {
  EXPECT_EQ(CleanMoodleUsername(" JSmith "), "jsmith");
  EXPECT_EQ(CleanMoodleUsername("j smith!"), "jsmith");
  EXPECT_EQ(CleanMoodleUsername("a.b-c_d@e"), "a.b-c_d@e");
}

TEST(MoodleValues, ShownValuesAreEscapedAndCut) {
  EXPECT_EQ(ShownValue("two\nlines\t\x01"), "two\\nlines\\t\\x01");
  EXPECT_EQ(ShownValue("élodie"), "élodie");
  std::string big(1 << 20, 'x');
  std::string shown = ShownValue(big);
  EXPECT_EQ(shown, std::string(200, 'x') + "… (1048576 characters)");
  EXPECT_EQ(ShownValue(std::string(300, 'x'), 300), std::string(300, 'x'));
  EXPECT_EQ(Utf8Length("élodie"), 6u);
}

}  // namespace
}  // namespace enrolsync
