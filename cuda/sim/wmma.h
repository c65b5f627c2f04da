// The WMMA API (nvcuda::wmma, CUDA's <mma.h>) and the bf16 type (<cuda_bf16.h>) on the simulator,
// implemented by meaning: the register layout of a fragment is opaque in CUDA, so here element e of
// lane l holds element e * 32 + l of the tile in row-major order (num_elements is then what the
// hardware has per lane). Kernels must not depend on which element sits where, as on the GPU.
//
// load_matrix_sync, store_matrix_sync and mma_sync are warp collectives (cuda/sim/exec.h): all 32
// lanes must call the same one, converged, with the same pointer, ldm and layout; it then runs at
// one instant for the whole warp. The pointer must be 256-bit aligned and ldm a multiple of 16
// bytes, as the CUDA C++ Programming Guide requires; anything else stops the kernel.
//
// Numerics of mma_sync, D = A B + C with f32 accumulation:
// - tf32 operands: the tensor core reads the top 19 bits of each f32 (sign, exponent, 10 mantissa
//   bits), so inputs are truncated to tf32 here; kernels round them first with __float_to_tf32
//   (cvt.rna.tf32.f32: to nearest, ties away from zero), which makes the truncation exact.
// - bf16 operands: exact in f32.
// - Each product is exact (at most 2 x 11 or 2 x 8 significant bits), the K products and c are
//   summed in double and rounded once to f32 (to nearest). Hardware aligns the addends to the
//   largest and truncates (Fasi et al., "Numerical behavior of NVIDIA tensor cores", PeerJ CS 2021),
//   an error of at most (K + 1) ulp of the largest addend per mma_sync: tests bound that, not the
//   simulator's smaller one, so they hold on the GPU too.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <source_location>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda/numeric.h"
#include "cuda/sim/access_trace.h"
#include "cuda/sim/exec.h"
#include "cuda/sim/memory.h"

struct __nv_bfloat16 {
  std::uint16_t bits;
};
inline __nv_bfloat16 __float2bfloat16_rn(float x) { return {::safnet::f32_to_bf16_bits(x)}; }
inline __nv_bfloat16 __float2bfloat16(float x) { return __float2bfloat16_rn(x); }
inline float __bfloat162float(__nv_bfloat16 h) { return ::safnet::bf16_bits_to_f32(h.bits); }

namespace nvcuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
namespace precision {
struct tf32 {};
}  // namespace precision

// cvt.rna.tf32.f32: round to 10 mantissa bits, to nearest, ties away from zero; the result is an
// f32 whose low 13 bits are zero. Inf and NaN pass (a NaN keeps a NaN payload bit).
inline float __float_to_tf32(float x) {
  std::uint32_t u = std::bit_cast<std::uint32_t>(x);
  if ((u & 0x7f800000u) == 0x7f800000u) return (u & 0x007fffffu) ? std::bit_cast<float>(0x7fffffffu) : x;
  u += 0x1000u;  // half of the dropped part's weight: ties go away from zero in sign-magnitude
  return std::bit_cast<float>(u & 0xffffe000u);
}

namespace sim_detail {

template <typename T>
struct Storage {
  using type = T;
};
template <>
struct Storage<precision::tf32> {
  using type = float;
};

template <typename Use, int M, int N, int K>
struct Dims;
template <int M, int N, int K>
struct Dims<matrix_a, M, N, K> {
  static constexpr int rows = M, cols = K;
};
template <int M, int N, int K>
struct Dims<matrix_b, M, N, K> {
  static constexpr int rows = K, cols = N;
};
template <int M, int N, int K>
struct Dims<accumulator, M, N, K> {
  static constexpr int rows = M, cols = N;
};

inline float to_float(float v) { return v; }
inline float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
inline void from_float(float& out, float v) { out = v; }
inline void from_float(__nv_bfloat16& out, float v) { out = __float2bfloat16_rn(v); }

// What the tensor core reads of one operand element.
template <typename T>
double operand(float v) {
  if constexpr (std::is_same_v<T, precision::tf32>) {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(v);
    if ((u & 0x7f800000u) == 0x7f800000u) return v;
    return std::bit_cast<float>(u & 0xffffe000u);
  } else {
    return v;
  }
}
template <typename T>
double operand(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

inline std::string check_pointer(const void* p, unsigned ldm, std::size_t elem_bytes) {
  if (reinterpret_cast<std::uintptr_t>(p) % 32 != 0) return "pointer not 256-bit aligned";
  if (ldm * elem_bytes % 16 != 0) return "ldm " + std::to_string(ldm) + " is not a multiple of 16 bytes";
  return {};
}

}  // namespace sim_detail

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
class fragment {
  static_assert((M == 16 && N == 16 && K == 8 && std::is_same_v<T, precision::tf32>) ||
                    (M == 16 && N == 16 && K == 16 && std::is_same_v<T, __nv_bfloat16>) ||
                    (M == 16 && N == 16 && (K == 8 || K == 16) && std::is_same_v<T, float> &&
                     std::is_same_v<Use, accumulator>),
                "the simulator implements m16n16k8 tf32 and m16n16k16 bf16 with f32 accumulators");
  static_assert(std::is_same_v<Use, accumulator> == std::is_same_v<Layout, void>,
                "matrix_a and matrix_b fragments have a layout, accumulators do not");

 public:
  using element_type = typename sim_detail::Storage<T>::type;
  using storage_element_type = element_type;
  static constexpr int rows = sim_detail::Dims<Use, M, N, K>::rows;
  static constexpr int cols = sim_detail::Dims<Use, M, N, K>::cols;
  static constexpr int num_elements = rows * cols / 32;
  element_type x[num_elements];
};

template <typename Use, int M, int N, int K, typename T, typename L>
void fill_fragment(fragment<Use, M, N, K, T, L>& f, const typename fragment<Use, M, N, K, T, L>::element_type& v) {
  for (auto& e : f.x) e = v;
}

namespace sim_detail {

template <typename Frag, typename Ptr>
struct MemCtx {
  Frag* frag;
  Ptr ptr;
  unsigned ldm;
  bool col;  // column-major memory
};

// Every lane's pointer, ldm and layout must be the same: the warp moves one tile.
template <typename Ctx>
std::string same_args(void* const* lanes) {
  const auto* c0 = static_cast<const Ctx*>(lanes[0]);
  for (int l = 1; l < 32; ++l) {
    const auto* c = static_cast<const Ctx*>(lanes[l]);
    if (c->ptr != c0->ptr || c->ldm != c0->ldm || c->col != c0->col)
      return "lanes 0 and " + std::to_string(l) + " pass different pointers, ldm or layouts";
  }
  return check_pointer(c0->ptr, c0->ldm, sizeof(*c0->ptr));
}

// The memory accesses of one wmma load or store, for the access counters (cuda/sim/access_trace.h).
// This is a model of how sm_80 / sm_90 lower a 16 x 16 wmma tile to mma.sync fragments, whose
// layouts the PTX ISA documents ("Matrix Fragments for mma.m16n8k8" and "for mma.m16n8k16"): lane
// (g = lane / 4, t = lane % 4) holds, per register,
// - tf32 A (m16k8, one mma tile): rows g and g + 8, columns t and t + 4, one element each;
// - tf32 B (k8n8, two mma tiles along n): k = t and t + 4, column g;
// - bf16 A (m16k16, one tile): rows g and g + 8, columns 2t, 2t + 1 and 2t + 8, 2t + 9, in pairs;
// - bf16 B (k16n8, two tiles): k = 2t, 2t + 1 and 2t + 8, 2t + 9, column g, in pairs;
// - f32 accumulator (m16n8, two tiles along n): rows g and g + 8, columns 2t, 2t + 1, in pairs.
// A register is one load or store per lane; a pair adjacent in memory moves as one access of both
// elements (a 32-bit pair of bf16, a 64-bit pair of f32), else as one access per element.
struct FragmentPiece {
  int r0, c0, rg, rt, cg, ct;  // the lane's first element: row r0 + rg g + rt t, column c0 + cg g + ct t
  int n;                       // elements in the register, along columns (along_col) or rows
  bool along_col;
};

template <typename Use, int K>
std::vector<FragmentPiece> fragment_pieces() {
  std::vector<FragmentPiece> out;
  for (int i = 0; i < 4; ++i) {
    const int lo = i & 1, hi = i >> 1;
    if constexpr (std::is_same_v<Use, matrix_a>)
      out.push_back(K == 8 ? FragmentPiece{8 * lo, 4 * hi, 1, 0, 0, 1, 1, true}
                           : FragmentPiece{8 * lo, 8 * hi, 1, 0, 0, 2, 2, true});
    else if constexpr (std::is_same_v<Use, matrix_b>)  // hi: which n-tile
      out.push_back(K == 8 ? FragmentPiece{4 * lo, 8 * hi, 0, 1, 1, 0, 1, false}
                           : FragmentPiece{8 * lo, 8 * hi, 0, 2, 1, 0, 2, false});
    else
      out.push_back(FragmentPiece{8 * lo, 8 * hi, 1, 0, 0, 2, 2, true});
  }
  return out;
}

template <typename Frag>
struct FragmentKind;
template <typename Use, int M, int N, int K, typename T, typename L>
struct FragmentKind<fragment<Use, M, N, K, T, L>> {
  using use = Use;
  static constexpr int k = K;
  static constexpr const char* site = std::is_same_v<Use, matrix_a>   ? "matrix_a fragment"
                                      : std::is_same_v<Use, matrix_b> ? "matrix_b fragment"
                                                                      : "accumulator fragment";
};

template <typename Frag, typename E>
void trace_fragment(bool store, const E* p, unsigned ldm, bool col_major) {
  namespace sim = ::safnet::sim;
  using Kind = FragmentKind<std::remove_const_t<Frag>>;
  if (!sim::access_tracing()) return;
  const bool global = sim::region_owns(p, sim::RegionKind::device);
  const sim::AccessKind kind = global ? (store ? sim::AccessKind::global_store : sim::AccessKind::global_load)
                                      : (store ? sim::AccessKind::shared_store : sim::AccessKind::shared_load);
  for (const FragmentPiece& piece : fragment_pieces<typename Kind::use, Kind::k>()) {
    const bool contiguous = piece.along_col != col_major;
    const int accesses = contiguous ? 1 : piece.n;
    for (int a = 0; a < accesses; ++a) {
      const void* lane_ptr[32];
      for (int l = 0; l < 32; ++l) {
        const int g = l / 4, t = l % 4;
        const int r = piece.r0 + piece.rg * g + piece.rt * t + (piece.along_col ? 0 : a);
        const int c = piece.c0 + piece.cg * g + piece.ct * t + (piece.along_col ? a : 0);
        lane_ptr[l] = p + (col_major ? static_cast<std::size_t>(c) * ldm + r : static_cast<std::size_t>(r) * ldm + c);
      }
      const unsigned bytes = static_cast<unsigned>(sizeof(E)) * (contiguous ? piece.n : 1);
      sim::detail::trace_warp_request(kind, Kind::site, lane_ptr, bytes);
    }
  }
}

template <typename Frag, typename Ptr>
void load_all(void* const* lanes, std::string& error) {
  using Ctx = MemCtx<Frag, Ptr>;
  error = same_args<Ctx>(lanes);
  if (!error.empty()) return;
  const auto* c0 = static_cast<const Ctx*>(lanes[0]);
  trace_fragment<Frag>(false, c0->ptr, c0->ldm, c0->col);
  for (int l = 0; l < 32; ++l) {
    Frag& f = *static_cast<const Ctx*>(lanes[l])->frag;
    for (int e = 0; e < Frag::num_elements; ++e) {
      const int i = e * 32 + l, r = i / Frag::cols, c = i % Frag::cols;
      const auto v = c0->ptr[c0->col ? static_cast<std::size_t>(c) * c0->ldm + r : static_cast<std::size_t>(r) * c0->ldm + c];
      if constexpr (std::is_same_v<std::remove_cv_t<std::remove_pointer_t<Ptr>>, typename Frag::element_type>)
        f.x[e] = v;
      else
        from_float(f.x[e], to_float(v));
    }
  }
}

template <typename Frag>
void store_all(void* const* lanes, std::string& error) {
  using Ctx = MemCtx<const Frag, float*>;
  error = same_args<Ctx>(lanes);
  if (!error.empty()) return;
  const auto* c0 = static_cast<const Ctx*>(lanes[0]);
  trace_fragment<Frag>(true, c0->ptr, c0->ldm, c0->col);
  for (int l = 0; l < 32; ++l) {
    const Frag& f = *static_cast<const Ctx*>(lanes[l])->frag;
    for (int e = 0; e < Frag::num_elements; ++e) {
      const int i = e * 32 + l, r = i / Frag::cols, c = i % Frag::cols;
      c0->ptr[c0->col ? static_cast<std::size_t>(c) * c0->ldm + r : static_cast<std::size_t>(r) * c0->ldm + c] = f.x[e];
    }
  }
}

template <typename D, typename A, typename B, typename C>
struct MmaCtx {
  D* d;
  const A* a;
  const B* b;
  const C* c;
};

template <typename In, typename D, typename A, typename B, typename C>
void mma_all(void* const* lanes, std::string&) {
  using Ctx = MmaCtx<D, A, B, C>;
  constexpr int M = A::rows, K = A::cols, N = B::cols;
  double a[M][K], b[K][N];
  for (int l = 0; l < 32; ++l) {
    const auto* c = static_cast<const Ctx*>(lanes[l]);
    for (int e = 0; e < A::num_elements; ++e) {
      const int i = e * 32 + l;
      a[i / K][i % K] = operand<In>(c->a->x[e]);
    }
    for (int e = 0; e < B::num_elements; ++e) {
      const int i = e * 32 + l;
      b[i / N][i % N] = operand<In>(c->b->x[e]);
    }
  }
  // Every lane's C is read before any D is written: d and c may be the same fragment.
  float out[32][D::num_elements];
  for (int l = 0; l < 32; ++l) {
    const auto* c = static_cast<const Ctx*>(lanes[l]);
    for (int e = 0; e < D::num_elements; ++e) {
      const int i = e * 32 + l, r = i / N, col = i % N;
      double s = c->c->x[e];
      for (int k = 0; k < K; ++k) s += a[r][k] * b[k][col];
      out[l][e] = static_cast<float>(s);
    }
  }
  for (int l = 0; l < 32; ++l) std::memcpy(static_cast<const Ctx*>(lanes[l])->d->x, out[l], sizeof out[l]);
}

}  // namespace sim_detail

template <typename Use, int M, int N, int K, typename T, typename L, typename E>
void load_matrix_sync(fragment<Use, M, N, K, T, L>& f, const E* p, unsigned ldm,
                      std::source_location loc = std::source_location::current()) {
  static_assert(!std::is_same_v<Use, accumulator>, "an accumulator load takes a layout_t");
  using Frag = fragment<Use, M, N, K, T, L>;
  sim_detail::MemCtx<Frag, const E*> ctx{&f, p, ldm, std::is_same_v<L, col_major>};
  ::safnet::sim::detail::warp_collective("wmma::load_matrix_sync", &sim_detail::load_all<Frag, const E*>, &ctx, loc);
}

template <int M, int N, int K>
void load_matrix_sync(fragment<accumulator, M, N, K, float>& f, const float* p, unsigned ldm, layout_t layout,
                      std::source_location loc = std::source_location::current()) {
  using Frag = fragment<accumulator, M, N, K, float>;
  sim_detail::MemCtx<Frag, const float*> ctx{&f, p, ldm, layout == mem_col_major};
  ::safnet::sim::detail::warp_collective("wmma::load_matrix_sync", &sim_detail::load_all<Frag, const float*>, &ctx, loc);
}

template <int M, int N, int K>
void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, float>& f, unsigned ldm, layout_t layout,
                       std::source_location loc = std::source_location::current()) {
  using Frag = fragment<accumulator, M, N, K, float>;
  sim_detail::MemCtx<const Frag, float*> ctx{&f, p, ldm, layout == mem_col_major};
  ::safnet::sim::detail::warp_collective("wmma::store_matrix_sync", &sim_detail::store_all<Frag>, &ctx, loc);
}

template <int M, int N, int K, typename T, typename LA, typename LB>
void mma_sync(fragment<accumulator, M, N, K, float>& d, const fragment<matrix_a, M, N, K, T, LA>& a,
              const fragment<matrix_b, M, N, K, T, LB>& b, const fragment<accumulator, M, N, K, float>& c,
              std::source_location loc = std::source_location::current()) {
  using D = fragment<accumulator, M, N, K, float>;
  using A = fragment<matrix_a, M, N, K, T, LA>;
  using B = fragment<matrix_b, M, N, K, T, LB>;
  sim_detail::MmaCtx<D, A, B, D> ctx{&d, &a, &b, &c};
  ::safnet::sim::detail::warp_collective("wmma::mma_sync", &sim_detail::mma_all<T, D, A, B, D>, &ctx, loc);
}

}  // namespace nvcuda::wmma
