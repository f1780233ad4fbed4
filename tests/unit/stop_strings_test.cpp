#include <gtest/gtest.h>

#include "runtime/stop_strings.h"

namespace mambacpp {
namespace {

std::string stream(StopStringFilter& filter, const std::vector<std::string>& pieces) {
  std::string out;
  for (const auto& p : pieces) out += filter.push(p);
  return out + filter.finish();
}

TEST(StopStringFilter, PassesTextWithoutStops) {
  StopStringFilter filter({});
  EXPECT_EQ(stream(filter, {"Hello", ", ", "world"}), "Hello, world");
  EXPECT_FALSE(filter.stopped());
}

TEST(StopStringFilter, CutsAtStopSplitAcrossPieces) {
  StopStringFilter filter({"\n\n"});
  EXPECT_EQ(filter.push("one\n"), "one");  // "\n" may start the stop string
  EXPECT_EQ(filter.push("\ntwo"), "");
  EXPECT_TRUE(filter.stopped());
  EXPECT_EQ(filter.push("three"), "");
  EXPECT_EQ(filter.finish(), "");
}

TEST(StopStringFilter, ReleasesHeldTextWhenNoStopFollows) {
  StopStringFilter filter({"END"});
  EXPECT_EQ(filter.push("the EN"), "the ");
  EXPECT_EQ(filter.push("D? no, ENDLESS"), "");
  EXPECT_TRUE(filter.stopped());

  StopStringFilter other({"END"});
  EXPECT_EQ(other.push("EN"), "");
  EXPECT_EQ(other.push("ough"), "ENough");
  EXPECT_EQ(other.finish(), "");
  EXPECT_FALSE(other.stopped());
}

TEST(StopStringFilter, EarliestOfSeveralStopsWins) {
  StopStringFilter filter({"cat", "a c"});
  EXPECT_EQ(stream(filter, {"a ca", "t"}), "");
  StopStringFilter second({"xyz", "b"});
  EXPECT_EQ(stream(second, {"aab", "xyz"}), "aa");
}

}  // namespace
}  // namespace mambacpp
