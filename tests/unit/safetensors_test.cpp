// parse_safetensors and SafetensorsFile on valid and malformed files written byte by byte.
// Each malformed file must raise mambacpp::Error naming the file and the offending tensor.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "io/safetensors.h"
#include "unit/checkpoint_fixtures.h"

namespace mambacpp::testing {
namespace {

const std::string kPath = "dir/weights.safetensors";

std::vector<TensorEntry> parse(const std::string& bytes,
                               std::map<std::string, std::string>* metadata = nullptr) {
  return parse_safetensors(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                           kPath, metadata);
}

// Two tensors: "a" F32 [2, 2] at [0, 16) and "b" BF16 [3] at [16, 22).
const std::string kTwoTensorHeader =
    R"({"__metadata__":{"format":"pt"},)"
    R"("a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
    R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]}})";

std::string data_bytes(size_t n) {
  std::string data(n, '\0');
  for (size_t i = 0; i < n; ++i) data[i] = static_cast<char>(i);
  return data;
}

TEST(Safetensors, ParsesTwoTensors) {
  std::string bytes = safetensors_bytes(kTwoTensorHeader, data_bytes(22));
  std::map<std::string, std::string> metadata;
  std::vector<TensorEntry> tensors = parse(bytes, &metadata);

  ASSERT_EQ(tensors.size(), 2u);
  const TensorEntry& a = tensors[0].name == "a" ? tensors[0] : tensors[1];
  const TensorEntry& b = tensors[0].name == "a" ? tensors[1] : tensors[0];
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.dtype, DType::F32);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(a.n_bytes, 16u);
  EXPECT_EQ(a.file, kPath);
  const auto* data_section = reinterpret_cast<const unsigned char*>(bytes.data()) + 8 +
                             kTwoTensorHeader.size();
  EXPECT_EQ(a.data, data_section);
  EXPECT_EQ(b.name, "b");
  EXPECT_EQ(b.dtype, DType::BF16);
  EXPECT_EQ(b.shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(b.n_bytes, 6u);
  EXPECT_EQ(b.data, data_section + 16);
  EXPECT_EQ(metadata["format"], "pt");
}

TEST(Safetensors, ParsesEmptyHeaderAndScalar) {
  EXPECT_TRUE(parse(safetensors_bytes("{}", "")).empty());

  // A shape of [] is a scalar of one element.
  auto tensors = parse(safetensors_bytes(R"({"s":{"dtype":"I64","shape":[],"data_offsets":[0,8]}})",
                                         data_bytes(8)));
  ASSERT_EQ(tensors.size(), 1u);
  EXPECT_EQ(tensors[0].numel(), 1);
  EXPECT_EQ(tensors[0].n_bytes, 8u);
}

TEST(Safetensors, WriterOutputReadsBack) {
  TempDir dir;
  const float values[4] = {1.5f, -2.0f, 0.25f, 3.0f};
  const int64_t ids[3] = {7, 0, 255};
  write_safetensors(dir.file("out.safetensors"),
                    {{"values", DType::F32, {2, 2}, values}, {"ids", DType::I64, {3}, ids}},
                    {{"model", "tiny"}});

  SafetensorsFile file(dir.file("out.safetensors"));
  const TensorEntry& v = file.get("values");
  EXPECT_EQ(v.shape, (std::vector<int64_t>{2, 2}));
  ASSERT_EQ(v.n_bytes, sizeof values);
  EXPECT_EQ(std::memcmp(v.data, values, sizeof values), 0);
  const TensorEntry& i = file.get("ids");
  ASSERT_EQ(i.n_bytes, sizeof ids);
  EXPECT_EQ(std::memcmp(i.data, ids, sizeof ids), 0);
  EXPECT_EQ(file.metadata().at("model"), "tiny");
  // The data section starts 8-byte aligned, as the writer promises.
  uint64_t header_length;
  std::memcpy(&header_length, read_bytes(dir.file("out.safetensors")).data(), 8);
  EXPECT_EQ((8 + header_length) % 8, 0u);
}

TEST(Safetensors, MissingTensorNamesFile) {
  TempDir dir;
  write_bytes(dir.file("w.safetensors"), safetensors_bytes(kTwoTensorHeader, data_bytes(22)));
  SafetensorsFile file(dir.file("w.safetensors"));
  EXPECT_EQ(file.find("c"), nullptr);
  expect_error_naming([&] { file.get("c"); }, {dir.file("w.safetensors"), "'c'", "not found"});
}

TEST(Safetensors, EmptyFile) {
  TempDir dir;
  write_bytes(dir.file("empty.safetensors"), "");
  expect_error_naming([&] { SafetensorsFile file(dir.file("empty.safetensors")); },
                      {dir.file("empty.safetensors"), "0 bytes"});
}

TEST(Safetensors, MissingFile) {
  TempDir dir;
  expect_error_naming([&] { SafetensorsFile file(dir.file("absent.safetensors")); },
                      {dir.file("absent.safetensors"), "cannot open"});
}

TEST(Safetensors, ShorterThanLengthField) {
  expect_error_naming([] { parse(std::string("\x10\0\0\0\0", 5)); }, {kPath, "5 bytes"});
}

TEST(Safetensors, HeaderLengthPastEndOfFile) {
  std::string bytes = safetensors_bytes(kTwoTensorHeader, data_bytes(22));
  uint64_t length = 1000;  // the file is 8 + header + 22 bytes, far less
  std::memcpy(bytes.data(), &length, 8);
  expect_error_naming([&] { parse(bytes); },
                      {kPath, "header length 1000", std::to_string(bytes.size()) + " bytes"});

  // A length near 2^64 must not wrap around when added to the 8 length bytes.
  length = ~uint64_t{0} - 4;
  std::memcpy(bytes.data(), &length, 8);
  expect_error_naming([&] { parse(bytes); }, {kPath, "header length " + std::to_string(length)});
}

TEST(Safetensors, HeaderLengthOverLimit) {
  // A sparse file of 100 MiB + 64 bytes whose header length claims 100 MiB + 1: inside the
  // file, but over the 100 MiB header limit.
  TempDir dir;
  const uint64_t limit = 100ull * 1024 * 1024;
  std::string path = dir.file("huge_header.safetensors");
  write_bytes(path, safetensors_bytes(std::string(1, ' '), ""));
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(limit + 64)), 0);
  std::string head(8, '\0');
  uint64_t length = limit + 1;
  std::memcpy(head.data(), &length, 8);
  {
    std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
    out.write(head.data(), 8);
  }
  expect_error_naming([&] { SafetensorsFile file(path); }, {path, "100 MiB"});
}

TEST(Safetensors, TruncatedInHeader) {
  std::string bytes = safetensors_bytes(kTwoTensorHeader, data_bytes(22));
  std::string cut = bytes.substr(0, 8 + kTwoTensorHeader.size() / 2);
  expect_error_naming([&] { parse(cut); },
                      {kPath, "header length " + std::to_string(kTwoTensorHeader.size()),
                       "past the end"});
}

TEST(Safetensors, TruncatedInDataSection) {
  std::string bytes = safetensors_bytes(kTwoTensorHeader, data_bytes(22));
  std::string cut = bytes.substr(0, bytes.size() - 3);  // "b" ends at 22, 19 bytes remain
  expect_error_naming([&] { parse(cut); }, {kPath, "'b'", "[16, 22]", "19 bytes"});
}

TEST(Safetensors, TruncatedFileOnDisk) {
  TempDir dir;
  std::string bytes = safetensors_bytes(kTwoTensorHeader, data_bytes(22));
  write_bytes(dir.file("cut.safetensors"), bytes.substr(0, bytes.size() - 3));
  expect_error_naming([&] { SafetensorsFile file(dir.file("cut.safetensors")); },
                      {dir.file("cut.safetensors"), "'b'", "data_offsets"});
}

TEST(Safetensors, HeaderNotJson) {
  expect_error_naming([] { parse(safetensors_bytes("{\"a\": ", "")); }, {kPath, "not valid JSON"});
}

TEST(Safetensors, HeaderNotObject) {
  expect_error_naming([] { parse(safetensors_bytes("[1, 2, 3]", "")); },
                      {kPath, "not a JSON object"});
  expect_error_naming([] { parse(safetensors_bytes("\"text\"", "")); },
                      {kPath, "not a JSON object"});
}

TEST(Safetensors, EntryNotObject) {
  expect_error_naming([] { parse(safetensors_bytes(R"({"a": [1, 2]})", "")); },
                      {kPath, "'a'", "not a JSON object"});
}

TEST(Safetensors, MetadataValueNotString) {
  expect_error_naming([] { parse(safetensors_bytes(R"({"__metadata__": {"n": 1}})", "")); },
                      {kPath, "__metadata__", "'n'"});
}

TEST(Safetensors, UnknownDtype) {
  std::string header = R"({"w":{"dtype":"F8_E5M3","shape":[4],"data_offsets":[0,4]}})";
  expect_error_naming([&] { parse(safetensors_bytes(header, data_bytes(4))); },
                      {kPath, "'w'", "unknown dtype 'F8_E5M3'"});
}

TEST(Safetensors, MissingOrMistypedFields) {
  expect_error_naming(
      [] { parse(safetensors_bytes(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", data_bytes(4))); },
      {kPath, "'w'", "dtype"});
  expect_error_naming(
      [] { parse(safetensors_bytes(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", data_bytes(4))); },
      {kPath, "'w'", "shape"});
  expect_error_naming(
      [] { parse(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", data_bytes(4))); },
      {kPath, "'w'", "shape"});
  expect_error_naming(
      [] { parse(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", data_bytes(4))); },
      {kPath, "'w'", "shape"});
  expect_error_naming(
      [] { parse(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[1]}})", data_bytes(4))); },
      {kPath, "'w'", "data_offsets"});
  expect_error_naming(
      [] { parse(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", data_bytes(4))); },
      {kPath, "'w'", "data_offsets"});
  expect_error_naming(
      [] { parse(safetensors_bytes(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", data_bytes(4))); },
      {kPath, "'w'", "data_offsets"});
}

TEST(Safetensors, OverlappingDataOffsets) {
  std::string header =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  expect_error_naming([&] { parse(safetensors_bytes(header, data_bytes(12))); },
                      {kPath, "'a'", "'b'", "overlapping"});

  // One tensor inside another.
  header =
      R"({"outer":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
      R"("inner":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  expect_error_naming([&] { parse(safetensors_bytes(header, data_bytes(16))); },
                      {kPath, "'outer'", "'inner'", "overlapping"});

  // Two tensors on the same bytes.
  header =
      R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("y":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  expect_error_naming([&] { parse(safetensors_bytes(header, data_bytes(8))); },
                      {kPath, "'x'", "'y'", "overlapping"});
}

TEST(Safetensors, OutOfRangeDataOffsets) {
  // End past the data section.
  std::string header = R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  expect_error_naming([&] { parse(safetensors_bytes(header, data_bytes(12))); },
                      {kPath, "'w'", "[0, 16]", "12 bytes"});

  // Begin after end.
  header = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})";
  expect_error_naming([&] { parse(safetensors_bytes(header, data_bytes(12))); },
                      {kPath, "'w'", "[8, 4]"});

  // Offsets near 2^64, where begin + size would wrap around.
  header = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551615]}})";
  expect_error_naming([&] { parse(safetensors_bytes(header, data_bytes(12))); },
                      {kPath, "'w'", "data_offsets"});
}

TEST(Safetensors, DataSizeDisagreesWithShape) {
  // F32 [3] needs 12 bytes, but the offsets give 8.
  std::string header = R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})";
  expect_error_naming([&] { parse(safetensors_bytes(header, data_bytes(12))); },
                      {kPath, "'w'", "F32", "[3]", "needs 12 bytes", "give 8"});

  // BF16 [2, 3] needs 12 bytes, but the offsets give 24, as they would for F32.
  header = R"({"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,24]}})";
  expect_error_naming([&] { parse(safetensors_bytes(header, data_bytes(24))); },
                      {kPath, "'w'", "BF16", "[2, 3]", "needs 12 bytes", "give 24"});
}

TEST(Safetensors, ShapeSizeOverflow) {
  // 2^32 * 2^32 elements overflow int64.
  std::string header =
      R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})";
  expect_error_naming([&] { parse(safetensors_bytes(header, "")); }, {kPath, "'w'", "overflow"});
}

TEST(Safetensors, ByteSizeOverflow) {
  // 2^61 F64 elements fit int64, but 2^61 * 8 bytes wraps uint64 to 0, which equals the
  // empty data_offsets; the file must still be rejected.
  std::string header =
      R"({"w":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})";
  expect_error_naming([&] { parse(safetensors_bytes(header, "")); }, {kPath, "'w'"});

  // The same with two dimensions: 2^31 * 2^31 = 2^62 F32 elements is 2^64 bytes.
  header = R"({"w":{"dtype":"F32","shape":[2147483648,2147483648],"data_offsets":[0,0]}})";
  expect_error_naming([&] { parse(safetensors_bytes(header, "")); }, {kPath, "'w'"});
}

}  // namespace
}  // namespace mambacpp::testing
