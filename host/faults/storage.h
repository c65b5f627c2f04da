// Fault-prone weight storage: a float span encoded into bytes of a storage dtype, and back.
#pragma once
#include <cstdint>
#include <vector>

#include "host/dtype.h"

namespace safnet {

// Words of `dtype` (f32, f16, bf16 or fixed(m,n)), each dtype.size() bytes, little-endian, so
// bit b of word w is bit b % 8 of bytes[w * size + b / 8] on the CPU and on the GPU alike.
struct StorageBuffer {
  DType dtype;
  std::vector<std::uint8_t> bytes;  // (words * dtype.size(),)
  std::int64_t words() const { return static_cast<std::int64_t>(bytes.size() / dtype.size()); }
};

// Rounds as cuda/numeric.h does: f16/bf16 to nearest even, fixed to nearest even with saturation.
StorageBuffer encode_storage(const float* x, std::int64_t n, DType dtype);
// out (n) = the values of n words of `dtype` at `words`.
void decode_words(const void* words, DType dtype, std::int64_t n, float* out);

}  // namespace safnet
