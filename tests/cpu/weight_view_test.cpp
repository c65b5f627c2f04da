// The weight view (dequantise + SAF) for every storage dtype and SAF kind, and the SAF epilogue.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "host/check.h"
#include "host/cpu/ops.h"
#include "tests/cpu/reference.h"

namespace safnet::cpu {
namespace {

// IEEE half decoded from its fields, independently of cuda/numeric.h.
double decode_f16(std::uint16_t h) {
  const int sign = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  double v;
  if (e == 0x1f) v = m ? std::nan("") : INFINITY;
  else if (e == 0) v = std::ldexp(m, -24);
  else v = std::ldexp(1024 + m, e - 25);
  return sign ? -v : v;
}

double decode_bf16(std::uint16_t h) {
  const std::uint32_t u = static_cast<std::uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// tau applied in float64, with the NaN mode; the kernel's f32 result must be within a few ulps.
double want_value(const Saf& saf, double x) {
  if (std::isnan(x) && saf.nan == NanMode::zero) return 0.0;
  return ref::saf_value(saf, x);
}

// glibc's tanhf/atanf are within 2 ulps; the SAF adds up to three roundings (scale, divide, ...).
void expect_view(const std::vector<float>& got, const std::vector<double>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  int bad = 0;
  for (std::size_t i = 0; i < got.size() && bad < 5; ++i) {
    if (std::isnan(want[i])) {
      if (!std::isnan(got[i])) ADD_FAILURE() << what << "[" << i << "] got " << got[i] << " want NaN", ++bad;
      continue;
    }
    if (std::isinf(want[i])) {
      if (got[i] != want[i]) ADD_FAILURE() << what << "[" << i << "] got " << got[i] << " want " << want[i], ++bad;
      continue;
    }
    const double tol = 6 * ref::kU32 * std::fabs(want[i]) + 1e-44;  // 1e-44: f32 subnormal spacing
    if (!(std::fabs(got[i] - want[i]) <= tol))
      ADD_FAILURE() << what << "[" << i << "] got " << got[i] << " want " << want[i], ++bad;
  }
}

std::vector<Saf> safs_with_nan_modes() {
  std::vector<Saf> out = ref::all_safs();
  for (Saf s : ref::all_safs()) {
    s.nan = NanMode::zero;
    out.push_back(s);
  }
  return out;
}

TEST(WeightView, F32) {
  std::vector<float> raw = ref::random_floats(1000, 1, -6.0f, 6.0f);
  raw[3] = std::nanf("");
  raw[4] = INFINITY;
  raw[5] = -INFINITY;
  raw[6] = 0.0f;
  for (const Saf& saf : safs_with_nan_modes()) {
    SCOPED_TRACE(detail::concat(static_cast<int>(saf.kind), " nan ", static_cast<int>(saf.nan)));
    std::vector<float> out(raw.size(), 1e30f);
    weight_view_load(saf, DType::f32(), raw.data(), static_cast<std::int64_t>(raw.size()), out.data());
    std::vector<double> want(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) want[i] = want_value(saf, raw[i]);
    expect_view(out, want, "f32");
  }
}

TEST(WeightView, EveryF16AndBf16BitPattern) {
  std::vector<std::uint16_t> raw(65536);
  for (std::size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<std::uint16_t>(i);
  for (const Saf& saf : safs_with_nan_modes()) {
    SCOPED_TRACE(detail::concat(static_cast<int>(saf.kind), " nan ", static_cast<int>(saf.nan)));
    std::vector<float> out(raw.size());
    std::vector<double> want(raw.size());
    weight_view_load(saf, DType::f16(), raw.data(), static_cast<std::int64_t>(raw.size()), out.data());
    for (std::size_t i = 0; i < raw.size(); ++i) want[i] = want_value(saf, decode_f16(raw[i]));
    expect_view(out, want, "f16");
    weight_view_load(saf, DType::bf16(), raw.data(), static_cast<std::int64_t>(raw.size()), out.data());
    for (std::size_t i = 0; i < raw.size(); ++i) want[i] = want_value(saf, decode_bf16(raw[i]));
    expect_view(out, want, "bf16");
  }
}

TEST(WeightView, EveryFixedValue) {
  std::vector<std::int8_t> raw(256);
  for (int i = 0; i < 256; ++i) raw[static_cast<std::size_t>(i)] = static_cast<std::int8_t>(i - 128);
  for (int frac : {0, 5, 7}) {
    const DType dt = DType::fixed(7 - frac, frac);
    for (const Saf& saf : ref::all_safs()) {
      SCOPED_TRACE(detail::concat(dt.name(), " saf ", static_cast<int>(saf.kind)));
      std::vector<float> out(raw.size());
      weight_view_load(saf, dt, raw.data(), static_cast<std::int64_t>(raw.size()), out.data());
      std::vector<double> want(raw.size());
      for (std::size_t i = 0; i < raw.size(); ++i) want[i] = want_value(saf, std::ldexp(raw[i], -frac));
      expect_view(out, want, "fixed");
    }
  }
}

TEST(WeightView, RejectsNonWeightDtypes) {
  const std::int32_t raw[2] = {1, 2};
  float out[2];
  EXPECT_THROW(weight_view_load(Saf{}, DType::i32(), raw, 2, out), Error);
  EXPECT_THROW(weight_view_load(Saf{}, DType::u8(), raw, 2, out), Error);
}

TEST(WeightGradEpilogue, MultipliesBySafDerivative) {
  std::vector<float> raw = ref::random_floats(500, 2, -4.0f, 4.0f);
  raw[7] = std::nanf("");
  const std::vector<float> grad0 = ref::random_floats(raw.size(), 3);
  for (const Saf& saf : safs_with_nan_modes()) {
    SCOPED_TRACE(detail::concat(static_cast<int>(saf.kind), " nan ", static_cast<int>(saf.nan)));
    std::vector<float> grad = grad0;
    weight_grad_epilogue(saf, raw.data(), static_cast<std::int64_t>(raw.size()), grad.data());
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (std::isnan(raw[i])) {
        // NaN propagates unless the NaN mode reads the weight as a constant 0 (slope 0).
        if (saf.nan == NanMode::zero) {
          EXPECT_EQ(grad[i], 0.0f);
        } else if (saf.kind != SafKind::none) {
          EXPECT_TRUE(std::isnan(grad[i]));
        }
        continue;
      }
      const double x = raw[i], h = 1e-5;
      // tau' by central differences in float64 (truncation h^2 |tau'''| / 6 < 1e-9).
      const double slope = (ref::saf_value(saf, x + h) - ref::saf_value(saf, x - h)) / (2 * h);
      // tau' in f32 is within 8u absolute (tau' <= 1, see the conv test), then one product.
      EXPECT_NEAR(grad[i], grad0[i] * slope, std::fabs(grad0[i]) * (9 * ref::kU32 + 1e-9)) << i;
    }
  }
}

}  // namespace
}  // namespace safnet::cpu
