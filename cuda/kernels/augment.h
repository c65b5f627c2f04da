// Training augmentation and normalisation on the GPU: random crop with zero padding, horizontal flip,
// then the per-channel lookup table that maps pixel bytes to normalised floats.
#pragma once
#include "cuda/hd.h"
#include <cstdint>

#include "cuda/launch.h"

namespace safnet::cuda::inline SAFNET_BUILD {

// One image's draw, as data/augment.h's AugmentDraw: output pixel (y, x) reads input
// (y + dy, x' + dx) with x' = W-1-x when flip != 0, else x.
struct AugmentDrawDev {
  int dy, dx;
  int flip;
};

// out[i][c][y][x] = lut[c][in[i][c][y + dy][x' + dx]], where reads outside the image give pixel 0
// (so lut[c][0]): data/augment.cpp's apply_augment followed by the Loader's table, bit for bit.
// Any draw is safe: offsets beyond the image give a plane of lut[c][0].
void augment_normalize(const std::uint8_t* images /* (N, C, H, W) */,
                       const AugmentDrawDev* draws /* (N) device */, int n, int c, int h, int w,
                       const float* lut /* (C, 256) device */, float* out /* (N, C, H, W) */,
                       cudaStream_t s);

// augment_normalize over a training set held on the device: image i of the batch is image
// index[i] of `set`, and labels_out[i] = labels[index[i]] (index, labels, labels_out device i32).
void augment_normalize_gather(const std::uint8_t* set /* (M, C, H, W) */, const std::int32_t* index /* (N) */,
                              const AugmentDrawDev* draws /* (N) */, int n, int c, int h, int w, const float* lut,
                              float* out, const std::int32_t* labels /* (M) */, std::int32_t* labels_out /* (N) */,
                              cudaStream_t s);

}  // namespace safnet::cuda
