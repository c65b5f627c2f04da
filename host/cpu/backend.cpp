// The CPU backend's dispatch: maps each graph op onto the kernels of host/cpu/ops.h.
#include "host/cpu/backend.h"

#include <omp.h>

#include <cmath>
#include <cstring>

#include "host/check.h"
#include "host/cpu/blas_kernels.h"
#include "host/cpu/ops.h"
#include "host/cpu/parallel.h"
#include "host/faults/storage.h"
#include "host/node_geometry.h"

namespace safnet::cpu {

namespace {

int i(std::int64_t v) { return static_cast<int>(v); }

// The weight view of conv2d/linear: tau(dequant(raw)) into a reused scratch buffer.
const float* load_weight(const Node& n, const Tensor& raw) {
  thread_local std::vector<float> scratch;
  if (n.attrs.saf.kind == SafKind::none && raw.dtype() == DType::f32()) return raw.data<float>();
  scratch.resize(static_cast<std::size_t>(raw.numel()));
  weight_view_load(n.attrs.saf, raw.dtype(), raw.raw(), raw.numel(), scratch.data());
  return scratch.data();
}

void require_f32_raw(const Node& n, const Tensor& raw) {
  if (raw.dtype() != DType::f32())
    fail(n.name, ": training needs f32 raw weights, got ", raw.dtype().name());
}

}  // namespace

void run_node(const Node& n, const std::vector<Tensor*>& in, const std::vector<Tensor*>& out) {
  auto F = [](Tensor* t) { return t->data<float>(); };
  auto cF = [](const Tensor* t) { return t->data<float>(); };
  switch (n.op) {
    case Op::conv2d:
      conv2d_forward(conv_geom(n, in[0]->shape(), in[1]->shape()), cF(in[0]), load_weight(n, *in[1]), F(out[0]));
      return;
    case Op::conv2d_bn: {  // in: x, w, gamma, beta, running_mean, running_var [, residual]
      const ConvGeom g = conv_geom(n, in[0]->shape(), in[1]->shape());
      thread_local std::vector<float> scale;
      scale.resize(static_cast<std::size_t>(g.k));
      for (int k = 0; k < g.k; ++k) scale[k] = bn_eval_scale(cF(in[2])[k], cF(in[5])[k], n.attrs.eps);
      ConvEpilogue e;
      e.scale = scale.data();
      e.mean = cF(in[4]);
      e.shift = cF(in[3]);
      e.residual = in.size() > 6 ? cF(in[6]) : nullptr;
      e.residual_first = n.attrs.residual_first;
      e.relu = n.attrs.relu;
      conv2d_forward(g, cF(in[0]), load_weight(n, *in[1]), F(out[0]), &e);
      return;
    }
    case Op::conv2d_bwd_data:  // in: dy, w
      conv2d_backward_data(conv_geom(n, out[0]->shape(), in[1]->shape()), cF(in[0]), load_weight(n, *in[1]),
                           F(out[0]));
      return;
    case Op::conv2d_bwd_weight:  // in: x, dy, w
      require_f32_raw(n, *in[2]);
      conv2d_backward_weight(conv_geom(n, in[0]->shape(), in[2]->shape()), cF(in[0]), cF(in[1]), F(out[0]));
      weight_grad_epilogue(n.attrs.saf, cF(in[2]), in[2]->numel(), F(out[0]));
      return;
    case Op::linear: {
      const Shape& ws = in[1]->shape();
      linear_forward(i(in[0]->dim(0)), i(ws[1]), i(ws[0]), cF(in[0]), load_weight(n, *in[1]),
                     in.size() > 2 ? cF(in[2]) : nullptr, F(out[0]));
      return;
    }
    case Op::linear_bwd_data: {  // in: dy, w
      const Shape& ws = in[1]->shape();
      linear_backward_data(i(in[0]->dim(0)), i(ws[1]), i(ws[0]), cF(in[0]), load_weight(n, *in[1]), F(out[0]));
      return;
    }
    case Op::linear_bwd_weight: {  // in: x, dy, w
      require_f32_raw(n, *in[2]);
      const Shape& ws = in[2]->shape();
      linear_backward_weight(i(in[0]->dim(0)), i(ws[1]), i(ws[0]), cF(in[0]), cF(in[1]), F(out[0]),
                             out.size() > 1 ? F(out[1]) : nullptr);
      weight_grad_epilogue(n.attrs.saf, cF(in[2]), in[2]->numel(), F(out[0]));
      return;
    }
    case Op::batchnorm_train: {  // in: x, gamma, beta, running_mean, running_var; out: y, mean, invstd
      const BnGeom g = bn_geom(in[0]->shape());
      batchnorm_forward_train(g, cF(in[0]), cF(in[1]), cF(in[2]), n.attrs.eps, n.attrs.momentum, F(out[0]),
                              F(out[1]), F(out[2]), F(in[3]), F(in[4]));
      return;
    }
    case Op::batchnorm_eval: {
      const BnGeom g = bn_geom(in[0]->shape());
      batchnorm_forward_eval(g, cF(in[0]), cF(in[1]), cF(in[2]), cF(in[3]), cF(in[4]), n.attrs.eps, F(out[0]));
      return;
    }
    case Op::batchnorm_bwd: {  // in: x, dy, gamma, mean, invstd; out: dx, dgamma, dbeta
      const BnGeom g = bn_geom(in[0]->shape());
      batchnorm_backward(g, cF(in[0]), cF(in[1]), cF(in[2]), cF(in[3]), cF(in[4]), F(out[0]), F(out[1]), F(out[2]));
      return;
    }
    case Op::relu: relu_forward(in[0]->numel(), cF(in[0]), F(out[0])); return;
    case Op::relu_bwd: relu_backward(in[0]->numel(), cF(in[0]), cF(in[1]), F(out[0])); return;
    case Op::add: add_forward(in[0]->numel(), cF(in[0]), cF(in[1]), F(out[0])); return;
    case Op::shortcut_a: {
      const Shape& xs = in[0]->shape();
      shortcut_a_forward(i(xs[0]), i(xs[1]), i(xs[2]), i(xs[3]), n.attrs.stride, i(out[0]->dim(1)), cF(in[0]),
                         F(out[0]));
      return;
    }
    case Op::shortcut_a_bwd: {
      const Shape& xs = out[0]->shape();
      shortcut_a_backward(i(xs[0]), i(xs[1]), i(xs[2]), i(xs[3]), n.attrs.stride, i(in[0]->dim(1)), cF(in[0]),
                          F(out[0]));
      return;
    }
    case Op::global_avgpool: {
      const Shape& xs = in[0]->shape();
      global_avgpool_forward(i(xs[0]), i(xs[1]), i(xs[2] * xs[3]), cF(in[0]), F(out[0]));
      return;
    }
    case Op::global_avgpool_bwd: {
      const Shape& xs = out[0]->shape();
      global_avgpool_backward(i(xs[0]), i(xs[1]), i(xs[2] * xs[3]), cF(in[0]), F(out[0]));
      return;
    }
    case Op::maxpool:
      maxpool_forward(pool_geom(n, in[0]->shape()), cF(in[0]), F(out[0]), out[1]->data<std::int32_t>());
      return;
    case Op::maxpool_bwd:
      maxpool_backward(pool_geom(n, out[0]->shape()), cF(in[0]), in[1]->data<std::int32_t>(), F(out[0]));
      return;
    case Op::reshape: std::memcpy(out[0]->raw(), in[0]->raw(), in[0]->nbytes()); return;
    case Op::softmax_ce: {
      const Shape& ls = in[0]->shape();
      F(out[0])[0] = softmax_ce_forward(i(ls[0]), i(ls[1]), cF(in[0]), in[1]->data<std::int32_t>(),
                                        n.attrs.smoothing, F(out[1]));
      return;
    }
    case Op::softmax_ce_bwd: {  // in: probs, labels
      const Shape& ls = in[0]->shape();
      softmax_ce_backward(i(ls[0]), i(ls[1]), cF(in[0]), in[1]->data<std::int32_t>(), n.attrs.smoothing, 1.0f,
                          F(out[0]));
      return;
    }
  }
  fail(n.name, ": the CPU backend has no kernel for ", op_name(n.op));
}

std::string CpuBackend::describe() const {
  blas_use_calling_thread();  // selects the BLAS kernels, so the name below is the one that runs
  return std::to_string(omp_get_max_threads()) + " threads, OpenBLAS kernels " + blas_kernel_name();
}

void CpuBackend::copy(const Tensor& src, Tensor& dst) {
  SAFNET_CHECK(src.device().is_cpu() && dst.device().is_cpu(), "the CPU backend copies host tensors only");
  SAFNET_CHECK(src.nbytes() == dst.nbytes(), "copy of ", src.nbytes(), " bytes into ", dst.nbytes());
  if (src.nbytes()) std::memcpy(dst.raw(), src.raw(), src.nbytes());
}

void CpuBackend::sgd_update(Tensor& wt, const Tensor& gt, Tensor& buft, float lr, float mu, bool nesterov,
                            float wd) {
  float* w = wt.data<float>();
  const float* g = gt.data<float>();
  float* buf = buft.data<float>();
  // torch: the first step copies the gradient into the buffer instead of decaying zeros; the two
  // agree because the buffer starts at zero and dampening is 0.
  for (std::int64_t j = 0, n = wt.numel(); j < n; ++j) {
    const float d = g[j] + wd * w[j];
    buf[j] = mu * buf[j] + d;
    const float u = nesterov ? d + mu * buf[j] : (mu != 0.0f ? buf[j] : d);
    w[j] -= lr * u;
  }
}

void CpuBackend::adamw_update(Tensor& wt, const Tensor& gt, Tensor& mt, Tensor& vt, float lr, float b1, float b2,
                              float eps, float wd, std::int64_t steps) {
  float* w = wt.data<float>();
  const float* g = gt.data<float>();
  float* m = mt.data<float>();
  float* v = vt.data<float>();
  const float bc1 = 1.0f - std::pow(b1, static_cast<float>(steps));
  const float bc2 = 1.0f - std::pow(b2, static_cast<float>(steps));
  const float step = lr / bc1;
  const float bc2_sqrt = std::sqrt(bc2);
  for (std::int64_t j = 0, n = wt.numel(); j < n; ++j) {
    w[j] *= 1.0f - lr * wd;
    m[j] = b1 * m[j] + (1.0f - b1) * g[j];
    v[j] = b2 * v[j] + (1.0f - b2) * g[j] * g[j];
    w[j] -= step * m[j] / (std::sqrt(v[j]) / bc2_sqrt + eps);
  }
}

void CpuBackend::dequantize(const Tensor& stored, Tensor& out) {
  SAFNET_CHECK(stored.numel() == out.numel() && out.dtype() == DType::f32(), "dequantize shapes");
  decode_words(stored.raw(), stored.dtype(), stored.numel(), out.data<float>());
}

std::vector<FlipSite> CpuBackend::do_inject_faults(Tensor& words, std::uint64_t seed, std::uint64_t trial,
                                                  const FlipSpec& spec, FaultModel model) {
  std::vector<FlipSite> sites = sample_flips(seed, trial, spec);
  apply_faults(words.data<std::uint8_t>(), (spec.word_bits + 7) / 8, sites, model);
  return sites;
}

void CpuBackend::accumulate_metrics(const Tensor& logits, const Tensor& labels, const Tensor& loss, NanLogits rule,
                                    Tensor& sums) {
  const Shape& ls = logits.shape();
  SAFNET_CHECK(ls.size() == 2 && logits.dtype() == DType::f32(), "accumulate_metrics: logits must be (N, K) f32");
  SAFNET_CHECK(labels.numel() == ls[0] && labels.dtype() == DType::i32(), "accumulate_metrics: labels must be (",
               ls[0], ") i32");
  SAFNET_CHECK(loss.numel() == 1 && loss.dtype() == DType::f32(), "accumulate_metrics: loss must be (1) f32");
  SAFNET_CHECK(sums.nbytes() == sizeof(MetricSums) && sums.device().is_cpu(), "accumulate_metrics: sums must be ",
               sizeof(MetricSums), " bytes on the host, got ", sums.nbytes());
  std::int64_t t1 = 0, t5 = 0, nf = 0;
  topk_correct(i(ls[0]), i(ls[1]), logits.data<float>(), labels.data<std::int32_t>(), &t1, &t5, rule, &nf);
  MetricSums m;
  std::memcpy(&m, sums.raw(), sizeof m);
  m.top1 += t1;
  m.top5 += t5;
  m.nonfinite_rows += nf;
  m.loss_sum += static_cast<double>(loss.data<float>()[0]) * static_cast<double>(ls[0]);
  std::memcpy(sums.raw(), &m, sizeof m);
}

}  // namespace safnet::cpu

namespace safnet {

Backend& cpu_backend() {
  static cpu::CpuBackend backend;
  return backend;
}

}  // namespace safnet
