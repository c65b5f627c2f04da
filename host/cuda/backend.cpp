// The CUDA backend's dispatch: maps each graph op onto one launcher of cuda/kernels.
#include "host/cuda/backend.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/cuda_check.h"
#include "cuda/device/allocator.h"
#include "cuda/device/graph.h"
#include "cuda/device/nvtx.h"
#include "cuda/device/pinned.h"
#include "cuda/kernels/augment.h"
#include "cuda/kernels/batchnorm.h"
#include "cuda/kernels/conv2d.h"
#include "cuda/kernels/elementwise.h"
#include "cuda/kernels/flips.h"
#include "cuda/kernels/linear.h"
#include "cuda/kernels/optim.h"
#include "cuda/kernels/pool.h"
#include "cuda/kernels/shortcut.h"
#include "cuda/kernels/softmax_ce.h"
#include "cuda/kernels/weight_view.h"
#include "host/check.h"
#include "host/dtype.h"
#include "host/node_geometry.h"

namespace safnet::cuda_backend::inline SAFNET_BUILD {

std::string device_count_error();  // below: why cudaGetDeviceCount found no device

namespace {

namespace k = ::safnet::cuda;

int i(std::int64_t v) { return static_cast<int>(v); }

#if defined(SAFNET_CUDA_REAL)
constexpr DeviceKind kKind = DeviceKind::cuda;
#else
constexpr DeviceKind kKind = DeviceKind::sim;
#endif

k::WeightView weight_view(const Node& n, const Tensor& raw) {
  if (!raw.dtype().is_float_storage()) fail(n.name, ": weights cannot be stored as ", raw.dtype().name());
  return k::WeightView{raw.device_raw(), storage_format(raw.dtype()), n.attrs.saf};
}

k::SafGrad saf_grad(const Node& n, const Tensor& raw) {
  if (raw.dtype() != DType::f32()) fail(n.name, ": training needs f32 raw weights, got ", raw.dtype().name());
  return k::SafGrad{raw.device_data<float>(), n.attrs.saf};
}

k::FlipPlan flip_plan(std::uint64_t seed, std::uint64_t trial, const FlipSpec& spec) {
  const bool sampled = spec.ber > 0 && spec.ber < 1;
  const FlipThresholds t = sampled ? flip_thresholds(spec.ber) : FlipThresholds{};
  return k::make_flip_plan(seed, trial, spec.words, spec.word_bits, spec.bit_mask, spec.ber, sampled ? &t : nullptr);
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int index) : index_(index) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
      cudaGetLastError();
      count = 0;
    }
    if (index < 0 || index >= count)
      fail(Device{kKind, index}.str(), ": no such CUDA device (this machine has ", count,
           count == 0 ? "; " + device_count_error() : std::string(), ")");
    SAFNET_CUDA_CHECK(cudaSetDevice(index));
    cudaDeviceProp prop{};
    SAFNET_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
    describe_ = std::string(prop.name) + ", " + std::to_string(prop.multiProcessorCount) + " SMs, sm_" +
                std::to_string(prop.major) + std::to_string(prop.minor) + ", " +
                std::to_string(prop.totalGlobalMem >> 20) + " MiB";
    SAFNET_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    SAFNET_CUDA_CHECK(cudaEventCreateWithFlags(&staging_free_, cudaEventDisableTiming));
    lanes_.push_back(Lane{stream_, nullptr});
    alloc_ = new k::CachingAllocator(stream_);  // never freed: tensors may outlive the backend at exit
  }

  Device device() const override { return Device{kKind, kKind == DeviceKind::sim ? 0 : index_}; }
  std::string describe() const override { return describe_; }

  Tensor zeros(Shape shape, DType dtype) override {
    bind();
    // The allocator orders reuse on lane 0's stream.
    SAFNET_CHECK(stream_ == lanes_[0].stream, "device memory allocated while lane ", lane_, " is current");
    const std::size_t bytes = std::max<std::size_t>(1, static_cast<std::size_t>(shape_numel(shape)) * dtype.size());
    void* p = alloc_->allocate(bytes);
    SAFNET_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream_));
    // Stream-ordered: the block may be handed out again at once, since later users queue behind
    // whatever work on the stream still reads it.
    k::CachingAllocator* alloc = alloc_;
    std::shared_ptr<std::byte[]> storage(static_cast<std::byte*>(p), [alloc](std::byte* q) { alloc->release(q); });
    return Tensor(std::move(shape), dtype, device(), std::move(storage));
  }

  std::size_t peak_bytes() const override { return alloc_->peak_bytes(); }

  bool augments_on_device() const override { return true; }
  bool fuses_conv_epilogues() const override { return true; }
  void set_math_mode(MathMode mode) override { math_ = mode; }
  MathMode math_mode() const override { return math_; }

  void dequantize(const Tensor& stored, Tensor& out) override {
    SAFNET_CHECK(stored.numel() == out.numel() && out.dtype() == DType::f32(), "dequantize shapes");
    bind();
    k::weight_view_load(Saf{}, storage_format(stored.dtype()), stored.device_raw(), stored.numel(),
                        out.device_data<float>(), stream_);
  }

  void augment_batch(const Tensor& pixels, const std::vector<ImageDraw>& draws, const std::vector<float>& lut,
                     Tensor& out) override {
    bind();
    const Shape& sh = pixels.shape();
    SAFNET_CHECK(sh.size() == 4 && out.shape() == sh && draws.size() == static_cast<std::size_t>(sh[0]) &&
                     lut.size() == static_cast<std::size_t>(sh[1]) * 256,
                 "augment_batch shapes");
    const float* dev_lut = lut_on_device(lut);
    Tensor dev_pixels = to_device(pixels);
    std::vector<k::AugmentDrawDev> d(draws.size());
    for (std::size_t i = 0; i < draws.size(); ++i) d[i] = {draws[i].dy, draws[i].dx, draws[i].flip};
    Tensor host_draws({static_cast<std::int64_t>(d.size() * sizeof(k::AugmentDrawDev))}, DType::u8());
    std::memcpy(host_draws.data<std::uint8_t>(), d.data(), host_draws.nbytes());
    Tensor dev_draws = to_device(host_draws);
    k::augment_normalize(dev_pixels.device_data<std::uint8_t>(), dev_draws.device_data<k::AugmentDrawDev>(), i(sh[0]),
                         i(sh[1]), i(sh[2]), i(sh[3]), dev_lut, out.device_data<float>(), stream_);
  }

  void augment_gather(const Tensor& set, const Tensor& set_labels, const Tensor& index, const Tensor& draws,
                      const std::vector<float>& lut, Tensor& out, Tensor& out_labels) override {
    bind();
    static_assert(sizeof(k::AugmentDrawDev) == 3 * sizeof(std::int32_t));
    const Shape& sh = set.shape();
    const std::int64_t n = index.numel();
    SAFNET_CHECK(sh.size() == 4 && set.dtype() == DType::u8() && set_labels.numel() == sh[0] &&
                     set_labels.dtype() == DType::i32() && index.dtype() == DType::i32() &&
                     draws.dtype() == DType::i32() && draws.numel() == 3 * n &&
                     out.shape() == Shape({n, sh[1], sh[2], sh[3]}) && out_labels.numel() == n &&
                     out_labels.dtype() == DType::i32() && lut.size() == static_cast<std::size_t>(sh[1]) * 256,
                 "augment_gather shapes");
    const float* dev_lut = lut_on_device(lut);
    k::augment_normalize_gather(set.device_data<std::uint8_t>(), index.device_data<std::int32_t>(),
                                static_cast<const k::AugmentDrawDev*>(draws.device_raw()), i(n), i(sh[1]), i(sh[2]),
                                i(sh[3]), dev_lut, out.device_data<float>(), set_labels.device_data<std::int32_t>(),
                                out_labels.device_data<std::int32_t>(), stream_);
  }

  int lanes() const override { return static_cast<int>(lanes_.size()); }
  void add_lanes(int n) override {
    bind();
    while (static_cast<int>(lanes_.size()) < n) {
      Lane l;
      SAFNET_CUDA_CHECK(cudaStreamCreateWithFlags(&l.stream, cudaStreamNonBlocking));
      SAFNET_CUDA_CHECK(cudaEventCreateWithFlags(&l.done, cudaEventDisableTiming));
      lanes_.push_back(l);
    }
    if (!forked_) SAFNET_CUDA_CHECK(cudaEventCreateWithFlags(&forked_, cudaEventDisableTiming));
  }
  void use_lane(int lane) override {
    SAFNET_CHECK(lane >= 0 && lane < lanes(), "lane ", lane, " of ", lanes());
    lane_ = lane;
    stream_ = lanes_[static_cast<std::size_t>(lane)].stream;
  }
  void fork_lanes() override {
    bind();
    if (lanes_.size() < 2) return;
    SAFNET_CUDA_CHECK(cudaEventRecord(forked_, lanes_[0].stream));
    for (std::size_t l = 1; l < lanes_.size(); ++l) SAFNET_CUDA_CHECK(cudaStreamWaitEvent(lanes_[l].stream, forked_, 0));
  }
  // Lane 0 waits on the device for the others, then the host for lane 0: one synchronisation.
  void synchronize_lanes() override {
    bind();
    for (std::size_t l = 1; l < lanes_.size(); ++l) {
      SAFNET_CUDA_CHECK(cudaEventRecord(lanes_[l].done, lanes_[l].stream));
      SAFNET_CUDA_CHECK(cudaStreamWaitEvent(lanes_[0].stream, lanes_[l].done, 0));
    }
    SAFNET_CUDA_CHECK(cudaStreamSynchronize(lanes_[0].stream));
  }
  Tensor host_buffer(Shape shape, DType dtype) override {
    bind();
    const std::size_t bytes = std::max<std::size_t>(1, static_cast<std::size_t>(shape_numel(shape)) * dtype.size());
    void* p = nullptr;
    SAFNET_CUDA_CHECK(cudaMallocHost(&p, bytes));
    std::memset(p, 0, bytes);
    std::shared_ptr<std::byte[]> storage(static_cast<std::byte*>(p), [](std::byte* q) { cudaFreeHost(q); });
    return Tensor(std::move(shape), dtype, Device{}, std::move(storage));
  }
  void copy_to_host_async(const Tensor& src, Tensor& dst) override {
    bind();
    SAFNET_CHECK(src.nbytes() == dst.nbytes() && !src.device().is_cpu() && dst.device().is_cpu(),
                 "copy_to_host_async of ", src.nbytes(), " bytes on ", src.device().str(), " into ", dst.nbytes(),
                 " on ", dst.device().str());
    SAFNET_CUDA_CHECK(
        cudaMemcpyAsync(dst.device_raw(), src.device_raw(), src.nbytes(), cudaMemcpyDeviceToHost, stream_));
  }
  std::size_t free_bytes() const override {
    bind();
    std::size_t free = 0, total = 0;
    SAFNET_CUDA_CHECK(cudaMemGetInfo(&free, &total));
    return free;
  }

  // Counts (chunks + 1 int64), then the sites.
  std::size_t fault_scratch_bytes(const FlipSpec& spec, std::int64_t capacity) const override {
    const std::int64_t chunks = k::flip_chunks(flip_plan(0, 0, spec));
    return static_cast<std::size_t>((chunks + 1) * 8) + static_cast<std::size_t>(capacity) * sizeof(FlipSite);
  }
  void inject_recorded_faults(Tensor& words, std::uint64_t seed, const Tensor& trial, const FlipSpec& spec,
                              FaultModel model, std::int64_t capacity, Tensor& scratch) override {
    bind();
    const int word_bytes = (spec.word_bits + 7) / 8;
    SAFNET_CHECK(static_cast<std::size_t>(spec.words) * static_cast<std::size_t>(word_bytes) <= words.nbytes(),
                 "fault injection into ", spec.words, " words of ", word_bytes, " bytes over ", words.nbytes());
    SAFNET_CHECK(trial.nbytes() == 8 && !trial.device().is_cpu(), "the trial index must be one u64 on the device");
    SAFNET_CHECK(scratch.nbytes() >= fault_scratch_bytes(spec, capacity), "fault scratch of ", scratch.nbytes(),
                 " bytes for ", capacity, " sites");
    k::FlipPlan plan = flip_plan(seed, 0, spec);
    plan.trial_at = static_cast<const std::uint64_t*>(static_cast<const void*>(trial.device_raw()));
    const std::int64_t chunks = k::flip_chunks(plan);
    auto* c = scratch.device_data<std::int64_t>();
    auto* ds = reinterpret_cast<FlipSite*>(c + chunks + 1);
    k::flip_count(plan, c, stream_);
    k::flip_write(plan, c, ds, capacity, stream_);
    if (capacity > 0)
      k::apply_faults(words.device_data<std::uint8_t>(), spec.words, word_bytes, ds, c + chunks, capacity, model,
                      stream_);
  }
  void set_trial(Tensor& trial, std::uint64_t index) override {
    bind();
    SAFNET_CHECK(trial.nbytes() == 8 && !trial.device().is_cpu(), "the trial index must be one u64 on the device");
    k::set_trial(static_cast<std::uint64_t*>(static_cast<void*>(trial.device_raw())), index, stream_);
  }

  void push_range(const std::string& name) override { ranges_.push_back(std::make_unique<k::NvtxRange>(name.c_str())); }
  void pop_range() override {
    if (!ranges_.empty()) ranges_.pop_back();
  }

  std::unique_ptr<Recording> record(const std::function<void()>& work) override {
    bind();
    if (cuda_sync_each_launch()) return nullptr;  // SAFNET_CUDA_SYNC=1: launch by launch, each checked
    class Graph final : public Recording {
     public:
      Graph(const CudaBackend* b, cudaStream_t s) : backend_(b), stream_(s) {}
      void replay() override {
        backend_->bind();
        graph_.replay(stream_);
      }
      k::CudaGraph graph_;
      const CudaBackend* backend_;
      cudaStream_t stream_;
    };
    auto g = std::make_unique<Graph>(this, stream_);
    g->graph_.begin_capture(stream_);
    capturing_ = true;
    workspace_recorded_ = true;  // the capture may bake its pointer into the graph
    try {
      work();
    } catch (...) {
      capturing_ = false;
      try {
        g->graph_.end_capture();
      } catch (...) {
      }
      throw;
    }
    capturing_ = false;
    g->graph_.end_capture();
    return g;
  }

  void copy(const Tensor& src, Tensor& dst) override {
    bind();
    SAFNET_CHECK(src.nbytes() == dst.nbytes(), "copy of ", src.nbytes(), " bytes into ", dst.nbytes());
    if (!src.nbytes()) return;
    const bool from_host = src.device().is_cpu(), to_host = dst.device().is_cpu();
    if (!from_host) SAFNET_CHECK(src.device() == device(), "copy from ", src.device().str(), " on ", device().str());
    if (!to_host) SAFNET_CHECK(dst.device() == device(), "copy to ", dst.device().str(), " on ", device().str());
    if (to_host) {
      // Queued behind the stream's work, then one wait: a trial's metrics cost one synchronisation.
      if (!from_host)
        SAFNET_CUDA_CHECK(cudaMemcpyAsync(dst.device_raw(), src.device_raw(), src.nbytes(), cudaMemcpyDeviceToHost,
                                          stream_));
      SAFNET_CUDA_CHECK(cudaStreamSynchronize(stream_));
      if (from_host) std::memcpy(dst.device_raw(), src.device_raw(), src.nbytes());
      return;
    }
    // Uploads go through pinned staging memory: the copy is asynchronous (it queues behind the
    // stream's work) and the caller may reuse `src` as soon as this returns.
    if (from_host) {
      SAFNET_CUDA_CHECK(cudaEventSynchronize(staging_free_));
      if (staging_.size() < src.nbytes()) staging_.resize(src.nbytes());
      std::memcpy(staging_.data(), src.device_raw(), src.nbytes());
      SAFNET_CUDA_CHECK(cudaMemcpyAsync(dst.device_raw(), staging_.data(), src.nbytes(), cudaMemcpyHostToDevice, stream_));
      SAFNET_CUDA_CHECK(cudaEventRecord(staging_free_, stream_));
      return;
    }
    SAFNET_CUDA_CHECK(cudaMemcpyAsync(dst.device_raw(), src.device_raw(), src.nbytes(), cudaMemcpyDeviceToDevice,
                                      stream_));
  }

  void synchronize() override {
    bind();
    SAFNET_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void run_node(const Node& n, const std::vector<Tensor*>& in, const std::vector<Tensor*>& out) override;

  void sgd_update(Tensor& w, const Tensor& g, Tensor& buf, float lr, float momentum, bool nesterov,
                  float weight_decay) override {
    bind();
    k::sgd_update(w.numel(), w.device_data<float>(), g.device_data<float>(), buf.device_data<float>(), lr, momentum,
                  nesterov, weight_decay, stream_);
  }
  void adamw_update(Tensor& w, const Tensor& g, Tensor& m, Tensor& v, float lr, float beta1, float beta2, float eps,
                    float weight_decay, std::int64_t step) override {
    bind();
    k::adamw_update(w.numel(), w.device_data<float>(), g.device_data<float>(), m.device_data<float>(),
                    v.device_data<float>(), lr, beta1, beta2, eps, weight_decay, step, stream_);
  }

 protected:
  std::vector<FlipSite> do_inject_faults(Tensor& words, std::uint64_t seed, std::uint64_t trial, const FlipSpec& spec,
                                         FaultModel model) override {
    bind();
    const int word_bytes = (spec.word_bits + 7) / 8;
    const k::FlipPlan plan = flip_plan(seed, trial, spec);
    const std::int64_t chunks = k::flip_chunks(plan);
    Tensor counts = zeros({(chunks + 1) * 8}, DType::u8());  // (chunks + 1) int64
    auto* c = counts.device_data<std::int64_t>();
    k::flip_count(plan, c, stream_);
    std::int64_t total = 0;
    synchronize();
    SAFNET_CUDA_CHECK(cudaMemcpy(&total, c + chunks, sizeof total, cudaMemcpyDeviceToHost));
    std::vector<FlipSite> sites(static_cast<std::size_t>(total));
    if (total == 0) return sites;
    Tensor dev_sites = zeros({total * static_cast<std::int64_t>(sizeof(FlipSite))}, DType::u8());
    auto* ds = dev_sites.device_data<FlipSite>();
    k::flip_write(plan, c, ds, total, stream_);
    k::apply_faults(words.device_data<std::uint8_t>(), spec.words, word_bytes, ds, c + chunks, total, model, stream_);
    synchronize();
    SAFNET_CUDA_CHECK(cudaMemcpy(sites.data(), ds, sites.size() * sizeof(FlipSite), cudaMemcpyDeviceToHost));
    return sites;
  }

  // The host's count sizes the device's site list, so nothing has to come back first.
  void do_inject_sampled_faults(Tensor& words, std::uint64_t seed, std::uint64_t trial, const FlipSpec& spec,
                                FaultModel model, std::int64_t expected) override {
    bind();
    if (expected == 0) return;
    const k::FlipPlan plan = flip_plan(seed, trial, spec);
    const std::int64_t chunks = k::flip_chunks(plan);
    Tensor counts = zeros({(chunks + 1) * 8}, DType::u8());  // (chunks + 1) int64
    auto* c = counts.device_data<std::int64_t>();
    k::flip_count(plan, c, stream_);
    Tensor dev_sites = zeros({expected * static_cast<std::int64_t>(sizeof(FlipSite))}, DType::u8());
    auto* ds = dev_sites.device_data<FlipSite>();
    k::flip_write(plan, c, ds, expected, stream_);
    k::apply_faults(words.device_data<std::uint8_t>(), spec.words, (spec.word_bits + 7) / 8, ds, c + chunks, expected,
                    model, stream_);
  }

 public:
  cudaStream_t stream() const { return stream_; }

  void accumulate_metrics(const Tensor& logits, const Tensor& labels, const Tensor& loss, NanLogits rule,
                          Tensor& sums) override {
    // The kernel adds to three int64 counts followed by one double: MetricSums's layout.
    static_assert(offsetof(MetricSums, top1) == 0 && offsetof(MetricSums, top5) == 8 &&
                  offsetof(MetricSums, nonfinite_rows) == 16 && offsetof(MetricSums, loss_sum) == 24 &&
                  sizeof(MetricSums) == 32);
    const Shape& ls = logits.shape();
    SAFNET_CHECK(ls.size() == 2 && logits.dtype() == DType::f32(), "accumulate_metrics: logits must be (N, K) f32");
    SAFNET_CHECK(labels.numel() == ls[0] && labels.dtype() == DType::i32(), "accumulate_metrics: labels must be (",
                 ls[0], ") i32");
    SAFNET_CHECK(loss.numel() == 1 && loss.dtype() == DType::f32(), "accumulate_metrics: loss must be (1) f32");
    SAFNET_CHECK(sums.nbytes() == sizeof(MetricSums), "accumulate_metrics: sums must be ", sizeof(MetricSums),
                 " bytes, got ", sums.nbytes());
    bind();
    auto* base = sums.device_data<std::uint8_t>();
    k::accumulate_metrics(i(ls[0]), i(ls[1]), logits.device_data<float>(), labels.device_data<std::int32_t>(),
                          loss.device_data<float>(), rule == NanLogits::wrong,
                          reinterpret_cast<std::int64_t*>(base + offsetof(MetricSums, top1)),
                          reinterpret_cast<double*>(base + offsetof(MetricSums, loss_sum)), stream_);
  }

 private:
  // The normalisation table on the device, uploaded when it changes.
  const float* lut_on_device(const std::vector<float>& lut) {
    if (lut_.numel() != static_cast<std::int64_t>(lut.size()) || lut != lut_host_) {
      lut_host_ = lut;
      Tensor h({static_cast<std::int64_t>(lut.size())});
      std::memcpy(h.data<float>(), lut.data(), lut.size() * sizeof(float));
      lut_ = to_device(h);
    }
    return lut_.device_data<float>();
  }

  // The current CUDA device is per host thread, and campaign workers and the loader call from
  // threads of their own: every call that touches the device first makes this one current.
  void bind() const {
    int current = -1;
    if (cudaGetDevice(&current) != cudaSuccess || current != index_) SAFNET_CUDA_CHECK(cudaSetDevice(index_));
  }

  // Scratch of the split-K weight gradients, of backward-data's transposed filters and of batch
  // norm, shared by every node: they run one after another on stream_. Grown when a node needs
  // more; a buffer a capture may have recorded is never freed (replays still write it), and growing
  // inside a capture is an error, since the executor's first run, never recorded, has sized it.
  k::Workspace workspace(std::size_t bytes) {
    // One buffer for all nodes: lanes running side by side would share it.
    SAFNET_CHECK(lane_ == 0, "a kernel needing workspace issued on lane ", lane_);
    if (bytes <= workspace_.bytes) return workspace_;
    if (capturing_)
      fail("the CUDA kernels' workspace would grow from ", workspace_.bytes, " to ", bytes,
           " bytes inside a CUDA graph capture; run the work once uncaptured first");
    if (workspace_.ptr && !workspace_recorded_) alloc_->release(workspace_.ptr);
    workspace_ = k::Workspace{alloc_->allocate(bytes), bytes};
    workspace_recorded_ = false;
    return workspace_;
  }

  int index_;
  std::string describe_;
  cudaStream_t stream_ = nullptr;  // the current lane's
  struct Lane {
    cudaStream_t stream;
    cudaEvent_t done;  // recorded when synchronize_lanes joins it to lane 0
  };
  std::vector<Lane> lanes_;
  int lane_ = 0;
  cudaEvent_t forked_ = nullptr;
  k::CachingAllocator* alloc_ = nullptr;
  k::PinnedBuffer<std::byte> staging_;  // host side of uploads
  std::vector<float> lut_host_;         // the normalisation table last uploaded to lut_
  Tensor lut_;
  cudaEvent_t staging_free_ = nullptr;  // recorded after the upload that last read staging_
  std::vector<std::unique_ptr<k::NvtxRange>> ranges_;
  k::Workspace workspace_;           // see workspace()
  bool workspace_recorded_ = false;  // whether a capture began while workspace_ was current
  bool capturing_ = false;
  MathMode math_ = MathMode::fp32;
};

void CudaBackend::run_node(const Node& n, const std::vector<Tensor*>& in, const std::vector<Tensor*>& out) {
    bind();
  auto F = [](Tensor* t) { return t->device_data<float>(); };
  auto cF = [](const Tensor* t) { return t->device_data<float>(); };
  auto I32 = [](const Tensor* t) { return t->device_data<std::int32_t>(); };
  cudaStream_t s = stream_;
  switch (n.op) {
    case Op::conv2d:
      k::conv2d_forward(conv_geom(n, in[0]->shape(), in[1]->shape()), cF(in[0]), weight_view(n, *in[1]), F(out[0]), s,
                        math_);
      return;
    case Op::conv2d_bwd_data: {  // in: dy, w
      const ConvGeom g = conv_geom(n, out[0]->shape(), in[1]->shape());
      const k::WeightView w = weight_view(n, *in[1]);
      k::conv2d_backward_data(g, cF(in[0]), w, F(out[0]), workspace(k::conv2d_backward_data_workspace_bytes(g, w.storage)),
                              s, math_);
      return;
    }
    case Op::conv2d_bwd_weight: {  // in: x, dy, w
      const ConvGeom g = conv_geom(n, in[0]->shape(), in[2]->shape());
      k::conv2d_backward_weight(g, cF(in[0]), cF(in[1]), saf_grad(n, *in[2]), F(out[0]),
                                workspace(k::conv2d_backward_weight_plan(g, math_).workspace_bytes()), s, math_);
      return;
    }
    case Op::linear: {
      const Shape& ws = in[1]->shape();
      k::linear_forward(i(in[0]->dim(0)), i(ws[1]), i(ws[0]), cF(in[0]), weight_view(n, *in[1]),
                        in.size() > 2 ? cF(in[2]) : nullptr, F(out[0]), s, math_);
      return;
    }
    case Op::linear_bwd_data: {  // in: dy, w
      const Shape& ws = in[1]->shape();
      k::linear_backward_data(i(in[0]->dim(0)), i(ws[1]), i(ws[0]), cF(in[0]), weight_view(n, *in[1]), F(out[0]), s,
                              math_);
      return;
    }
    case Op::linear_bwd_weight: {  // in: x, dy, w
      const Shape& ws = in[2]->shape();
      const int batch = i(in[0]->dim(0)), fan_in = i(ws[1]), fan_out = i(ws[0]);
      k::linear_backward_weight(batch, fan_in, fan_out, cF(in[0]), cF(in[1]), saf_grad(n, *in[2]), F(out[0]),
                                out.size() > 1 ? F(out[1]) : nullptr,
                                workspace(k::linear_backward_weight_plan(batch, fan_in, fan_out, math_).workspace_bytes()),
                                s, math_);
      return;
    }
    case Op::batchnorm_train: {  // in: x, gamma, beta, running_mean, running_var; out: y, mean, invstd
      const BnGeom g = bn_geom(in[0]->shape());
      k::batchnorm_forward_train(g, cF(in[0]), cF(in[1]), cF(in[2]), n.attrs.eps, n.attrs.momentum, F(out[0]),
                                 F(out[1]), F(out[2]), F(in[3]), F(in[4]),
                                 workspace(k::batchnorm_plan(g).workspace_bytes()), s);
      return;
    }
    case Op::batchnorm_eval:
      k::batchnorm_forward_eval(bn_geom(in[0]->shape()), cF(in[0]), cF(in[1]), cF(in[2]), cF(in[3]), cF(in[4]),
                                n.attrs.eps, F(out[0]), s);
      return;
    case Op::batchnorm_bwd: {  // in: x, dy, gamma, mean, invstd; out: dx, dgamma, dbeta
      const BnGeom g = bn_geom(in[0]->shape());
      k::batchnorm_backward(g, cF(in[0]), cF(in[1]), cF(in[2]), cF(in[3]), cF(in[4]), F(out[0]), F(out[1]),
                            F(out[2]), workspace(k::batchnorm_plan(g).workspace_bytes()), s);
      return;
    }
    case Op::relu: k::relu_forward(in[0]->numel(), cF(in[0]), F(out[0]), s); return;
    case Op::relu_bwd: k::relu_backward(in[0]->numel(), cF(in[0]), cF(in[1]), F(out[0]), s); return;
    case Op::add: k::add_forward(in[0]->numel(), cF(in[0]), cF(in[1]), F(out[0]), s); return;
    case Op::shortcut_a: {
      const Shape& xs = in[0]->shape();
      k::shortcut_a_forward(i(xs[0]), i(xs[1]), i(xs[2]), i(xs[3]), n.attrs.stride, i(out[0]->dim(1)), cF(in[0]),
                            F(out[0]), s);
      return;
    }
    case Op::shortcut_a_bwd: {
      const Shape& xs = out[0]->shape();
      k::shortcut_a_backward(i(xs[0]), i(xs[1]), i(xs[2]), i(xs[3]), n.attrs.stride, i(in[0]->dim(1)), cF(in[0]),
                             F(out[0]), s);
      return;
    }
    case Op::global_avgpool: {
      const Shape& xs = in[0]->shape();
      k::global_avgpool_forward(i(xs[0]), i(xs[1]), i(xs[2] * xs[3]), cF(in[0]), F(out[0]), s);
      return;
    }
    case Op::global_avgpool_bwd: {
      const Shape& xs = out[0]->shape();
      k::global_avgpool_backward(i(xs[0]), i(xs[1]), i(xs[2] * xs[3]), cF(in[0]), F(out[0]), s);
      return;
    }
    case Op::maxpool:
      k::maxpool_forward(pool_geom(n, in[0]->shape()), cF(in[0]), F(out[0]), out[1]->device_data<std::int32_t>(), s);
      return;
    case Op::maxpool_bwd:
      k::maxpool_backward(pool_geom(n, out[0]->shape()), cF(in[0]), I32(in[1]), F(out[0]), s);
      return;
    case Op::reshape:
      SAFNET_CUDA_CHECK(cudaMemcpyAsync(out[0]->device_raw(), in[0]->device_raw(), in[0]->nbytes(),
                                        cudaMemcpyDeviceToDevice, s));
      return;
    case Op::softmax_ce: {  // out: loss (1), probs
      const Shape& ls = in[0]->shape();
      k::softmax_ce_forward(i(ls[0]), i(ls[1]), cF(in[0]), I32(in[1]), n.attrs.smoothing, F(out[1]), F(out[0]), s);
      return;
    }
    case Op::softmax_ce_bwd: {  // in: probs, labels
      const Shape& ls = in[0]->shape();
      k::softmax_ce_backward(i(ls[0]), i(ls[1]), cF(in[0]), I32(in[1]), n.attrs.smoothing, 1.0f, F(out[0]), s);
      return;
    }
    case Op::conv2d_bn: {  // in: x, w, gamma, beta, running_mean, running_var [, residual]
      k::ConvEpilogue e;
      e.gamma = cF(in[2]);
      e.beta = cF(in[3]);
      e.mean = cF(in[4]);
      e.var = cF(in[5]);
      e.eps = n.attrs.eps;
      e.residual = in.size() > 6 ? cF(in[6]) : nullptr;
      e.residual_first = n.attrs.residual_first;
      e.relu = n.attrs.relu;
      k::conv2d_forward_fused(conv_geom(n, in[0]->shape(), in[1]->shape()), cF(in[0]), weight_view(n, *in[1]), e,
                              F(out[0]), s, math_);
      return;
    }
  }
  fail(n.name, ": the CUDA backend has no kernel for ", op_name(n.op));
}

}  // namespace

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

std::string device_count_error() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e == cudaSuccess) return count == 0 ? "cudaGetDeviceCount: 0 devices" : "";
  (void)cudaGetLastError();
  return std::string("cudaGetDeviceCount: ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
}

std::unique_ptr<Backend> make_backend(int index) { return std::make_unique<CudaBackend>(index); }

}  // namespace safnet::cuda_backend::inline SAFNET_BUILD
