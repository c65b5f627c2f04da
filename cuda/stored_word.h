// Stored words as numbers: the weight storage formats (f32, f16, bf16, 8-bit fixed(m, n)) and the
// one decoder of a stored word, shared by the GPU kernels, the simulator, the CPU backend and the
// fault tools, so a word reads as the same float everywhere.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cuda/hd.h"
#include "cuda/numeric.h"

namespace safnet {

// The storage formats of host/dtype.h's DType; cuda/ does not include host/, so host/ converts a
// DType into this descriptor (storage_format in host/dtype.h).
struct StorageFormat {
  enum class Kind : std::uint8_t { f32, f16, bf16, fixed };
  Kind kind = Kind::f32;
  int frac_bits = 0;  // fixed only: value = int8 / 2^frac_bits, 0..7
};

namespace stored_word_detail {

// Word i of little-endian words of type T.
template <typename T>
SAFNET_HD T word_at(const void* words, std::int64_t i) {
#if defined(__CUDA_ARCH__)
  return static_cast<const T*>(words)[i];
#else
  // Host buffers are often bytes; memcpy reads them without aliasing or alignment assumptions.
  T v;
  std::memcpy(&v, static_cast<const unsigned char*>(words) + i * static_cast<std::int64_t>(sizeof(T)), sizeof(T));
  return v;
#endif
}

}  // namespace stored_word_detail

// The value of word i of `words` stored as kind K (frac_bits: fixed only); loops over many words
// resolve K once (see with_storage_kind).
template <StorageFormat::Kind K>
SAFNET_HD float decode_stored(const void* words, int frac_bits, std::int64_t i) {
  using stored_word_detail::word_at;
  if constexpr (K == StorageFormat::Kind::f32) {
    return word_at<float>(words, i);
  } else if constexpr (K == StorageFormat::Kind::f16) {
    return f16_bits_to_f32(word_at<std::uint16_t>(words, i));
  } else if constexpr (K == StorageFormat::Kind::bf16) {
    return bf16_bits_to_f32(word_at<std::uint16_t>(words, i));
  } else {
    return fixed_to_f32(word_at<std::int8_t>(words, i), frac_bits);
  }
}

// Bytes per stored word.
SAFNET_HD constexpr int word_bytes(StorageFormat fmt) {
  switch (fmt.kind) {
    case StorageFormat::Kind::f32: return 4;
    case StorageFormat::Kind::f16:
    case StorageFormat::Kind::bf16: return 2;
    case StorageFormat::Kind::fixed: return 1;
  }
  return 4;
}

// The value of word i of `words` stored in `fmt`.
SAFNET_HD float decode_stored(const void* words, StorageFormat fmt, std::int64_t i) {
  switch (fmt.kind) {
    case StorageFormat::Kind::f32: return decode_stored<StorageFormat::Kind::f32>(words, fmt.frac_bits, i);
    case StorageFormat::Kind::f16: return decode_stored<StorageFormat::Kind::f16>(words, fmt.frac_bits, i);
    case StorageFormat::Kind::bf16: return decode_stored<StorageFormat::Kind::bf16>(words, fmt.frac_bits, i);
    case StorageFormat::Kind::fixed: return decode_stored<StorageFormat::Kind::fixed>(words, fmt.frac_bits, i);
  }
  return 0.0f;
}

// Host loops: f(std::integral_constant<StorageFormat::Kind, kind>{}), so that the loop inside f
// decodes with decode_stored<K> and does not switch per word.
template <typename F>
decltype(auto) with_storage_kind(StorageFormat::Kind kind, F&& f) {
  using K = StorageFormat::Kind;
  switch (kind) {
    case K::f16: return f(std::integral_constant<K, K::f16>{});
    case K::bf16: return f(std::integral_constant<K, K::bf16>{});
    case K::fixed: return f(std::integral_constant<K, K::fixed>{});
    case K::f32: break;
  }
  return f(std::integral_constant<K, K::f32>{});
}

}  // namespace safnet
