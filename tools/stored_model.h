// A model's parameters with its faultable weights written into a storage dtype (f32, f16, bf16,
// fixed(m,n)): the tensors that faults hit and that conv2d/linear read through their weight view.
#pragma once
#include <functional>

#include "host/params.h"

namespace safnet {

// Default fault-prone parameters: conv and linear weights (the ones read through the SAF).
bool is_weight(const ParamInfo& p);

// A ParamStore whose parameters selected by `stored` are encoded in `dtype` (new tensors of
// that dtype); all other parameters share the f32 tensors of `params`.
ParamStore store_params(const ParamStore& params, DType dtype,
                        const std::function<bool(const ParamInfo&)>& stored = is_weight);

}  // namespace safnet
