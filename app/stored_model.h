// A model's parameters with its fault targets written into a storage dtype (f32, f16, bf16,
// fixed(m,n)): the words that faults hit, and what the executors bind.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "host/backend.h"
#include "host/params.h"
#include "host/saf.h"

namespace safnet {

// Default fault-prone parameters: conv and linear weights (the ones read through the SAF).
bool is_weight(const ParamInfo& p);

// One fault target's place in the stored words: elements [first_word, first_word + words).
struct TargetSlice {
  std::string name;
  std::int64_t first_word = 0, words = 0;
  Saf saf;                   // what the tensor is read through
  bool weight_view = false;  // read by conv2d/linear straight from its stored words
};

// The slices of the parameters `selected` picks, in parameter order, with the SAF each is read through.
std::vector<TargetSlice> target_slices(const ParamStore& params, const std::map<std::string, Saf>& safs,
                                       const std::function<bool(const ParamInfo&)>& selected);

// The one representation of stored weights, on any backend. Every target's elements are words
// of `dtype` in one little-endian buffer (slice order), which is what faults hit. Conv and linear
// weights are bound as views into that buffer and read through their weight view; every other
// target (biases, batch norm) is bound as an f32 tensor decoded from its words by refresh().
// Parameters that are not targets stay f32.
class StoredModel {
 public:
  StoredModel(const ParamStore& params, std::vector<TargetSlice> slices, DType dtype, Backend& backend);

  DType dtype() const { return dtype_; }
  const std::vector<TargetSlice>& slices() const { return slices_; }
  std::int64_t word_count() const { return words_; }
  // (word_count() * dtype().size()) u8 on the backend's device.
  Tensor& words() { return work_; }
  // The clean words on the host, as encoded.
  const Tensor& clean_words() const { return clean_host_; }

  // Puts the clean words back.
  void restore();
  // Decodes the targets that no weight view reads, after the words changed.
  void refresh();
  ParamStore& params() { return params_; }

 private:
  struct Decoded {
    Tensor stored, value;  // a view into the words; its f32 value
  };
  DType dtype_;
  Backend& backend_;
  std::vector<TargetSlice> slices_;
  std::int64_t words_ = 0;
  Tensor clean_host_, clean_, work_;
  ParamStore params_;
  std::vector<Decoded> decoded_;
};

// A ParamStore whose parameters selected by `stored` are encoded in `dtype` and bound as
// StoredModel binds them, on `backend`.
ParamStore store_params(const ParamStore& params, DType dtype, Backend& backend,
                        const std::function<bool(const ParamInfo&)>& stored = is_weight);

// A copy of `params` on `backend`'s device (the same tensors when that is the host).
ParamStore params_on(Backend& backend, const ParamStore& params);
// A host copy of `params` from wherever they live.
ParamStore params_to_host(Backend& backend, const ParamStore& params);

}  // namespace safnet
