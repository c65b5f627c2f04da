// Element types: f32, f16, bf16, 8-bit fixed point fixed(m,n), u8 and i32.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace safnet {

struct DType {
  enum class Kind : std::uint8_t { f32, f16, bf16, fixed, u8, i32 };
  Kind kind = Kind::f32;
  int m = 0;  // fixed only: integer bits (sign excluded)
  int n = 0;  // fixed only: fraction bits; value = int8 / 2^n

  static constexpr DType f32() { return {Kind::f32}; }
  static constexpr DType f16() { return {Kind::f16}; }
  static constexpr DType bf16() { return {Kind::bf16}; }
  static constexpr DType u8() { return {Kind::u8}; }
  static constexpr DType i32() { return {Kind::i32}; }
  // 1 sign + m integer + n fraction bits = 8 bits; Q2.5 is fixed(2, 5).
  static DType fixed(int m, int n);

  // Parses the CLI/file name: f32 f16 bf16 u8 i32 fixedM.N. Throws listing valid names.
  static DType parse(const std::string& name);

  std::size_t size() const;        // bytes per element
  int bits() const { return static_cast<int>(size() * 8); }
  std::string name() const;        // inverse of parse
  bool is_float_storage() const { return kind == Kind::f32 || kind == Kind::f16 || kind == Kind::bf16 || kind == Kind::fixed; }

  friend bool operator==(const DType&, const DType&) = default;
};

struct StorageFormat;  // cuda/stored_word.h

// The storage format of a weight storage dtype (is_float_storage()); throws for the others.
StorageFormat storage_format(DType dtype);
// The value of the one stored word of `dtype` at `word` (decode_stored of cuda/stored_word.h).
float decode_word(const void* word, DType dtype);

}  // namespace safnet
