// Saturated activation functions (SAFs) applied to raw weights: value, derivative, inverse.
// One definition shared by the CPU backend and CUDA kernels so both compute identical math.
#pragma once
#include <cmath>
#include <cstdint>

#include "cuda/hd.h"

namespace safnet {

enum class SafKind : std::uint8_t {
  none,      // identity
  tanh,      // tanh(x)
  tanh_c,    // tanh(c*x); the paper's Tanh0.5 is c = 0.5
  softsign,  // x / (1 + |x|)
  arctan,    // atan(x), range (-pi/2, pi/2): the weight compounder's unscaled form
  arctan2pi, // (2/pi) atan(x), range (-1, 1): arctan scaled to the range of tanh and softsign
};

// What a NaN raw weight reads as: the paper lets it propagate; `zero` reads it as 0.
enum class NanMode : std::uint8_t { propagate, zero };

struct Saf {
  SafKind kind = SafKind::none;
  float c = 1.0f;  // only used by tanh_c
  NanMode nan = NanMode::propagate;
};

SAFNET_HD float saf_value(const Saf& s, float x) {
  if (s.nan == NanMode::zero && x != x) return 0.0f;
  switch (s.kind) {
    case SafKind::none: return x;
    case SafKind::tanh: return tanhf(x);
    case SafKind::tanh_c: return tanhf(s.c * x);
    // inf / (1 + inf) would be NaN: a weight whose exponent bits flipped to all ones reads as +-1.
    case SafKind::softsign: return fabsf(x) > 3.40282347e38f ? copysignf(1.0f, x) : x / (1.0f + fabsf(x));
    case SafKind::arctan: return atanf(x);
    case SafKind::arctan2pi: return 0.63661977236758134f * atanf(x);
  }
  return x;
}

// d tau / d x at the raw weight x.
SAFNET_HD float saf_grad(const Saf& s, float x) {
  if (s.nan == NanMode::zero && x != x) return 0.0f;
  switch (s.kind) {
    case SafKind::none: return 1.0f;
    case SafKind::tanh: {
      const float t = tanhf(x);
      return 1.0f - t * t;
    }
    case SafKind::tanh_c: {
      const float t = tanhf(s.c * x);
      return s.c * (1.0f - t * t);
    }
    case SafKind::softsign: {
      const float d = 1.0f + fabsf(x);
      return 1.0f / (d * d);
    }
    case SafKind::arctan: return 1.0f / (1.0f + x * x);
    case SafKind::arctan2pi: return 0.63661977236758134f / (1.0f + x * x);
  }
  return 1.0f;
}

// Bound on |raw| returned by saf_inverse, so a pretrained weight at or beyond the SAF's range
// maps to a finite raw weight (tau^-1 is unbounded at the ends of the range).
inline constexpr float kSafInverseClamp = 8.0f;

// tau^-1(y), clamped to [-kSafInverseClamp, kSafInverseClamp].
SAFNET_HD float saf_inverse(const Saf& s, float y) {
  float x = y;
  switch (s.kind) {
    case SafKind::none: return y;
    case SafKind::tanh:
    case SafKind::tanh_c: {
      const float lim = 0.99999988f;  // largest float below 1
      const float t = fminf(fmaxf(y, -lim), lim);
      x = atanhf(t) / (s.kind == SafKind::tanh_c ? s.c : 1.0f);
      break;
    }
    case SafKind::softsign: {
      const float t = fminf(fmaxf(y, -0.99999988f), 0.99999988f);
      x = t / (1.0f - fabsf(t));
      break;
    }
    case SafKind::arctan: {
      const float half_pi = 1.57079632679489662f;
      const float t = fminf(fmaxf(y, -half_pi * 0.99999988f), half_pi * 0.99999988f);
      x = tanf(t);
      break;
    }
    case SafKind::arctan2pi: {
      const float t = fminf(fmaxf(y, -0.99999988f), 0.99999988f);
      x = tanf(t * 1.57079632679489662f);
      break;
    }
  }
  return fminf(fmaxf(x, -kSafInverseClamp), kSafInverseClamp);
}

}  // namespace safnet
