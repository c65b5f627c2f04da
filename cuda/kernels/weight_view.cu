// Weight-view and SAF-gradient kernels: one grid-stride loop each over the weights.
#include "cuda/kernels/weight_view.h"

#include "cuda/kernels/common.h"

namespace safnet::cuda::inline SAFNET_BUILD {

namespace {

constexpr int kThreads = 256;

__global__ void weight_view_kernel(WeightView w, std::int64_t count, float* out) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    out[i] = load_weight(w, i);
}

__global__ void saf_grad_kernel(SafGrad e, std::int64_t count, float* grad) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    grad[i] = apply_saf_grad(e, i, grad[i]);
}

}  // namespace

void check_weight_storage(StorageFormat storage, const char* op) {
  const int kind = static_cast<int>(storage.kind);
  if (kind < 0 || kind > static_cast<int>(StorageFormat::Kind::fixed))
    arg_fail("cuda/kernels/weight_view.cu: ", op, ": unknown weight storage kind ", kind,
             " (valid: f32 f16 bf16 fixed)");
  if (storage.kind == StorageFormat::Kind::fixed && (storage.frac_bits < 0 || storage.frac_bits > 7))
    arg_fail("cuda/kernels/weight_view.cu: ", op, ": fixed-point fraction bits ", storage.frac_bits,
             " outside 0..7");
}

void weight_view_load(const Saf& saf, StorageFormat storage, const void* raw, std::int64_t count, float* out,
                      cudaStream_t s) {
  if (count < 0) arg_fail("cuda/kernels/weight_view.cu: weight_view_load: negative count ", count);
  check_weight_storage(storage, "weight_view_load");
  if (count == 0) return;
  SAFNET_LAUNCH(weight_view_kernel, grid_for(count, kThreads), kThreads, 0, s, WeightView{raw, storage, saf},
                count, out);
}

void weight_grad_epilogue(const Saf& saf, const float* raw, std::int64_t count, float* grad, cudaStream_t s) {
  if (count < 0) arg_fail("cuda/kernels/weight_view.cu: weight_grad_epilogue: negative count ", count);
  if (count == 0 || (saf.kind == SafKind::none && saf.nan == NanMode::propagate)) return;
  SAFNET_LAUNCH(saf_grad_kernel, grid_for(count, kThreads), kThreads, 0, s, SafGrad{raw, saf}, count, grad);
}

}  // namespace safnet::cuda
