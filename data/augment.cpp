// Random crop with zero padding and horizontal flip, drawn from a per-image counter-based stream.
#include "data/augment.h"

#include "data/rng.h"

namespace safnet {

namespace {
constexpr std::uint64_t kAugmentStream = 0x6175676d656e74ull;  // keeps these draws apart from shuffling
}

AugmentDraw draw_augment(const AugmentConfig& cfg, std::uint64_t seed, int epoch, std::int64_t index) {
  AugmentDraw d;
  if (cfg.crop_pad <= 0 && !cfg.flip) return d;
  Rng s(rng_key(seed, kAugmentStream, static_cast<std::uint64_t>(epoch), static_cast<std::uint64_t>(index)));
  if (cfg.crop_pad > 0) {
    const std::uint64_t span = 2 * static_cast<std::uint64_t>(cfg.crop_pad) + 1;
    d.dy = static_cast<int>(rng_below(s, span)) - cfg.crop_pad;
    d.dx = static_cast<int>(rng_below(s, span)) - cfg.crop_pad;
  }
  if (cfg.flip) d.flip = (s.next() >> 63) != 0;
  return d;
}

void apply_augment(const std::uint8_t* src, std::uint8_t* dst, int channels, int height, int width,
                   const AugmentDraw& d) {
  for (int c = 0; c < channels; ++c) {
    const std::uint8_t* plane = src + static_cast<std::int64_t>(c) * height * width;  // (H, W)
    std::uint8_t* out = dst + static_cast<std::int64_t>(c) * height * width;         // (H, W)
    for (int y = 0; y < height; ++y) {
      const int sy = y + d.dy;
      for (int x = 0; x < width; ++x) {
        const int sx = (d.flip ? width - 1 - x : x) + d.dx;
        const bool inside = sy >= 0 && sy < height && sx >= 0 && sx < width;
        out[y * width + x] = inside ? plane[sy * width + sx] : 0;
      }
    }
  }
}

}  // namespace safnet
