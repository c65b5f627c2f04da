// The CPU backend: dispatch of graph nodes onto host/cpu/ops.h, host memory, optimizer updates.
#pragma once
#include <vector>

#include "host/backend.h"
#include "host/graph.h"

namespace safnet::cpu {

void run_node(const Node& node, const std::vector<Tensor*>& in, const std::vector<Tensor*>& out);

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device{}; }
  std::string describe() const override;
  Tensor zeros(Shape shape, DType dtype) override { return Tensor(std::move(shape), dtype); }
  void copy(const Tensor& src, Tensor& dst) override;
  void synchronize() override {}
  bool parallel_callers() const override { return true; }
  bool fuses_conv_epilogues() const override { return true; }
  void run_node(const Node& node, const std::vector<Tensor*>& in, const std::vector<Tensor*>& out) override {
    cpu::run_node(node, in, out);
  }
  void sgd_update(Tensor& w, const Tensor& g, Tensor& buf, float lr, float momentum, bool nesterov,
                  float weight_decay) override;
  void adamw_update(Tensor& w, const Tensor& g, Tensor& m, Tensor& v, float lr, float beta1, float beta2, float eps,
                    float weight_decay, std::int64_t step) override;
  void dequantize(const Tensor& stored, Tensor& out) override;
  void accumulate_metrics(const Tensor& logits, const Tensor& labels, const Tensor& loss, NanLogits rule,
                          Tensor& sums) override;

 protected:
  std::vector<FlipSite> do_inject_faults(Tensor& words, std::uint64_t seed, std::uint64_t trial, const FlipSpec& spec,
                                         FaultModel model) override;
};

}  // namespace safnet::cpu
