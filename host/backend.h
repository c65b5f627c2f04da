// A backend runs graph nodes and owns its device's memory: the CPU (host/cpu) or CUDA
// (host/cuda, on a GPU or on the simulator). Executors and optimizers talk only to this interface.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cuda/math_mode.h"
#include "host/check.h"
#include "host/faults/flips.h"
#include "host/graph.h"
#include "host/tensor.h"

namespace safnet {

// How top-1 and top-5 rank a logit that is NaN.
enum class NanLogits : std::uint8_t {
  as_torch,  // above every number, as torch.argmax/topk do: a row of NaNs predicts class 0
  wrong,     // a row whose label logit is NaN is never correct
};

// "torch" or "wrong", as --nan-logits takes them; the parser throws listing both.
const char* nan_logits_name(NanLogits rule);
NanLogits parse_nan_logits(const std::string& name);

// Per-split sums of an evaluation, accumulated batch by batch where the model ran.
struct MetricSums {
  std::int64_t top1 = 0, top5 = 0;   // correct rows
  std::int64_t nonfinite_rows = 0;   // rows holding a NaN or infinite logit
  double loss_sum = 0;               // sum over batches of mean loss * rows
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  // One line for logs: "cpu (2 threads)", "NVIDIA H100 ..., sm_90", "CUDA simulator".
  virtual std::string describe() const = 0;

  // Zero-filled storage on this backend's device.
  virtual Tensor zeros(Shape shape, DType dtype) = 0;
  // Copies between tensors of equal size; either side may live on the host or on this device. A
  // copy to the host returns when the data is there.
  virtual void copy(const Tensor& src, Tensor& dst) = 0;
  // Waits for all work issued so far (a no-op on the CPU).
  virtual void synchronize() = 0;

  virtual void run_node(const Node& node, const std::vector<Tensor*>& in, const std::vector<Tensor*>& out) = 0;
  // Named phases and layers show up in profilers (NVTX ranges on CUDA).
  virtual void push_range(const std::string& name) {}
  virtual void pop_range() {}

  // Device work recorded once and re-issued without host-side dispatch (a CUDA graph).
  class Recording {
   public:
    virtual ~Recording() = default;
    virtual void replay() = 0;
  };
  // Records the device work `work` issues (which must not allocate, copy to or from the host, or
  // synchronise); null where the backend cannot record (the CPU).
  virtual std::unique_ptr<Recording> record(const std::function<void()>& work) { return nullptr; }

  // A training batch's augmentation and normalisation on the device: image i of `pixels` (N, C,
  // H, W) u8 on the host is shifted by (dy, dx) with zero fill, mirrored when flip, and mapped
  // through lut (C, 256) into `out` (N, C, H, W) f32 on this device; bit for bit what the
  // loader does on the host. Backends without it (the CPU) leave it to the loader.
  struct ImageDraw {
    int dy = 0, dx = 0, flip = 0;
  };
  virtual void augment_batch(const Tensor& pixels, const std::vector<ImageDraw>& draws, const std::vector<float>& lut,
                             Tensor& out) {
    fail(device().str(), ": no device augmentation");
  }
  // augment_batch over a training set held on this device: batch image i is image index[i] of
  // `set` (M, C, H, W) u8, drawn with draws[i] (dy, dx, flip: 3 i32), and its label
  // set_labels[index[i]] goes to out_labels (N) i32; index (N) and draws (N * 3) are i32 on this
  // device. Nothing crosses the bus once the table `lut` is there.
  virtual void augment_gather(const Tensor& set, const Tensor& set_labels, const Tensor& index, const Tensor& draws,
                              const std::vector<float>& lut, Tensor& out, Tensor& out_labels) {
    fail(device().str(), ": no device augmentation");
  }

  // Whether several host threads may run work here side by side, each with its own executor.
  virtual bool parallel_callers() const { return false; }
  // Whether augment_batch runs here.
  virtual bool augments_on_device() const { return false; }
  // How conv2d and linear forwards multiply from now on (cuda/math_mode.h). Only the CUDA backend
  // has tensor-core modes; elsewhere anything but fp32 is refused, naming the device.
  virtual void set_math_mode(MathMode mode) {
    if (mode != MathMode::fp32)
      fail(device().str(), ": --math ", math_mode_name(mode),
           " runs on tensor cores, which only the CUDA backend has (a GPU, or --device sim); this device computes in fp32");
  }
  virtual MathMode math_mode() const { return MathMode::fp32; }

  // Whether run_node takes Op::conv2d_bn (the fused eval-mode epilogue, host/fusion.h).
  virtual bool fuses_conv_epilogues() const { return false; }

  // out (f32, same element count) = the values of `stored` (f32, f16, bf16 or fixed words), on this
  // device: how fault targets that no weight view reads (biases, batch norm) are decoded.
  virtual void dequantize(const Tensor& stored, Tensor& out) = 0;

  // High-water mark of device memory in use (0 on the CPU).
  virtual std::size_t peak_bytes() const { return 0; }

  // Fused optimizer updates of one parameter in place (torch.optim semantics, see host/optim.h).
  virtual void sgd_update(Tensor& w, const Tensor& g, Tensor& buf, float lr, float momentum, bool nesterov,
                          float weight_decay) = 0;
  virtual void adamw_update(Tensor& w, const Tensor& g, Tensor& m, Tensor& v, float lr, float beta1, float beta2,
                            float eps, float weight_decay, std::int64_t step) = 0;

  // Adds one batch to `sums`, a MetricSums held in a u8 tensor of sizeof(MetricSums) bytes on
  // this device: the top-1/top-5 hits of logits (N, K) f32 against labels (N) i32 under `rule`,
  // the rows with a non-finite logit, and loss (1) f32 times N. Nothing crosses to the host.
  virtual void accumulate_metrics(const Tensor& logits, const Tensor& labels, const Tensor& loss, NanLogits rule,
                                  Tensor& sums) = 0;

  // One fault trial in device memory: samples the flip sites of (seed, trial, spec) on the device,
  // exactly the sites sample_flips() gives on the host, applies them to `words` (spec.words
  // little-endian words of spec.word_bits bits) and returns them, sorted by (word, bit).
  std::vector<FlipSite> inject_faults(Tensor& words, std::uint64_t seed, std::uint64_t trial, const FlipSpec& spec,
                                      FaultModel model) {
    const int word_bytes = (spec.word_bits + 7) / 8;
    SAFNET_CHECK(static_cast<std::size_t>(spec.words) * static_cast<std::size_t>(word_bytes) <= words.nbytes(),
                 "fault injection into ", spec.words, " words of ", word_bytes, " bytes over ", words.nbytes());
    return do_inject_faults(words, seed, trial, spec, model);
  }
  // inject_faults for a caller that sampled the sites itself on the host (`expected` of them): the
  // device samples and applies its own, and nothing comes back (no copy to the host, no
  // synchronisation), so a trial costs the bus nothing. Nothing checks here that the two samplers
  // agree; inject_faults, which returns the device's sites, is what tests and
  // `faults --verify-sampler` compare.
  void inject_sampled_faults(Tensor& words, std::uint64_t seed, std::uint64_t trial, const FlipSpec& spec,
                             FaultModel model, std::int64_t expected) {
    const int word_bytes = (spec.word_bits + 7) / 8;
    SAFNET_CHECK(static_cast<std::size_t>(spec.words) * static_cast<std::size_t>(word_bytes) <= words.nbytes(),
                 "fault injection into ", spec.words, " words of ", word_bytes, " bytes over ", words.nbytes());
    SAFNET_CHECK(expected >= 0, "fault injection expecting ", expected, " sites");
    do_inject_sampled_faults(words, seed, trial, spec, model, expected);
  }

  // Trials in flight (app/trials_in_flight.h): queues of device work that run side by side (CUDA
  // streams). Every call's work goes to lane 0 unless use_lane(i) sent later calls' work to lane
  // i; a recording made on a lane replays there. Allocation and uploads belong on lane 0. One lane
  // where the backend has a single queue (the CPU).
  virtual int lanes() const { return 1; }
  virtual void add_lanes(int n) { SAFNET_CHECK(n <= 1, device().str(), " has one queue of work, not ", n); }
  virtual void use_lane(int lane) { SAFNET_CHECK(lane == 0, device().str(), " has no lane ", lane); }
  // The later work of every lane waits for what lane 0 issued so far; the host does not wait.
  virtual void fork_lanes() {}
  // Waits on the host for all the work of every lane: one synchronisation.
  virtual void synchronize_lanes() { synchronize(); }
  // Host memory a recording may copy into (pinned on a GPU).
  virtual Tensor host_buffer(Shape shape, DType dtype) { return Tensor(std::move(shape), dtype); }
  // Queues a copy of `src` (on this device) into `dst` (from host_buffer) without waiting: it is
  // there once synchronize() or synchronize_lanes() returns.
  virtual void copy_to_host_async(const Tensor& src, Tensor& dst) { copy(src, dst); }
  // Device memory free now, in bytes (0 on the CPU).
  virtual std::size_t free_bytes() const { return 0; }

  // A fault trial a recording can hold: restores nothing, allocates nothing and never waits.
  // Samples the sites of (seed, *trial, spec) on the device, where `trial` is a u64 on this device
  // read when the work runs (write it with set_trial before each replay), and applies at most
  // `capacity` of them to `words` (the caller sizes it from the host's sample); `scratch` holds
  // fault_scratch_bytes(spec, capacity) bytes on this device.
  virtual std::size_t fault_scratch_bytes(const FlipSpec& spec, std::int64_t capacity) const {
    fail(device().str(), ": no recorded fault injection");
  }
  virtual void inject_recorded_faults(Tensor& words, std::uint64_t seed, const Tensor& trial, const FlipSpec& spec,
                                      FaultModel model, std::int64_t capacity, Tensor& scratch) {
    fail(device().str(), ": no recorded fault injection");
  }
  // Queues *trial = index (trial: a u64 on this device) on the current lane; the index travels in
  // a launch's arguments, so nothing is copied.
  virtual void set_trial(Tensor& trial, std::uint64_t index) { fail(device().str(), ": no recorded fault injection"); }

  // `t` where this backend computes: itself when it lives there already, else copied into `slot`
  // (allocated on first use, reused after) so a recorded CUDA graph keeps reading one address.
  const Tensor& stage(const Tensor& t, Tensor& slot);

  // A host copy of `t` (itself when it already lives on the host).
  Tensor to_host(const Tensor& t);
  // A copy of host tensor `t` on this device (itself when this is the CPU).
  Tensor to_device(const Tensor& t);

 protected:
  // inject_faults once `words` is known to hold spec.words words.
  virtual std::vector<FlipSite> do_inject_faults(Tensor& words, std::uint64_t seed, std::uint64_t trial,
                                                 const FlipSpec& spec, FaultModel model) = 0;
  // inject_sampled_faults once `words` is checked; by default inject_faults, its sites dropped.
  virtual void do_inject_sampled_faults(Tensor& words, std::uint64_t seed, std::uint64_t trial, const FlipSpec& spec,
                                        FaultModel model, std::int64_t expected) {
    do_inject_faults(words, seed, trial, spec, model);
  }
};

// The process's CPU backend.
Backend& cpu_backend();

}  // namespace safnet
