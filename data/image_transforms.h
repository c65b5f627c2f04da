// The standard ImageNet transforms on decoded images, pixel for pixel as torchvision does them on PIL images.
#pragma once
#include <cstdint>

#include "data/image_decode.h"

namespace safnet {

constexpr int kEvalResize = 256, kEvalCrop = 224;
constexpr int kTrainCrop = 224;

// Resamples the region (top, left, height, width) of img, as if cropped out first, to
// out_h x out_w with PIL's bilinear filter (its support widened by the scale factor when
// shrinking, i.e. antialiased) in PIL's fixed-point arithmetic. out: (3, out_h, out_w) u8.
void resize_region(const Image& img, int top, int left, int height, int width, int out_h, int out_w,
                   std::uint8_t* out);

// Resize the shorter side to `resize` (bilinear, antialiased when shrinking, like torchvision
// on PIL images), then centre-crop crop x crop. out: (3, crop, crop) u8.
void eval_transform(const Image& img, int resize, int crop, std::uint8_t* out);

// A region of the source image and whether to mirror the result left-right.
struct ResizedCropDraw {
  int top = 0, left = 0, height = 0, width = 0;
  bool flip = false;
};

// torchvision's RandomResizedCrop(scale=(0.08, 1), ratio=(3/4, 4/3)) region for an image of
// height x width: ten tries at a random area and log-uniform aspect ratio, then a centre crop
// of the whole image clamped to the ratio range. flip (when asked) has probability 1/2.
// Depends only on (seed, epoch, index) and the image size.
ResizedCropDraw draw_resized_crop(std::uint64_t seed, int epoch, std::int64_t index, int height, int width,
                                  bool flip);

// The draw's region resized to size x size, mirrored when the draw says so. out: (3, size, size) u8.
void train_transform(const Image& img, const ResizedCropDraw& d, int size, std::uint8_t* out);

}  // namespace safnet
