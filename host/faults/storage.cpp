// Encoding and decoding of storage buffers through the shared conversions of cuda/numeric.h.
#include "host/faults/storage.h"

#include <bit>
#include <cstring>

#include "cuda/numeric.h"
#include "cuda/stored_word.h"
#include "host/check.h"

namespace safnet {

static_assert(std::endian::native == std::endian::little,
              "storage buffers are little-endian, as on the GPU; a big-endian host needs byte swaps");

namespace {

void check_storage_dtype(DType dtype, const char* what) {
  if (!dtype.is_float_storage())
    fail("host/faults/storage.cpp: ", what, ": dtype ", dtype.name(),
         " is not a storage format (valid: f32 f16 bf16 fixedM.N)");
}

}  // namespace

StorageBuffer encode_storage(const float* x, std::int64_t n, DType dtype) {
  check_storage_dtype(dtype, "encode_storage");
  if (n < 0) fail("host/faults/storage.cpp: encode_storage: negative element count ", n);
  if (n > 0 && x == nullptr) fail("host/faults/storage.cpp: encode_storage: null input for ", n, " elements");
  StorageBuffer buf{dtype, std::vector<std::uint8_t>(static_cast<std::size_t>(n) * dtype.size())};
  std::uint8_t* p = buf.bytes.data();
  switch (dtype.kind) {
    case DType::Kind::f32:
      if (n > 0) std::memcpy(p, x, static_cast<std::size_t>(n) * 4);
      break;
    case DType::Kind::f16:
      for (std::int64_t i = 0; i < n; ++i) {
        const std::uint16_t h = f32_to_f16_bits(x[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
      break;
    case DType::Kind::bf16:
      for (std::int64_t i = 0; i < n; ++i) {
        const std::uint16_t h = f32_to_bf16_bits(x[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
      break;
    case DType::Kind::fixed:
      for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<std::uint8_t>(f32_to_fixed(x[i], dtype.n));
      break;
    default: break;  // rejected above
  }
  return buf;
}

void decode_words(const void* words, DType dtype, std::int64_t n, float* out) {
  check_storage_dtype(dtype, "decode_words");
  if (n > 0 && out == nullptr) fail("host/faults/storage.cpp: decode_words: null output for ", n, " elements");
  const StorageFormat fmt = storage_format(dtype);
  with_storage_kind(fmt.kind, [&](auto kind) {
    for (std::int64_t i = 0; i < n; ++i) out[i] = decode_stored<decltype(kind)::value>(words, fmt.frac_bits, i);
  });
}

}  // namespace safnet
