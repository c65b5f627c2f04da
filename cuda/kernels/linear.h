// Linear (fully connected) layers on the GPU; forward and backward-data read the raw weights in
// their storage dtype and apply dequant + SAF as they load the weight tile.
#pragma once
#include "cuda/hd.h"
#include "cuda/kernels/weight_storage.h"
#include "cuda/launch.h"

namespace safnet::cuda::inline SAFNET_BUILD {

// y (N, OUT) = x (N, IN) tau(dequant(w.raw (OUT, IN)))^T + b (OUT); b may be null.
void linear_forward(int n, int in, int out, const float* x, const WeightView& w, const float* b, float* y,
                    cudaStream_t s);
// dx (N, IN) = dy (N, OUT) tau(dequant(w.raw (OUT, IN))).
void linear_backward_data(int n, int in, int out, const float* dy, const WeightView& w, float* dx, cudaStream_t s);
// dw (OUT, IN) = (dy^T x) * tau'(e.raw) (e.raw null: tau' = 1); db (OUT) = sum_n dy (db may be
// null). Each output is summed by one thread in increasing n.
void linear_backward_weight(int n, int in, int out, const float* x, const float* dy, const SafGrad& e, float* dw,
                            float* db, cudaStream_t s);

}  // namespace safnet::cuda
