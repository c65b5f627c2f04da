// Device bit-flip kernels: count pass, prefix sum, write pass (one thread per 2^16-bit chunk with
// the shared sampler of cuda/flip_sampler.h), and a byte-owning fault application pass.
#include "cuda/kernels/flips.h"

#include "cuda/kernels/common.h"

namespace safnet::cuda::inline SAFNET_BUILD {

namespace {

constexpr int kThreads = 128;
constexpr int kScanThreads = 256;

__device__ std::int64_t chunk_len(const FlipPlan& p, std::int64_t c) {
  const std::int64_t total = p.words * p.k, base = c * kFlipChunkBits;
  return total - base < kFlipChunkBits ? total - base : kFlipChunkBits;
}

struct CountEmit {
  std::int64_t* n;
  __device__ void operator()(std::int64_t) const { ++*n; }
};

struct WriteEmit {
  const FlipPlan* p;
  std::int64_t base;  // first eligible index of the chunk
  FlipSite* sites;
  std::int64_t* at;
  std::int64_t capacity;
  __device__ void operator()(std::int64_t i) const {
    if (*at < capacity) {
      const std::int64_t e = base + i;
      sites[*at] = FlipSite{e / p->k, p->positions[e % p->k]};
    }
    ++*at;
  }
};

__device__ std::uint64_t trial_of(const FlipPlan& p) { return p.trial_at ? *p.trial_at : p.trial; }

__global__ void set_trial_kernel(std::uint64_t* at, std::uint64_t trial) { *at = trial; }

__global__ void flip_count_kernel(FlipPlan p, std::int64_t chunks, std::int64_t* counts) {
  for (std::int64_t c = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; c < chunks;
       c += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t len = chunk_len(p, c);
    std::int64_t n = 0;
    if (p.mode == FlipPlan::Mode::all)
      n = len;
    else
      sample_flip_chunk(p.seed, trial_of(p), c, len, p.t, CountEmit{&n});
    counts[c] = n;
  }
}

// In-place exclusive scan of counts[0, chunks) with the total in counts[chunks]: each thread
// scans a contiguous segment; the segment totals are scanned by thread 0 (integers, so any order
// gives the same result).
__global__ void __launch_bounds__(kScanThreads) exclusive_scan_kernel(std::int64_t chunks, std::int64_t* counts) {
  __shared__ long long seg_total[kScanThreads];
  const std::int64_t per = (chunks + blockDim.x - 1) / blockDim.x;
  const std::int64_t lo = threadIdx.x * per, hi = lo + per < chunks ? lo + per : chunks;
  long long sum = 0;
  for (std::int64_t i = lo; i < hi; ++i) sum += counts[i];
  seg_total[threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    long long run = 0;
    for (unsigned t = 0; t < blockDim.x; ++t) {
      const long long v = seg_total[t];
      seg_total[t] = run;
      run += v;
    }
    counts[chunks] = run;
  }
  __syncthreads();
  long long run = seg_total[threadIdx.x];
  for (std::int64_t i = lo; i < hi; ++i) {
    const long long v = counts[i];
    counts[i] = run;
    run += v;
  }
}

__global__ void flip_write_kernel(FlipPlan p, std::int64_t chunks, const std::int64_t* offsets, FlipSite* sites,
                                  std::int64_t capacity) {
  for (std::int64_t c = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; c < chunks;
       c += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t len = chunk_len(p, c), base = c * kFlipChunkBits;
    std::int64_t at = offsets[c];
    const WriteEmit emit{&p, base, sites, &at, capacity};
    if (p.mode == FlipPlan::Mode::all)
      for (std::int64_t i = 0; i < len; ++i) emit(i);
    else
      sample_flip_chunk(p.seed, trial_of(p), c, len, p.t, emit);
  }
}

// Sites are sorted, so the sites of one byte are adjacent: the thread of the first one applies them all.
__global__ void apply_faults_kernel(std::uint8_t* bytes, std::int64_t words, int word_bytes, const FlipSite* sites,
                                    const std::int64_t* count, std::int64_t capacity, FaultModel model) {
  const std::int64_t n = *count < capacity ? *count : capacity;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const FlipSite s = sites[i];
    if (s.word < 0 || s.word >= words || s.bit < 0 || s.bit >= 8 * word_bytes) continue;
    const std::int64_t byte = s.word * word_bytes + s.bit / 8;
    if (i > 0 && sites[i - 1].word == s.word && sites[i - 1].bit / 8 == s.bit / 8) continue;
    unsigned mask = 0;
    for (std::int64_t j = i; j < n && sites[j].word == s.word && sites[j].bit / 8 == s.bit / 8; ++j)
      if (sites[j].bit >= 0) mask |= 1u << (sites[j].bit % 8);
    const auto m = static_cast<std::uint8_t>(mask);
    switch (model) {
      case FaultModel::flip: bytes[byte] ^= m; break;
      case FaultModel::stuck0: bytes[byte] &= static_cast<std::uint8_t>(~m); break;
      case FaultModel::stuck1: bytes[byte] |= m; break;
    }
  }
}

}  // namespace

FlipPlan make_flip_plan(std::uint64_t seed, std::uint64_t trial, std::int64_t words, int word_bits,
                        std::uint64_t bit_mask, double ber, const FlipThresholds* t) {
  if (words < 0) arg_fail("cuda/kernels/flips.cu: make_flip_plan: negative word count ", words);
  if (word_bits < 1 || word_bits > 64)
    arg_fail("cuda/kernels/flips.cu: make_flip_plan: word_bits ", word_bits, " outside 1..64");
  if (!(ber >= 0 && ber <= 1)) arg_fail("cuda/kernels/flips.cu: make_flip_plan: ber ", ber, " outside [0, 1]");
  FlipPlan p;
  p.seed = seed;
  p.trial = trial;
  p.words = words;
  const std::uint64_t mask = bit_mask & (word_bits >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << word_bits) - 1);
  for (int b = 0; b < word_bits; ++b)
    if ((mask >> b) & 1) p.positions[p.k++] = static_cast<std::int8_t>(b);
  if (ber == 0 || p.k == 0 || words == 0) return p;
  // Eligible bits times the chunk stride must stay inside Philox's 64-bit offset (as on the CPU).
  if (words > (std::int64_t{1} << 58) / p.k)
    arg_fail("cuda/kernels/flips.cu: make_flip_plan: ", words, " words of ", p.k,
             " eligible bits exceed the 2^58 bits a trial can address");
  if (ber == 1) {
    p.mode = FlipPlan::Mode::all;
    return p;
  }
  if (t == nullptr) arg_fail("cuda/kernels/flips.cu: make_flip_plan: no thresholds for ber ", ber);
  p.mode = FlipPlan::Mode::sample;
  p.t = *t;
  return p;
}

std::int64_t flip_chunks(const FlipPlan& plan) {
  if (plan.mode == FlipPlan::Mode::none) return 0;
  return (plan.words * plan.k + kFlipChunkBits - 1) / kFlipChunkBits;
}

void flip_count(const FlipPlan& plan, std::int64_t* counts, cudaStream_t s) {
  const std::int64_t chunks = flip_chunks(plan);
  if (chunks == 0) {
    SAFNET_CUDA_CHECK(cudaMemsetAsync(counts, 0, sizeof(std::int64_t), s));
    return;
  }
  SAFNET_LAUNCH(flip_count_kernel, grid_for(chunks, kThreads), kThreads, 0, s, plan, chunks, counts);
  SAFNET_LAUNCH(exclusive_scan_kernel, 1, kScanThreads, 0, s, chunks, counts);
}

void flip_write(const FlipPlan& plan, const std::int64_t* counts, FlipSite* sites, std::int64_t capacity,
                cudaStream_t s) {
  if (capacity < 0) arg_fail("cuda/kernels/flips.cu: flip_write: negative capacity ", capacity);
  const std::int64_t chunks = flip_chunks(plan);
  if (chunks == 0 || capacity == 0) return;
  SAFNET_LAUNCH(flip_write_kernel, grid_for(chunks, kThreads), kThreads, 0, s, plan, chunks, counts, sites,
                capacity);
}

void set_trial(std::uint64_t* at, std::uint64_t trial, cudaStream_t s) {
  SAFNET_LAUNCH(set_trial_kernel, 1, 1, 0, s, at, trial);
}

void apply_faults(std::uint8_t* bytes, std::int64_t words, int word_bytes, const FlipSite* sites,
                  const std::int64_t* count, std::int64_t capacity, FaultModel model, cudaStream_t s) {
  if (word_bytes < 1 || word_bytes > 8)
    arg_fail("cuda/kernels/flips.cu: apply_faults: word size ", word_bytes, " bytes outside 1..8");
  if (words < 0 || capacity < 0)
    arg_fail("cuda/kernels/flips.cu: apply_faults: negative words ", words, " or capacity ", capacity);
  const int m = static_cast<int>(model);
  if (m < 0 || m > static_cast<int>(FaultModel::stuck1))
    arg_fail("cuda/kernels/flips.cu: apply_faults: unknown fault model ", m, " (valid: flip stuck0 stuck1)");
  if (capacity == 0 || words == 0) return;
  SAFNET_LAUNCH(apply_faults_kernel, grid_for(capacity, kThreads), kThreads, 0, s, bytes, words, word_bytes, sites,
                count, capacity, model);
}

}  // namespace safnet::cuda
