// DType names, sizes and parsing.
#include "host/dtype.h"

#include <charconv>

#include "cuda/stored_word.h"
#include "host/check.h"

namespace safnet {

DType DType::fixed(int m, int n) {
  if (m < 0 || n < 0 || m + n != 7)
    fail("fixed(", m, ",", n, "): an 8-bit fixed-point type needs m + n = 7 (1 sign bit)");
  DType d{Kind::fixed};
  d.m = m;
  d.n = n;
  return d;
}

std::size_t DType::size() const {
  switch (kind) {
    case Kind::f32: return 4;
    case Kind::f16: return 2;
    case Kind::bf16: return 2;
    case Kind::fixed: return 1;
    case Kind::u8: return 1;
    case Kind::i32: return 4;
  }
  return 0;
}

std::string DType::name() const {
  switch (kind) {
    case Kind::f32: return "f32";
    case Kind::f16: return "f16";
    case Kind::bf16: return "bf16";
    case Kind::fixed: return "fixed" + std::to_string(m) + "." + std::to_string(n);
    case Kind::u8: return "u8";
    case Kind::i32: return "i32";
  }
  return "?";
}

DType DType::parse(const std::string& s) {
  if (s == "f32") return f32();
  if (s == "f16") return f16();
  if (s == "bf16") return bf16();
  if (s == "u8") return u8();
  if (s == "i32") return i32();
  if (s.rfind("fixed", 0) == 0) {
    const char* p = s.data() + 5;
    const char* end = s.data() + s.size();
    int m = -1, n = -1;
    auto r1 = std::from_chars(p, end, m);
    if (r1.ec == std::errc() && r1.ptr < end && *r1.ptr == '.') {
      auto r2 = std::from_chars(r1.ptr + 1, end, n);
      if (r2.ec == std::errc() && r2.ptr == end && m >= 0 && n >= 0 && m + n == 7) return fixed(m, n);
    }
    fail("unknown dtype '", s, "': fixedM.N needs M + N = 7, e.g. fixed2.5 (Q2.5)");
  }
  fail("unknown dtype '", s, "' (valid: f32 f16 bf16 fixedM.N e.g. fixed2.5, u8 i32)");
}

StorageFormat storage_format(DType dtype) {
  switch (dtype.kind) {
    case DType::Kind::f32: return {StorageFormat::Kind::f32, 0};
    case DType::Kind::f16: return {StorageFormat::Kind::f16, 0};
    case DType::Kind::bf16: return {StorageFormat::Kind::bf16, 0};
    case DType::Kind::fixed: return {StorageFormat::Kind::fixed, dtype.n};
    case DType::Kind::u8:
    case DType::Kind::i32: break;
  }
  fail("dtype ", dtype.name(), " cannot hold weights (valid: f32 f16 bf16 fixedM.N)");
}

float decode_word(const void* word, DType dtype) { return decode_stored(word, storage_format(dtype), 0); }

}  // namespace safnet
