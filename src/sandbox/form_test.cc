// PHP-style form decoding: nested arrays and max_input_vars.
#include <gtest/gtest.h>

#include "sandbox/form.h"

namespace enrolsync::sandbox {
namespace {

TEST(Form, NestedBracketsBuildNestedArraysInOrder) {
  auto f = ParseUrlEncoded("a%5B0%5D%5Bb%5D=x&a[0][c]=y+z&a[1][b]=%2F&top=1", 0, true);
  EXPECT_EQ(f.total, 4u);
  auto tree = BuildTree(f.vars);
  EXPECT_EQ(tree.dump(), R"({"a":{"0":{"b":"x","c":"y z"},"1":{"b":"/"}},"top":"1"})");
}

TEST(Form, EmptyBracketsAppendAndPhpRenamesDotsAndSpaces) {
  auto tree = BuildTree(ParseUrlEncoded("v[]=a&v[]=b&a.b=1&c d=2&e[x=3", 0, true).vars);
  EXPECT_EQ(tree.dump(), R"({"v":{"0":"a","1":"b"},"a_b":"1","c_d":"2","e_x":"3"})");
}

TEST(Form, PostKeepsOneVariablePastMaxInputVarsLikePhp) {
  auto f = ParseUrlEncoded("a=1&b=2&c=3&d=4", 2, true);
  EXPECT_TRUE(f.truncated);
  EXPECT_EQ(f.total, 4u);
  ASSERT_EQ(f.vars.size(), 3u);
  EXPECT_EQ(f.vars.back().first, "c");
  EXPECT_EQ(ParseUrlEncoded("a=1&b=2&c=3&d=4", 2, false).vars.size(), 2u);
  EXPECT_FALSE(ParseUrlEncoded("a=1&b=2&c=3", 2, true).truncated);
}

TEST(Form, LaterVariableWithTheSameNameWins) {
  auto tree = BuildTree(ParseUrlEncoded("a=1&a=2&b[0]=x&b[0]=y", 0, true).vars);
  EXPECT_EQ(tree.dump(), R"({"a":"2","b":{"0":"y"}})");
}

}  // namespace
}  // namespace enrolsync::sandbox
