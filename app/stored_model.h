// A model's parameters with its faultable weights written into a storage dtype (f32, f16, bf16,
// fixed(m,n)): the tensors that faults hit and that conv2d/linear read through their weight view.
#pragma once
#include <functional>

#include "host/backend.h"
#include "host/params.h"

namespace safnet {

// Default fault-prone parameters: conv and linear weights (the ones read through the SAF).
bool is_weight(const ParamInfo& p);

// A ParamStore whose parameters selected by `stored` are encoded in `dtype` (new tensors of
// that dtype); all other parameters share the f32 tensors of `params`.
ParamStore store_params(const ParamStore& params, DType dtype,
                        const std::function<bool(const ParamInfo&)>& stored = is_weight);

// A copy of `params` on `backend`'s device (the same tensors when that is the host).
ParamStore params_on(Backend& backend, const ParamStore& params);
// A host copy of `params` from wherever they live.
ParamStore params_to_host(Backend& backend, const ParamStore& params);

}  // namespace safnet
