// PIL's two-pass bilinear resampling and torchvision's Resize, CenterCrop and RandomResizedCrop.
#include "data/image_transforms.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "data/rng.h"
#include "host/check.h"

namespace safnet {

namespace {

constexpr std::uint64_t kResizedCropStream = 0x7272635f63726f70ull;  // apart from the CIFAR augmentation
// PIL's fixed-point weights for 8-bit images: 32 bits minus 8 for the pixel, 2 for headroom.
constexpr int kPrecisionBits = 32 - 8 - 2;

// One axis of a resampling: output position o reads inputs [first[o], first[o] + count[o])
// with weights (fixed point) weight[o * ksize + j].
struct Taps {
  int ksize = 0;
  std::vector<int> first, count;     // (out)
  std::vector<std::int32_t> weight;  // (out, ksize)
};

double triangle(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

// PIL's precompute_coeffs and normalize_coeffs_8bpc for the bilinear filter (support 1) with
// box (0, in_size), kept operation for operation so rounding matches.
Taps make_taps(int in_size, int out_size) {
  Taps t;
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;
  t.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  t.first.resize(static_cast<std::size_t>(out_size));
  t.count.resize(static_cast<std::size_t>(out_size));
  t.weight.assign(static_cast<std::size_t>(out_size) * t.ksize, 0);
  std::vector<double> k(static_cast<std::size_t>(t.ksize));
  for (int o = 0; o < out_size; ++o) {
    const double center = (o + 0.5) * scale, ss = 1.0 / filterscale;
    const int xmin = std::max(static_cast<int>(center - support + 0.5), 0);
    const int xmax = std::min(static_cast<int>(center + support + 0.5), in_size) - xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      k[x] = triangle((x + xmin - center + 0.5) * ss);
      ww += k[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double w = ww != 0.0 ? k[x] / ww : k[x];
      t.weight[static_cast<std::size_t>(o) * t.ksize + x] =
          static_cast<std::int32_t>(w < 0 ? -0.5 + w * (1 << kPrecisionBits) : 0.5 + w * (1 << kPrecisionBits));
    }
    t.first[o] = xmin;
    t.count[o] = std::max(xmax, 0);
  }
  return t;
}

std::uint8_t clip8(std::int32_t v) {
  if (v >= (1 << kPrecisionBits << 8)) return 255;
  if (v <= 0) return 0;
  return static_cast<std::uint8_t>(v >> kPrecisionBits);
}

void check_image(const Image& img, const char* what) {
  if (img.height <= 0 || img.width <= 0 ||
      img.pixels.size() != static_cast<std::size_t>(img.height) * img.width * 3)
    fail(what, ": image of ", img.height, " x ", img.width, " with ", img.pixels.size(), " pixel bytes");
}

// Resamples the region (top, left, rh, rw) of img to out_h x out_w and writes the window of
// that result starting at (y0, x0), n_h x n_w pixels, to out (3, n_h, n_w). Positions outside the
// resampled image are 0 (torchvision's padding); flip mirrors the window. Only the rows and
// columns the window needs are computed: each output pixel depends on its own taps alone, so
// this equals resizing everything and cropping after.
void resample_window(const Image& img, int top, int left, int rh, int rw, int out_h, int out_w, int y0, int x0,
                     int n_h, int n_w, bool flip, std::uint8_t* out) {
  const Taps th = make_taps(rw, out_w), tv = make_taps(rh, out_h);
  const int ya = std::max(y0, 0), yb = std::min(y0 + n_h, out_h);
  const int xa = std::max(x0, 0), xb = std::min(x0 + n_w, out_w);
  const std::size_t plane = static_cast<std::size_t>(n_h) * n_w;
  if (ya > y0 || yb < y0 + n_h || xa > x0 || xb < x0 + n_w) std::memset(out, 0, 3 * plane);
  if (ya >= yb || xa >= xb) return;
  const int cols = xb - xa;
  const int row_first = tv.first[ya], row_last = tv.first[yb - 1] + tv.count[yb - 1];

  // Horizontal pass over the source rows the window needs, rounded to 8 bits as PIL does.
  std::vector<std::uint8_t> tmp(static_cast<std::size_t>(row_last - row_first) * cols * 3);  // (rows, cols, 3)
  const std::size_t stride = static_cast<std::size_t>(img.width) * 3;
  for (int r = row_first; r < row_last; ++r) {
    const std::uint8_t* src = img.pixels.data() + static_cast<std::size_t>(top + r) * stride +
                              static_cast<std::size_t>(left) * 3;
    std::uint8_t* dst = tmp.data() + static_cast<std::size_t>(r - row_first) * cols * 3;
    for (int x = xa; x < xb; ++x) {
      const std::int32_t* k = th.weight.data() + static_cast<std::size_t>(x) * th.ksize;
      const std::uint8_t* s = src + static_cast<std::size_t>(th.first[x]) * 3;
      std::int32_t a0 = 1 << (kPrecisionBits - 1), a1 = a0, a2 = a0;
      for (int j = 0; j < th.count[x]; ++j) {
        a0 += s[3 * j] * k[j];
        a1 += s[3 * j + 1] * k[j];
        a2 += s[3 * j + 2] * k[j];
      }
      std::uint8_t* d = dst + static_cast<std::size_t>(x - xa) * 3;
      d[0] = clip8(a0);
      d[1] = clip8(a1);
      d[2] = clip8(a2);
    }
  }
  // Vertical pass straight into the planar output.
  for (int y = ya; y < yb; ++y) {
    const std::int32_t* k = tv.weight.data() + static_cast<std::size_t>(y) * tv.ksize;
    const std::uint8_t* s = tmp.data() + static_cast<std::size_t>(tv.first[y] - row_first) * cols * 3;
    const std::size_t out_row = static_cast<std::size_t>(y - y0) * n_w;
    for (int x = xa; x < xb; ++x) {
      std::int32_t a0 = 1 << (kPrecisionBits - 1), a1 = a0, a2 = a0;
      const std::uint8_t* p = s + static_cast<std::size_t>(x - xa) * 3;
      for (int j = 0; j < tv.count[y]; ++j, p += static_cast<std::size_t>(cols) * 3) {
        a0 += p[0] * k[j];
        a1 += p[1] * k[j];
        a2 += p[2] * k[j];
      }
      const int ox = flip ? n_w - 1 - (x - x0) : x - x0;
      out[out_row + ox] = clip8(a0);
      out[plane + out_row + ox] = clip8(a1);
      out[2 * plane + out_row + ox] = clip8(a2);
    }
  }
}

// torchvision's centre-crop offset: round half to even, or minus the left/top zero padding
// when the crop is larger than the image.
int centre_offset(int size, int crop) {
  if (crop > size) return -((crop - size) / 2);
  return static_cast<int>(std::nearbyint((size - crop) / 2.0));
}

}  // namespace

void resize_region(const Image& img, int top, int left, int height, int width, int out_h, int out_w,
                   std::uint8_t* out) {
  check_image(img, "resize_region");
  if (top < 0 || left < 0 || height <= 0 || width <= 0 || top + height > img.height || left + width > img.width)
    fail("resize_region: region (", top, ", ", left, ", ", height, ", ", width, ") outside a ", img.height, " x ",
         img.width, " image");
  if (out_h <= 0 || out_w <= 0) fail("resize_region: output size ", out_h, " x ", out_w);
  resample_window(img, top, left, height, width, out_h, out_w, 0, 0, out_h, out_w, false, out);
}

void eval_transform(const Image& img, int resize, int crop, std::uint8_t* out) {
  check_image(img, "eval_transform");
  if (resize <= 0 || crop <= 0) fail("eval_transform: resize ", resize, " and crop ", crop, " must be positive");
  const int h = img.height, w = img.width;
  const int short_side = std::min(h, w), long_side = std::max(h, w);
  const int long_new = static_cast<int>(static_cast<double>(resize) * long_side / short_side);
  const int new_h = h <= w ? resize : long_new, new_w = h <= w ? long_new : resize;
  if (new_h <= 0 || new_w <= 0) fail("eval_transform: a ", h, " x ", w, " image resizes to nothing");
  resample_window(img, 0, 0, h, w, new_h, new_w, centre_offset(new_h, crop), centre_offset(new_w, crop), crop,
                  crop, false, out);
}

ResizedCropDraw draw_resized_crop(std::uint64_t seed, int epoch, std::int64_t index, int height, int width,
                                  bool flip) {
  if (height <= 0 || width <= 0) fail("draw_resized_crop: image of ", height, " x ", width);
  constexpr double kMinScale = 0.08, kMaxScale = 1.0, kMinRatio = 3.0 / 4.0, kMaxRatio = 4.0 / 3.0;
  Rng s(rng_key(seed, kResizedCropStream, static_cast<std::uint64_t>(epoch), static_cast<std::uint64_t>(index)));
  ResizedCropDraw d;
  const double area = static_cast<double>(height) * width;
  const double log_lo = std::log(kMinRatio), log_hi = std::log(kMaxRatio);
  bool found = false;
  for (int attempt = 0; attempt < 10 && !found; ++attempt) {
    const double target = area * (kMinScale + (kMaxScale - kMinScale) * s.uniform());
    const double ratio = std::exp(log_lo + (log_hi - log_lo) * s.uniform());
    const double cw = std::nearbyint(std::sqrt(target * ratio)), ch = std::nearbyint(std::sqrt(target / ratio));
    if (cw > 0 && cw <= width && ch > 0 && ch <= height) {
      d.width = static_cast<int>(cw);
      d.height = static_cast<int>(ch);
      d.top = static_cast<int>(rng_below(s, static_cast<std::uint64_t>(height - d.height + 1)));
      d.left = static_cast<int>(rng_below(s, static_cast<std::uint64_t>(width - d.width + 1)));
      found = true;
    }
  }
  if (!found) {
    const double in_ratio = static_cast<double>(width) / height;
    d.width = width;
    d.height = height;
    if (in_ratio < kMinRatio) d.height = static_cast<int>(std::nearbyint(width / kMinRatio));
    if (in_ratio > kMaxRatio) d.width = static_cast<int>(std::nearbyint(height * kMaxRatio));
    d.height = std::clamp(d.height, 1, height);
    d.width = std::clamp(d.width, 1, width);
    d.top = (height - d.height) / 2;
    d.left = (width - d.width) / 2;
  }
  if (flip) d.flip = (s.next() >> 63) != 0;
  return d;
}

void train_transform(const Image& img, const ResizedCropDraw& d, int size, std::uint8_t* out) {
  check_image(img, "train_transform");
  if (size <= 0) fail("train_transform: size ", size, " must be positive");
  if (d.top < 0 || d.left < 0 || d.height <= 0 || d.width <= 0 || d.top + d.height > img.height ||
      d.left + d.width > img.width)
    fail("train_transform: crop (", d.top, ", ", d.left, ", ", d.height, ", ", d.width, ") outside a ", img.height,
         " x ", img.width, " image");
  resample_window(img, d.top, d.left, d.height, d.width, size, size, 0, 0, size, size, d.flip, out);
}

}  // namespace safnet
