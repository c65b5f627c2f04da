// The ways a GEMM problem (the interface of cuda/kernels/tiled_gemm.h) may offer its operands
// beyond a(m, k) and b(k, n), so that the GEMM kernels find addresses with no division per element
// or copy raw words: both the SIMT and the tensor-core GEMM look for them.
#pragma once
#include <concepts>

#include "cuda/hd.h"

namespace safnet::cuda::inline SAFNET_BUILD {

// A problem whose B operand (N-fast) is f32 in global memory, read through a cursor that walks k
// for one column: its address (null: reads as zero) and the step to the next k, with no division.
template <typename P>
concept CursorB = !P::kBKFast && requires(const P& p, typename P::BCursor& q) {
  { p.b_cursor(0, 0) } -> std::same_as<typename P::BCursor>;
  { p.b_src(q) } -> std::same_as<const float*>;
  p.b_advance(q, 1);
};

// The same for an A operand that is M-fast in global memory: a cursor walks k for one row m.
template <typename P>
concept CursorA = !P::kAKFast && requires(const P& p, typename P::ACursor& q) {
  { p.a_cursor(0, 0) } -> std::same_as<typename P::ACursor>;
  { p.a_src(q) } -> std::same_as<const float*>;
  p.a_advance(q, 1);
};

// K-fast f32 operands found from a row for k and a column entry, with no division per element: in
// both GEMMs a thread's k is the same for its whole share of a K-tile, so it decodes one row per
// tile, and the block decodes its columns once, into shared memory (B). Their address is null where
// the element reads as zero.
template <typename P>
concept TableA = P::kAKFast && requires(const P& p, const typename P::ARow& r) {
  { p.a_row(0) } -> std::same_as<typename P::ARow>;
  { p.a_src(r, 0) } -> std::same_as<const float*>;
};
// A TableA whose 4 consecutive k of a row are adjacent and 16-byte aligned wherever a_vectors() says
// so (for the whole launch): the tensor cores then copy them as one 16-byte chunk.
template <typename P>
concept VectorTableA = TableA<P> && requires(const P& p) {
  { p.a_vectors() } -> std::same_as<bool>;
};
template <typename P>
concept TableB = P::kBKFast && requires(const P& p, const typename P::BRow& r, const typename P::BColumn& c) {
  { p.b_row(0) } -> std::same_as<typename P::BRow>;
  { p.b_column(0) } -> std::same_as<typename P::BColumn>;
  { p.b_src(r, c) } -> std::same_as<const float*>;
};
template <typename P>
struct BColumnOf {
  using type = char;
};
template <TableB P>
struct BColumnOf<P> {
  using type = typename P::BColumn;
};

// A problem whose store needs, per output row and per output column, values that cost a division
// or a square root (an NCHW offset, a batch-norm scale): the GEMMs compute each row's StoreRow once
// per block, into shared memory, and each column's StoreColumn once per thread, and store through
// them. (SplitKPartials' own store(m, n, v) hides these, so its partial sums store plainly.)
template <typename P>
concept TableStore = requires(const P& p, const typename P::StoreRow& r, const typename P::StoreColumn& c) {
  { p.store_row(0) } -> std::same_as<typename P::StoreRow>;
  { p.store_column(0) } -> std::same_as<typename P::StoreColumn>;
  p.store(r, c, 0.0f);
};
template <typename P>
struct StoreRowOf {
  using type = char;
};
template <TableStore P>
struct StoreRowOf<P> {
  using type = typename P::StoreRow;
};

// A problem whose A operand (K-fast) is stored words: row m's K words start a_words() + m K words of
// a_word_bytes() bytes, and a_decode(row, k) is A(m, k) from them (dequantise, then the SAF).
template <typename P>
concept RawA = P::kAKFast && requires(const P& p, const void* words) {
  { p.a_words() } -> std::same_as<const void*>;
  { p.a_word_bytes() } -> std::same_as<int>;
  { p.a_decode(words, 0) } -> std::same_as<float>;
};

}  // namespace safnet::cuda
