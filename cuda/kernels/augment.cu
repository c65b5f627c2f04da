// The augmentation kernel: one thread per output pixel, consecutive threads along a row.
#include "cuda/kernels/augment.h"

#include "cuda/kernels/common.h"

namespace safnet::cuda::inline SAFNET_BUILD {

namespace {

constexpr int kThreads = 256;

// index: null, or the set's image for each batch image.
__global__ void augment_normalize_kernel(const std::uint8_t* images, const std::int32_t* index,
                                         const AugmentDrawDev* draws, std::int64_t total, int c, int h, int w,
                                         const float* lut, float* out) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
       i < total; i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const int x = static_cast<int>(i % w);
    const int y = static_cast<int>(i / w % h);
    const std::int64_t plane = i / (static_cast<std::int64_t>(w) * h);  // image * C + channel
    const int ch = static_cast<int>(plane % c);
    const std::int64_t image = plane / c;
    const AugmentDrawDev d = draws[image];
    const std::int64_t src = (index != nullptr ? index[image] : image) * c + ch;
    const int sy = y + d.dy;
    const int sx = (d.flip != 0 ? w - 1 - x : x) + d.dx;
    const bool inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
    const int v = inside ? images[(src * h + sy) * w + sx] : 0;
    out[i] = lut[ch * 256 + v];
  }
}

__global__ void gather_labels_kernel(const std::int32_t* labels, const std::int32_t* index, int n, std::int32_t* out) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) out[i] = labels[index[i]];
}

}  // namespace

void augment_normalize(const std::uint8_t* images, const AugmentDrawDev* draws, int n, int c,
                       int h, int w, const float* lut, float* out, cudaStream_t s) {
  if (n < 0 || c <= 0 || h <= 0 || w <= 0)
    arg_fail("cuda/kernels/augment.cu: augment_normalize: bad shape (", n, ", ", c, ", ", h, ", ",
             w, ")");
  if (n == 0) return;
  if (images == nullptr || draws == nullptr || lut == nullptr || out == nullptr)
    arg_fail("cuda/kernels/augment.cu: augment_normalize: null buffer");
  // Dimensions are ints, so the product fits in 64 bits.
  const std::int64_t total = static_cast<std::int64_t>(n) * c * h * w;
  SAFNET_LAUNCH(augment_normalize_kernel, grid_for(total, kThreads), kThreads, 0, s, images,
                static_cast<const std::int32_t*>(nullptr), draws, total, c, h, w, lut, out);
}

void augment_normalize_gather(const std::uint8_t* set, const std::int32_t* index, const AugmentDrawDev* draws, int n,
                              int c, int h, int w, const float* lut, float* out, const std::int32_t* labels,
                              std::int32_t* labels_out, cudaStream_t s) {
  if (n < 0 || c <= 0 || h <= 0 || w <= 0)
    arg_fail("cuda/kernels/augment.cu: augment_normalize_gather: bad shape (", n, ", ", c, ", ", h, ", ", w, ")");
  if (n == 0) return;
  if (set == nullptr || index == nullptr || draws == nullptr || lut == nullptr || out == nullptr ||
      labels == nullptr || labels_out == nullptr)
    arg_fail("cuda/kernels/augment.cu: augment_normalize_gather: null buffer");
  const std::int64_t total = static_cast<std::int64_t>(n) * c * h * w;
  SAFNET_LAUNCH(augment_normalize_kernel, grid_for(total, kThreads), kThreads, 0, s, set, index, draws, total, c, h,
                w, lut, out);
  SAFNET_LAUNCH(gather_labels_kernel, grid_for(n, kThreads), kThreads, 0, s, labels, index, n, labels_out);
}

}  // namespace safnet::cuda
