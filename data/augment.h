// Training augmentation on uint8 images: random crop with zero padding and horizontal flip.
#pragma once
#include <cstdint>

namespace safnet {

struct AugmentConfig {
  int crop_pad = 0;   // pad each side with zero pixels, then crop back to H x W at a random offset
  bool flip = false;  // mirror left-right with probability 1/2
  // Image-folder sets: the ImageNet train transform (random resized crop, then a flip with
  // probability 1/2; see data/image_transforms.h) instead of the eval transform. crop_pad and
  // flip apply to in-memory sets only.
  bool resized_crop = false;
};

// One image's draw. The output pixel (y, x) is input (y + dy, x' + dx) with x' = W-1-x when
// flipped, else x; reads outside the image give 0. dy, dx lie in [-crop_pad, crop_pad].
struct AugmentDraw {
  int dy = 0, dx = 0;
  bool flip = false;
};

// Depends only on (seed, epoch, index), so batching and thread count cannot change it.
AugmentDraw draw_augment(const AugmentConfig& cfg, std::uint64_t seed, int epoch, std::int64_t index);

// src and dst: (C, H, W), distinct buffers.
void apply_augment(const std::uint8_t* src, std::uint8_t* dst, int channels, int height, int width,
                   const AugmentDraw& d);

}  // namespace safnet
