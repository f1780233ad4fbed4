// Tokenizing training text and drawing training and validation windows.
#include <gtest/gtest.h>

#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "mambacpp/error.h"
#include "mambacpp/tokenizer.h"
#include "support/golden_file.h"
#include "train/text_dataset.h"
#include "unit/checkpoint_fixtures.h"

namespace mambacpp::testing {
namespace {

using train::TextDataset;

std::vector<int32_t> iota_tokens(int n) {
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  std::iota(tokens.begin(), tokens.end(), 0);
  return tokens;
}

Tokenizer neox_tokenizer() { return Tokenizer::from_file(test_data("tokenizer/tokenizer.json")); }

TEST(TextDataset, HoldsOutLastTokens) {
  TextDataset data(iota_tokens(100), 4, 0.1, "test");
  EXPECT_EQ(data.window(), 5);
  EXPECT_EQ(data.train_tokens(), 90);
  EXPECT_EQ(data.validation_tokens(), 10);
  EXPECT_EQ(data.validation_windows(), 2);

  std::vector<int32_t> windows(10);
  data.validation_batch(0, 2, windows.data());
  EXPECT_EQ(windows, (std::vector<int32_t>{90, 91, 92, 93, 94, 95, 96, 97, 98, 99}));
}

TEST(TextDataset, TrainWindowsAreContiguousAndInTrainPart) {
  TextDataset data(iota_tokens(1000), 8, 0.1, "test");
  std::vector<int32_t> batch(static_cast<size_t>(16 * data.window()));
  std::set<int32_t> starts;
  for (int64_t step = 1; step <= 20; ++step) {
    data.train_batch(42, step, 0, 16, batch.data());
    for (int64_t b = 0; b < 16; ++b) {
      const int32_t* window = batch.data() + b * data.window();
      starts.insert(window[0]);
      for (int64_t t = 1; t < data.window(); ++t) ASSERT_EQ(window[t], window[0] + t);
      ASSERT_LE(window[data.window() - 1], 899);
    }
  }
  // 320 draws from 892 start positions: most are distinct unless the draws are broken.
  EXPECT_GT(starts.size(), 200u);
}

TEST(TextDataset, TrainBatchIsSeeded) {
  TextDataset data(iota_tokens(1000), 8, 0.1, "test");
  const size_t size = static_cast<size_t>(4 * data.window());
  std::vector<int32_t> first(size), again(size), other_step(size), other_micro(size), other_seed(size);
  data.train_batch(1, 7, 0, 4, first.data());
  data.train_batch(1, 3, 0, 4, other_step.data());
  data.train_batch(1, 7, 0, 4, again.data());
  data.train_batch(1, 7, 1, 4, other_micro.data());
  data.train_batch(2, 7, 0, 4, other_seed.data());
  EXPECT_EQ(first, again);
  EXPECT_NE(first, other_step);
  EXPECT_NE(first, other_micro);
  EXPECT_NE(first, other_seed);
}

TEST(TextDataset, NoValidationWhenFractionIsZero) {
  TextDataset data(iota_tokens(10), 4, 0.0, "test");
  EXPECT_EQ(data.train_tokens(), 10);
  EXPECT_EQ(data.validation_windows(), 0);
}

TEST(TextDataset, TextShorterThanWindowIsRejected) {
  expect_error_naming([] { TextDataset(iota_tokens(4), 4, 0.0, "story.txt"); },
                      {"story.txt", "fewer than one window", "--ctx"});
  // 100 tokens leave 10 for validation, fewer than a window of 17.
  expect_error_naming([] { TextDataset(iota_tokens(100), 16, 0.1, "story.txt"); },
                      {"story.txt", "validation part", "10 of 100"});
}

TEST(TextDataset, TokenizesFilesInOrder) {
  TempDir dir;
  write_bytes(dir.file("a.txt"), "Hello world");
  write_bytes(dir.file("b.txt"), " and more");
  Tokenizer tokenizer = neox_tokenizer();
  std::vector<int32_t> tokens = TextDataset::tokenize_files({dir.file("a.txt"), dir.file("b.txt")}, tokenizer);
  std::vector<int32_t> expected = tokenizer.encode("Hello world", false);
  std::vector<int32_t> second = tokenizer.encode(" and more", false);
  expected.insert(expected.end(), second.begin(), second.end());
  EXPECT_EQ(tokens, expected);
}

TEST(TextDataset, MissingFileIsNamed) {
  TempDir dir;
  Tokenizer tokenizer = neox_tokenizer();
  const std::string missing = dir.file("missing.txt");
  expect_error_naming([&] { TextDataset::tokenize_files({missing}, tokenizer); }, {missing, "not found"});
}

TEST(TextDataset, EmptyFileIsNamed) {
  TempDir dir;
  write_bytes(dir.file("empty.txt"), "");
  Tokenizer tokenizer = neox_tokenizer();
  expect_error_naming([&] { TextDataset::tokenize_files({dir.file("empty.txt")}, tokenizer); },
                      {dir.file("empty.txt"), "empty"});
}

TEST(TextDataset, InvalidUtf8IsNamed) {
  TempDir dir;
  write_bytes(dir.file("bad.txt"), "abc\xff");
  Tokenizer tokenizer = neox_tokenizer();
  expect_error_naming([&] { TextDataset::tokenize_files({dir.file("bad.txt")}, tokenizer); },
                      {dir.file("bad.txt")});
}

}  // namespace
}  // namespace mambacpp::testing
