// Tests of the safetensors reader and writer: round trips, strict rejection of bad files, PyTorch interop.
#include "host/safetensors.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "host/check.h"
#include "host/file_io.h"
#include "tests/skip.h"
#include "tests/test_dir.h"

namespace safnet {
namespace {

std::string temp_path(const std::string& name) {
  static const std::filesystem::path dir = test::scratch_dir("safetensors_test");
  return (dir / name).string();
}

// A file from a header text and a buffer; `declared` overrides the header length field.
std::vector<std::uint8_t> make_file(const std::string& header, const std::vector<std::uint8_t>& buffer,
                                    std::uint64_t declared = std::numeric_limits<std::uint64_t>::max()) {
  const std::uint64_t n = declared == std::numeric_limits<std::uint64_t>::max() ? header.size() : declared;
  std::vector<std::uint8_t> out(8);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<std::uint8_t>(n >> (8 * i));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), buffer.begin(), buffer.end());
  return out;
}

template <typename T>
Tensor tensor_of(const Shape& shape, DType dtype, const std::vector<T>& values) {
  Tensor t(shape, dtype);
  EXPECT_EQ(values.size() * sizeof(T), t.nbytes());
  if (!values.empty()) std::memcpy(t.raw(), values.data(), t.nbytes());
  return t;
}

std::vector<std::uint8_t> bytes_of(const Tensor& t) {
  const auto* p = static_cast<const std::uint8_t*>(t.raw());
  return std::vector<std::uint8_t>(p, p + t.nbytes());
}

void expect_same(const SafetensorsFile& a, const SafetensorsFile& b) {
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (std::size_t i = 0; i < a.tensors.size(); ++i) {
    SCOPED_TRACE(a.tensors[i].first);
    EXPECT_EQ(a.tensors[i].first, b.tensors[i].first);
    EXPECT_EQ(a.tensors[i].second.dtype(), b.tensors[i].second.dtype());
    EXPECT_EQ(a.tensors[i].second.shape(), b.tensors[i].second.shape());
    EXPECT_EQ(bytes_of(a.tensors[i].second), bytes_of(b.tensors[i].second));
  }
  EXPECT_EQ(a.metadata, b.metadata);
}

SafetensorsFile every_dtype() {
  SafetensorsFile f;
  f.tensors.emplace_back("w.f32", tensor_of<float>({2, 3}, DType::f32(), {1.5f, -0.0f, 3e38f, -1e-45f, NAN, INFINITY}));
  f.tensors.emplace_back("w.f16", tensor_of<std::uint16_t>({3}, DType::f16(), {0x3C00, 0xC000, 0x7E00}));
  f.tensors.emplace_back("w.bf16", tensor_of<std::uint16_t>({1, 2}, DType::bf16(), {0x3F80, 0xFF80}));
  f.tensors.emplace_back("idx", tensor_of<std::int32_t>({3}, DType::i32(), {INT32_MIN, -1, INT32_MAX}));
  f.tensors.emplace_back("pix", tensor_of<std::uint8_t>({2, 2}, DType::u8(), {0, 1, 128, 255}));
  f.tensors.emplace_back("q25", tensor_of<std::int8_t>({5}, DType::fixed(2, 5), {-128, -1, 0, 1, 127}));
  f.tensors.emplace_back("q07", tensor_of<std::int8_t>({1}, DType::fixed(0, 7), {-7}));
  f.tensors.emplace_back("q70", tensor_of<std::int8_t>({2}, DType::fixed(7, 0), {100, -100}));
  f.tensors.emplace_back("scalar", tensor_of<float>({}, DType::f32(), {42.0f}));
  f.tensors.emplace_back("empty", Tensor({0, 4}, DType::f32()));
  f.tensors.emplace_back("a.last", tensor_of<float>({1}, DType::f32(), {-2.0f}));
  return f;
}

TEST(Safetensors, RoundTripsEveryDtypeInOrder) {
  const SafetensorsFile f = every_dtype();
  const std::string path = temp_path("every_dtype.safetensors");
  write_safetensors(path, f);
  expect_same(f, read_safetensors(path));
}

TEST(Safetensors, WritesFixedAsI8WithDtypeMetadata) {
  const std::vector<std::uint8_t> bytes = serialize_safetensors(every_dtype());
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  ASSERT_EQ(n % 8, 0u) << "header must be padded to a multiple of 8 bytes";
  const auto header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  EXPECT_EQ(header["q25"]["dtype"], "I8");
  EXPECT_EQ(header["q70"]["dtype"], "I8");
  EXPECT_EQ(header["w.bf16"]["dtype"], "BF16");
  EXPECT_EQ(header["__metadata__"]["safnet.dtype.q25"], "fixed2.5");
  EXPECT_EQ(header["__metadata__"]["safnet.dtype.q07"], "fixed0.7");
  EXPECT_EQ(header["__metadata__"]["safnet.dtype.q70"], "fixed7.0");
  EXPECT_EQ(header["__metadata__"].size(), 3u);
}

TEST(Safetensors, WritesTheExactFormat) {
  SafetensorsFile f;
  f.tensors.emplace_back("b", tensor_of<float>({2}, DType::f32(), {1.0f, 2.0f}));
  f.tensors.emplace_back("a", tensor_of<std::uint8_t>({1}, DType::u8(), {9}));
  f.metadata["format"] = "pt";
  std::string header =
      R"({"__metadata__":{"format":"pt"},"b":{"data_offsets":[0,8],"dtype":"F32","shape":[2]},)"
      R"("a":{"data_offsets":[8,9],"dtype":"U8","shape":[1]}})";
  header.resize((header.size() + 7) / 8 * 8, ' ');
  std::vector<std::uint8_t> buffer(9);
  const float v[2] = {1.0f, 2.0f};
  std::memcpy(buffer.data(), v, 8);
  buffer[8] = 9;
  EXPECT_EQ(serialize_safetensors(f), make_file(header, buffer));
}

TEST(Safetensors, MetadataRoundTrips) {
  SafetensorsFile f;
  f.metadata = {{"format", "pt"}, {"", "empty key"}, {"note", "line1\nline2 \"quoted\" \xc3\xa9"}, {"x", ""}};
  f.tensors.emplace_back("q", tensor_of<std::int8_t>({1}, DType::fixed(3, 4), {5}));
  const std::string path = temp_path("metadata.safetensors");
  write_safetensors(path, f);
  const SafetensorsFile g = read_safetensors(path);
  expect_same(f, g);  // the reserved safnet.dtype.q key is consumed, not shown
}

TEST(Safetensors, NoTensorsNoMetadata) {
  const SafetensorsFile f;
  const std::vector<std::uint8_t> bytes = serialize_safetensors(f);
  EXPECT_EQ(bytes.size(), 16u);  // "{}" padded to 8
  expect_same(f, parse_safetensors(bytes.data(), bytes.size(), "mem"));
}

TEST(Safetensors, FindAndAt) {
  const SafetensorsFile f = every_dtype();
  EXPECT_EQ(f.find("nope"), nullptr);
  ASSERT_NE(f.find("idx"), nullptr);
  EXPECT_EQ(&f.at("idx", "ckpt.safetensors"), f.find("idx"));
  try {
    f.at("conv1.weight", "ckpt.safetensors");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("ckpt.safetensors"), std::string::npos) << m;
    EXPECT_NE(m.find("conv1.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("w.f32"), std::string::npos) << m;  // lists some names it has
  }
}

TEST(Safetensors, ListsTensorsInBufferOrderNotHeaderOrder) {
  // Header lists z first but its bytes come last; two empty tensors share offset 4.
  const std::string header =
      R"({"z":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},)"
      R"("e2":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
      R"("e1":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},)"
      R"("a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})";
  const auto bytes = make_file(header, {1, 2, 3, 4, 5, 6});
  const SafetensorsFile f = parse_safetensors(bytes.data(), bytes.size(), "mem");
  ASSERT_EQ(f.tensors.size(), 4u);
  EXPECT_EQ(f.tensors[0].first, "a");
  EXPECT_EQ(f.tensors[1].first, "e2");
  EXPECT_EQ(f.tensors[2].first, "e1");
  EXPECT_EQ(f.tensors[3].first, "z");
  EXPECT_EQ(bytes_of(f.tensors[3].second), (std::vector<std::uint8_t>{5, 6}));
  EXPECT_EQ(f.tensors[2].second.shape(), (Shape{0, 3}));
}

TEST(Safetensors, AcceptsNullMetadataAndMinusZeroAndPaddedHeader) {
  const std::string header = R"({"__metadata__":null,"a":{"dtype":"U8","shape":[-0],"data_offsets":[0,-0]}}    )";
  const auto bytes = make_file(header, {});
  const SafetensorsFile f = parse_safetensors(bytes.data(), bytes.size(), "mem");
  EXPECT_TRUE(f.metadata.empty());
  ASSERT_EQ(f.tensors.size(), 1u);
  EXPECT_EQ(f.tensors[0].second.numel(), 0);
}

TEST(Safetensors, ConvertsF64AndI64) {
  const std::vector<double> d = {1.0 / 3.0, -2.5, 1e300, -1e-320, 0.1};
  const std::vector<std::int64_t> i = {0, -5, INT32_MAX, INT32_MIN};
  std::vector<std::uint8_t> buffer(8 * (d.size() + i.size()));
  std::memcpy(buffer.data(), d.data(), 8 * d.size());
  std::memcpy(buffer.data() + 8 * d.size(), i.data(), 8 * i.size());
  const std::string header =
      R"({"d":{"dtype":"F64","shape":[5],"data_offsets":[0,40]},"i":{"dtype":"I64","shape":[2,2],"data_offsets":[40,72]}})";
  const auto bytes = make_file(header, buffer);
  const SafetensorsFile f = parse_safetensors(bytes.data(), bytes.size(), "mem");
  const Tensor& td = f.at("d", "mem");
  ASSERT_EQ(td.dtype(), DType::f32());
  for (std::size_t k = 0; k < d.size(); ++k) {
    const float want = static_cast<float>(d[k]);  // IEEE round to nearest: the conversion torch's .float() does
    EXPECT_EQ(std::memcmp(&td.data<float>()[k], &want, 4), 0) << k << ": " << td.data<float>()[k];
  }
  EXPECT_TRUE(std::isinf(td.data<float>()[2]));
  EXPECT_TRUE(std::signbit(td.data<float>()[3]));
  const Tensor& ti = f.at("i", "mem");
  ASSERT_EQ(ti.dtype(), DType::i32());
  EXPECT_EQ(ti.shape(), (Shape{2, 2}));
  for (std::size_t k = 0; k < i.size(); ++k) EXPECT_EQ(ti.data<std::int32_t>()[k], i[k]);
}

TEST(Safetensors, WriterRejectsBadInput) {
  const auto expect_error = [](const SafetensorsFile& f, const std::string& what) {
    const std::string path = temp_path("never_written.safetensors");
    try {
      write_safetensors(path, f);
      ADD_FAILURE() << "expected an error containing '" << what << "'";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(path), std::string::npos) << m;
      EXPECT_NE(m.find(what), std::string::npos) << m;
    }
    EXPECT_FALSE(file_exists(path));
  };
  SafetensorsFile dup;
  dup.tensors.emplace_back("a", Tensor({1}));
  dup.tensors.emplace_back("a", Tensor({1}));
  expect_error(dup, "twice");
  SafetensorsFile reserved_name;
  reserved_name.tensors.emplace_back("__metadata__", Tensor({1}));
  expect_error(reserved_name, "__metadata__");
  SafetensorsFile reserved_key;
  reserved_key.metadata["safnet.dtype.a"] = "fixed2.5";
  expect_error(reserved_key, "reserved");
  SafetensorsFile undefined;
  undefined.tensors.emplace_back("u", Tensor());
  expect_error(undefined, "no storage");
  SafetensorsFile bad_utf8;
  bad_utf8.tensors.emplace_back("\xff", Tensor({1}));
  expect_error(bad_utf8, "UTF-8");
}

TEST(Safetensors, ReadMissingFileNamesPath) {
  const std::string path = temp_path("does_not_exist.safetensors");
  try {
    read_safetensors(path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

struct BadCase {
  const char* label;
  std::vector<std::uint8_t> bytes;
  const char* expect;  // a piece of the message
};

std::string entry(const std::string& dtype, const std::string& shape, const std::string& offsets) {
  return R"({"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":)" + offsets + "}";
}

std::vector<BadCase> bad_cases() {
  const std::string ok_a = R"("a":)" + entry("U8", "[4]", "[0,4]");
  const std::vector<std::uint8_t> four = {1, 2, 3, 4};
  const auto one = [&](const std::string& e, std::vector<std::uint8_t> buf = {1, 2, 3, 4}) {
    return make_file(R"({"t":)" + e + "}", buf);
  };
  return {
      {"empty file", {}, "too short"},
      {"7 bytes", {1, 0, 0, 0, 0, 0, 0}, "too short"},
      {"header past end", make_file("{}", {}, 3), "exceeds the 2 bytes"},
      {"header over 100 MB", make_file("{}", {}, 100'000'001), "limit"},
      {"header length 2^64-1", make_file("{}", {}, 0xFFFFFFFFFFFFFFFEull), "limit"},
      {"empty header", make_file("", {}), "not valid JSON"},
      {"truncated JSON", make_file(R"({"a":)", {}), "not valid JSON"},
      {"trailing garbage", make_file(R"({} x)", {}), "not valid JSON"},
      {"invalid UTF-8", make_file("{\"\xff\":1}", {}), "not valid JSON"},
      {"array header", make_file("[1,2]", {}), "not a JSON object"},
      {"entry not object", make_file(R"({"a":[1]})", {}), "tensor 'a' is not a JSON object"},
      {"missing dtype", one(R"({"shape":[4],"data_offsets":[0,4]})"), "no \"dtype\""},
      {"missing shape", one(R"({"dtype":"U8","data_offsets":[0,4]})"), "no \"shape\""},
      {"missing offsets", one(R"({"dtype":"U8","shape":[4]})"), "no \"data_offsets\""},
      {"dtype not string", one(R"({"dtype":1,"shape":[4],"data_offsets":[0,4]})"), "not a string"},
      {"shape not array", one(entry("U8", "4", "[0,4]")), "\"shape\" is not an array"},
      {"shape string dim", one(entry("U8", R"(["4"])", "[0,4]")), "not an integer"},
      {"shape float dim", one(entry("U8", "[4.0]", "[0,4]")), "not an integer"},
      {"shape negative dim", one(entry("U8", "[-4]", "[0,4]")), "negative"},
      {"shape dim over int64", one(entry("U8", "[9223372036854775808]", "[0,4]")), "too many elements"},
      {"shape dim over uint64", one(entry("U8", "[18446744073709551616]", "[0,4]")), "not an integer"},
      {"shape product overflow", one(entry("U8", "[4294967296,4294967296]", "[0,4]")), "too many elements"},
      {"shape partial overflow then 0", one(entry("U8", "[4294967296,4294967296,0]", "[0,0]"), {}),
       "too many elements"},
      {"bytes overflow", one(entry("F32", "[4611686018427387904]", "[0,4]")), "needs"},
      {"offsets not array", one(entry("U8", "[4]", "4")), "not an array [begin, end]"},
      {"offsets 3 long", one(entry("U8", "[4]", "[0,4,4]")), "not an array [begin, end]"},
      {"offset negative", one(entry("U8", "[4]", "[-1,3]")), "negative"},
      {"offset float", one(entry("U8", "[4]", "[0,4.5]")), "not an integer"},
      {"begin > end", one(entry("U8", "[0]", "[4,0]")), "begin > end"},
      {"size mismatch", one(entry("F32", "[2]", "[0,4]")), "needs 2 x 4"},
      {"end past buffer", one(entry("U8", "[8]", "[0,8]")), "run past the 4-byte data buffer"},
      {"overlap", make_file("{" + ok_a + R"(,"b":)" + entry("U8", "[2]", "[2,4]") + "}", four), "overlaps tensor 'a'"},
      {"empty inside another", make_file("{" + ok_a + R"(,"b":)" + entry("U8", "[0]", "[2,2]") + "}", four),
       "overlaps"},
      {"hole", make_file(R"({"a":)" + entry("U8", "[1]", "[0,1]") + R"(,"b":)" + entry("U8", "[2]", "[2,4]") + "}", four),
       "bytes [1, 2) belong to no tensor"},
      {"leading hole", one(entry("U8", "[3]", "[1,4]")), "bytes [0, 1) belong to no tensor"},
      {"trailing bytes", make_file("{" + ok_a + "}", {1, 2, 3, 4, 5}), "bytes [4, 5) belong to no tensor"},
      {"duplicate name", make_file("{" + ok_a + "," + ok_a + "}", four), "names 'a' twice"},
      {"duplicate metadata", make_file(R"({"__metadata__":{},"__metadata__":{}})", {}), "names '__metadata__' twice"},
      {"metadata not object", make_file(R"({"__metadata__":[]})", {}), "__metadata__ is not a JSON object"},
      {"metadata value number", make_file(R"({"__metadata__":{"k":1}})", {}), "metadata 'k' is not a string"},
      {"metadata value null", make_file(R"({"__metadata__":{"k":null}})", {}), "metadata 'k' is not a string"},
      {"unsupported BOOL", one(entry("BOOL", "[4]", "[0,4]")), "tensor 't' has unsupported dtype 'BOOL'"},
      {"unsupported U16", one(entry("U16", "[2]", "[0,4]")), "unsupported dtype 'U16'"},
      {"unsupported f32 spelling", one(entry("f32", "[1]", "[0,4]")), "unsupported dtype 'f32'"},
      {"I8 without key", one(entry("I8", "[4]", "[0,4]")), "I8 tensor 't' without safnet.dtype.t metadata"},
      {"dtype key for no tensor",
       make_file(R"({"__metadata__":{"safnet.dtype.x":"fixed2.5"},"t":)" + entry("I8", "[4]", "[0,4]") + "}", four),
       "'safnet.dtype.x' names no I8 tensor"},
      {"dtype key for U8 tensor",
       make_file(R"({"__metadata__":{"safnet.dtype.t":"fixed2.5"},"t":)" + entry("U8", "[4]", "[0,4]") + "}", four),
       "names no I8 tensor"},
      {"dtype key not fixed",
       make_file(R"({"__metadata__":{"safnet.dtype.t":"u8"},"t":)" + entry("I8", "[4]", "[0,4]") + "}", four),
       "not a fixed-point dtype"},
      {"dtype key bad fixed",
       make_file(R"({"__metadata__":{"safnet.dtype.t":"fixed3.5"},"t":)" + entry("I8", "[4]", "[0,4]") + "}", four),
       "not a fixed-point dtype"},
      {"I64 too large", one(entry("I64", "[1]", "[0,8]"), {0, 0, 0, 0x80, 0, 0, 0, 0}),
       "I64 tensor 't' element 0 = 2147483648 does not fit in i32"},
      {"I64 too small", one(entry("I64", "[1]", "[0,8]"), {0xFF, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF}),
       "-2147483649 does not fit"},
  };
}

TEST(Safetensors, RejectsMalformedFilesNamingPathAndProblem) {
  int n = 0;
  for (const BadCase& c : bad_cases()) {
    SCOPED_TRACE(c.label);
    const std::string path = temp_path("bad_" + std::to_string(n++) + ".safetensors");
    write_file_atomic(path, c.bytes.data(), c.bytes.size());
    try {
      read_safetensors(path);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_EQ(m.rfind(path + ": ", 0), 0u) << m;
      EXPECT_NE(m.find(c.expect), std::string::npos) << "message: " << m << "\nexpected: " << c.expect;
      EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
  }
}

// ---- interop with files PyTorch users make, and with a reader written independently in Python

bool have_torch() {
  static const bool ok = std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
  return ok;
}

// Runs a Python script; returns its exit status and puts its output in `log`.
int run_python(const std::string& name, const std::string& script, const std::string& args, std::string& log) {
  const std::string py = temp_path(name + ".py"), out = temp_path(name + ".log");
  std::ofstream(py) << script;
  const int rc = std::system(("/usr/bin/python3 " + py + " " + args + " >" + out + " 2>&1").c_str());
  std::ifstream in(out);
  std::stringstream ss;
  ss << in.rdbuf();
  log = ss.str();
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

const char* kPythonWriter = R"PY(
import json, struct, sys, torch
tensors = [  # buffer order; the header below is sorted by name, so it differs
    ("conv.weight", ((torch.arange(6, dtype=torch.float32) - 2.5) / 3).reshape(2, 3)),
    ("bn.running_var", torch.tensor([1 / 3, -2.5, 1e-3, 1e300, -1e-320, 0.1], dtype=torch.float64)),
    ("bn.num_batches_tracked", torch.tensor(12345, dtype=torch.int64)),
    ("idx", torch.tensor([[0, -5], [2**31 - 1, -2**31]], dtype=torch.int64)),
]
header, buf = {"__metadata__": {"format": "pt"}}, b""
for name, t in tensors:
    data = t.numpy().tobytes()
    header[name] = {"dtype": {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}[t.dtype],
                    "shape": list(t.shape), "data_offsets": [len(buf), len(buf) + len(data)]}
    buf += data
h = json.dumps(header, sort_keys=True).encode()
h += b" " * (-len(h) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + buf)
# torch's own f64 -> f32 conversion, as bits, for the reader to match exactly
bits = struct.unpack("<6I", tensors[1][1].float().numpy().tobytes())
with open(sys.argv[2], "w") as f:
    f.write(" ".join(str(b) for b in bits))
)PY";

TEST(Safetensors, ReadsFileWrittenByPython) {
  if (!have_torch()) SAFNET_SKIP_OR_FAIL("/usr/bin/python3 cannot import torch: PyTorch interop not tested");
  const std::string path = temp_path("from_python.safetensors"), bits_path = temp_path("from_python.bits");
  std::string log;
  ASSERT_EQ(run_python("writer", kPythonWriter, path + " " + bits_path, log), 0) << log;
  const SafetensorsFile f = read_safetensors(path);
  ASSERT_EQ(f.tensors.size(), 4u);
  EXPECT_EQ(f.tensors[0].first, "conv.weight");
  EXPECT_EQ(f.tensors[3].first, "idx");
  EXPECT_EQ(f.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));

  const Tensor& w = f.at("conv.weight", path);
  ASSERT_EQ(w.dtype(), DType::f32());
  EXPECT_EQ(w.shape(), (Shape{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(w.data<float>()[i], (static_cast<float>(i) - 2.5f) / 3.0f) << i;

  const Tensor& v = f.at("bn.running_var", path);
  ASSERT_EQ(v.dtype(), DType::f32());
  std::ifstream bits_in(bits_path);
  for (int i = 0; i < 6; ++i) {
    std::uint32_t want = 0, got = 0;
    ASSERT_TRUE(bits_in >> want);
    std::memcpy(&got, &v.data<float>()[i], 4);
    EXPECT_EQ(got, want) << "element " << i << " differs from torch's .float()";
  }

  const Tensor& nbt = f.at("bn.num_batches_tracked", path);
  ASSERT_EQ(nbt.dtype(), DType::i32());
  EXPECT_EQ(nbt.ndim(), 0);
  EXPECT_EQ(nbt.data<std::int32_t>()[0], 12345);
  const Tensor& idx = f.at("idx", path);
  EXPECT_EQ(idx.shape(), (Shape{2, 2}));
  const std::int32_t want_idx[4] = {0, -5, INT32_MAX, INT32_MIN};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(idx.data<std::int32_t>()[i], want_idx[i]);
}

const char* kPythonReader = R"PY(
import json, struct, sys, torch
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
assert n % 8 == 0, n
header = json.loads(raw[8:8 + n].decode("utf-8"))
buf = raw[8 + n:]
meta = header.pop("__metadata__")
types = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I32": torch.int32,
         "U8": torch.uint8, "I8": torch.int8}
spans = sorted(tuple(e["data_offsets"]) for e in header.values())
pos = 0
for b, e in spans:
    assert b == pos, (b, pos)
    pos = e
assert pos == len(buf), (pos, len(buf))
def get(name):
    e = header[name]
    b, end = e["data_offsets"]
    return torch.frombuffer(bytearray(buf[b:end]), dtype=types[e["dtype"]]).reshape(e["shape"])
expect = {
    "f": (torch.arange(6, dtype=torch.float32) * 0.5 - 1).reshape(2, 3),
    "h": torch.tensor([1.0, -2.0, 0.5], dtype=torch.float16),
    "b": torch.tensor([[1.0, -3.0, 0.25]], dtype=torch.bfloat16),
    "i": torch.tensor([-2**31, 2**31 - 1, 0], dtype=torch.int32),
    "u": torch.tensor([0, 255, 7], dtype=torch.uint8),
    "q": torch.tensor([-128, -1, 0, 1, 127], dtype=torch.int8),
    "s": torch.tensor(2.5, dtype=torch.float32),
}
assert set(header) == set(expect), sorted(header)
for name, want in expect.items():
    got = get(name)
    assert got.dtype == want.dtype and got.shape == want.shape and torch.equal(got, want), (name, got, want)
assert meta == {"format": "pt", "safnet.dtype.q": "fixed2.5"}, meta
print("OK")
)PY";

TEST(Safetensors, WrittenFileReadsInPython) {
  if (!have_torch()) SAFNET_SKIP_OR_FAIL("/usr/bin/python3 cannot import torch: PyTorch interop not tested");
  SafetensorsFile f;
  std::vector<float> fv;
  for (int i = 0; i < 6; ++i) fv.push_back(static_cast<float>(i) * 0.5f - 1.0f);
  f.tensors.emplace_back("f", tensor_of<float>({2, 3}, DType::f32(), fv));
  f.tensors.emplace_back("u", tensor_of<std::uint8_t>({3}, DType::u8(), {0, 255, 7}));  // misaligns what follows
  f.tensors.emplace_back("h", tensor_of<std::uint16_t>({3}, DType::f16(), {0x3C00, 0xC000, 0x3800}));
  f.tensors.emplace_back("b", tensor_of<std::uint16_t>({1, 3}, DType::bf16(), {0x3F80, 0xC040, 0x3E80}));
  f.tensors.emplace_back("i", tensor_of<std::int32_t>({3}, DType::i32(), {INT32_MIN, INT32_MAX, 0}));
  f.tensors.emplace_back("q", tensor_of<std::int8_t>({5}, DType::fixed(2, 5), {-128, -1, 0, 1, 127}));
  f.tensors.emplace_back("s", tensor_of<float>({}, DType::f32(), {2.5f}));
  f.metadata["format"] = "pt";
  const std::string path = temp_path("for_python.safetensors");
  write_safetensors(path, f);
  std::string log;
  EXPECT_EQ(run_python("reader", kPythonReader, path, log), 0) << log;
}

}  // namespace
}  // namespace safnet
