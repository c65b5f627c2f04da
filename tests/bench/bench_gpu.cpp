// GPU benchmark: our conv2d (forward, backward-data, backward-weight) and linear kernels on every
// distinct ResNet-20 (CIFAR) and ResNet-18 (ImageNet) layer shape, against cuDNN (FP32 FMA math and
// TF32 tensor-op math) and cuBLAS (FP32 and TF32) on the same card. Our kernels read the raw
// weights and apply the SAF as they load them; the libraries are fed tau(W) computed beforehand.
//
// Each timing: warm-up launches, then `--iters` launches each between two CUDA events, inputs
// rotating over several random sets larger than L2, median reported. Time in ms, TFLOP/s and the
// library's time divided by ours (> 1: ours is faster). cuDNN and cuBLAS are opened at run time
// (dlopen libcudnn.so.9, libcublas.so.13), so the binary needs neither to start; where one is
// missing its columns say so. A run compares each result with cuDNN's / cuBLAS's FP32 result.
//
//   bench_gpu [--models resnet20,resnet18] [--iters 50] [--warmup 5] [--sets 4] [--saf tanh]
//             [--math fp32] [--batch20 128] [--batch18 64] [--no-baselines] [--list]
// --math: our forward, backward-data and weight gradients in that mode (cuda/math_mode.h);
// --no-baselines: ours only (for Nsight Compute); --list: the shapes, no GPU needed.
// Run by tools/gpu_check.sh; never a test. Exit 0 after the table, 2 on bad arguments, 3 with no GPU.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "cuda/cuda_check.h"
#include "cuda/kernels/conv2d.h"
#include "cuda/kernels/linear.h"
#include "cuda/math_mode.h"
#include "cuda/saf.h"

namespace {

using safnet::cuda::ConvGeom;
using safnet::Saf;
using safnet::MathMode;
using safnet::math_mode_from_name;
using safnet::math_mode_name;
using safnet::cuda::SafGrad;
using safnet::SafKind;
using safnet::cuda::WeightView;

struct Options {
  std::vector<std::string> models{"resnet20", "resnet18"};
  int iters = 50, warmup = 5, sets = 4, batch20 = 128, batch18 = 64;
  std::string saf = "tanh";
  MathMode math = MathMode::fp32;  // ours: every conv/linear GEMM
  bool list = false, baselines = true;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "bench_gpu: %s\nusage: bench_gpu [--models resnet20,resnet18] [--iters N] [--warmup N] [--sets N] "
               "[--saf none|tanh|softsign|arctan] [--math fp32|3xtf32|tf32|bf16] [--batch20 N] [--batch18 N] "
               "[--no-baselines] [--list]\n",
               why.c_str());
  std::exit(2);
}

int positive(const std::string& flag, const char* v) {
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (end == v || *end != '\0' || x < 1 || x > 1000000) usage(flag + " wants a positive integer, got '" + v + "'");
  return static_cast<int>(x);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--models") {
      o.models.clear();
      std::stringstream ss(value());
      for (std::string m; std::getline(ss, m, ',');) {
        if (m != "resnet20" && m != "resnet18") usage("unknown model '" + m + "' (resnet20, resnet18)");
        o.models.push_back(m);
      }
    } else if (a == "--iters") o.iters = positive(a, value());
    else if (a == "--warmup") o.warmup = positive(a, value());
    else if (a == "--sets") o.sets = positive(a, value());
    else if (a == "--batch20") o.batch20 = positive(a, value());
    else if (a == "--batch18") o.batch18 = positive(a, value());
    else if (a == "--saf") {
      o.saf = value();
      if (o.saf != "none" && o.saf != "tanh" && o.saf != "softsign" && o.saf != "arctan")
        usage("unknown SAF '" + o.saf + "' (none, tanh, softsign, arctan)");
    } else if (a == "--math") {
      const char* m = value();
      const std::optional<MathMode> mode = math_mode_from_name(m);
      if (!mode) usage(std::string("unknown math mode '") + m + "' (fp32, 3xtf32, tf32, bf16)");
      o.math = *mode;
    } else if (a == "--list") o.list = true;
    else if (a == "--no-baselines") o.baselines = false;
    else if (a == "--help" || a == "-h") usage("help");
    else usage("unknown argument '" + a + "'");
  }
  return o;
}

Saf saf_of(const std::string& s) {
  Saf r;
  r.kind = s == "tanh" ? SafKind::tanh : s == "softsign" ? SafKind::softsign : s == "arctan" ? SafKind::arctan
                                                                                                 : SafKind::none;
  return r;
}

float host_saf(const Saf& s, float x) { return safnet::saf_value(s, x); }

struct ConvShape {
  std::string model, name;
  ConvGeom g;
};
struct LinearShape {
  std::string model, name;
  int n, in, out;
};

// Distinct layer shapes, in network order.
void shapes(const Options& o, std::vector<ConvShape>& convs, std::vector<LinearShape>& linears) {
  std::set<std::tuple<int, int, int, int, int, int, int, int>> seen;
  auto add = [&](const std::string& m, const std::string& name, ConvGeom g) {
    if (seen.insert({g.n, g.c, g.h, g.k, g.r, g.stride, g.pad, g.w}).second) convs.push_back({m, name, g});
  };
  for (const auto& m : o.models) {
    if (m == "resnet20") {
      const int n = o.batch20;
      add(m, "conv1", {n, 3, 32, 32, 16, 3, 3, 1, 1});
      add(m, "layer1 3x3", {n, 16, 32, 32, 16, 3, 3, 1, 1});
      add(m, "layer2.0 3x3 s2", {n, 16, 32, 32, 32, 3, 3, 2, 1});
      add(m, "layer2 3x3", {n, 32, 16, 16, 32, 3, 3, 1, 1});
      add(m, "layer3.0 3x3 s2", {n, 32, 16, 16, 64, 3, 3, 2, 1});
      add(m, "layer3 3x3", {n, 64, 8, 8, 64, 3, 3, 1, 1});
      linears.push_back({m, "fc", n, 64, 10});
    } else {
      const int n = o.batch18;
      add(m, "conv1 7x7 s2", {n, 3, 224, 224, 64, 7, 7, 2, 3});
      add(m, "layer1 3x3", {n, 64, 56, 56, 64, 3, 3, 1, 1});
      int c = 64, hw = 56;
      for (int stage = 2; stage <= 4; ++stage) {
        const int k = c * 2, oh = hw / 2;
        const std::string l = "layer" + std::to_string(stage);
        add(m, l + ".0 3x3 s2", {n, c, hw, hw, k, 3, 3, 2, 1});
        add(m, l + ".0 downsample 1x1 s2", {n, c, hw, hw, k, 1, 1, 2, 0});
        add(m, l + " 3x3", {n, k, oh, oh, k, 3, 3, 1, 1});
        c = k;
        hw = oh;
      }
      linears.push_back({m, "fc", n, 512, 1000});
    }
  }
}

// ---- cuDNN and cuBLAS, opened at run time -------------------------------------------------------

#define SAFNET_STR2(x) #x
#define SAFNET_STR(x) SAFNET_STR2(x)  // expands cublas_v2.h's macros: cublasSgemm -> "cublasSgemm_v2"
// Member f_ points at f in the library.
#define SAFNET_SYM(lib, f) decltype(&::f) f##_ = reinterpret_cast<decltype(&::f)>(lib.sym(SAFNET_STR(f)))

struct Lib {
  void* handle = nullptr;
  std::string error;
  bool missing_symbol = false;
  explicit Lib(const char* name) {
    handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!handle) error = dlerror();
  }
  void* sym(const char* name) {
    if (!handle) return nullptr;
    void* p = dlsym(handle, name);
    if (!p) {
      missing_symbol = true;
      error = std::string("no symbol ") + name;
    }
    return p;
  }
};

struct Cudnn {
  Lib lib{"libcudnn.so.9"};
  SAFNET_SYM(lib, cudnnGetVersion);
  SAFNET_SYM(lib, cudnnGetErrorString);
  SAFNET_SYM(lib, cudnnCreate);
  SAFNET_SYM(lib, cudnnSetStream);
  SAFNET_SYM(lib, cudnnCreateTensorDescriptor);
  SAFNET_SYM(lib, cudnnSetTensor4dDescriptor);
  SAFNET_SYM(lib, cudnnDestroyTensorDescriptor);
  SAFNET_SYM(lib, cudnnCreateFilterDescriptor);
  SAFNET_SYM(lib, cudnnSetFilter4dDescriptor);
  SAFNET_SYM(lib, cudnnDestroyFilterDescriptor);
  SAFNET_SYM(lib, cudnnCreateConvolutionDescriptor);
  SAFNET_SYM(lib, cudnnSetConvolution2dDescriptor);
  SAFNET_SYM(lib, cudnnSetConvolutionMathType);
  SAFNET_SYM(lib, cudnnDestroyConvolutionDescriptor);
  SAFNET_SYM(lib, cudnnFindConvolutionForwardAlgorithm);
  SAFNET_SYM(lib, cudnnFindConvolutionBackwardDataAlgorithm);
  SAFNET_SYM(lib, cudnnFindConvolutionBackwardFilterAlgorithm);
  SAFNET_SYM(lib, cudnnConvolutionForward);
  SAFNET_SYM(lib, cudnnConvolutionBackwardData);
  SAFNET_SYM(lib, cudnnConvolutionBackwardFilter);
  cudnnHandle_t h = nullptr;
  bool ok() const { return lib.handle && !lib.missing_symbol; }
};

struct Cublas {
  Lib lib{"libcublas.so.13"};
  SAFNET_SYM(lib, cublasCreate);
  SAFNET_SYM(lib, cublasSetStream);
  SAFNET_SYM(lib, cublasSetMathMode);
  SAFNET_SYM(lib, cublasSgemm);
  SAFNET_SYM(lib, cublasGetStatusString);
  cublasHandle_t h = nullptr;
  bool ok() const { return lib.handle && !lib.missing_symbol; }
};

#define CUDNN_CHECK(dnn, call)                                                                        \
  do {                                                                                                \
    const cudnnStatus_t st_ = (call);                                                                 \
    if (st_ != CUDNN_STATUS_SUCCESS) {                                                                \
      std::fprintf(stderr, "bench_gpu: %s:%d: %s failed: %s\n", __FILE__, __LINE__, #call,            \
                   (dnn).cudnnGetErrorString_(st_));                                                   \
      std::exit(1);                                                                                   \
    }                                                                                                 \
  } while (0)
#define CUBLAS_CHECK(blas, call)                                                                      \
  do {                                                                                                \
    const cublasStatus_t st_ = (call);                                                                \
    if (st_ != CUBLAS_STATUS_SUCCESS) {                                                               \
      std::fprintf(stderr, "bench_gpu: %s:%d: %s failed: %s\n", __FILE__, __LINE__, #call,            \
                   (blas).cublasGetStatusString_(st_));                                                \
      std::exit(1);                                                                                   \
    }                                                                                                 \
  } while (0)

// ---- buffers and timing ------------------------------------------------------------------------

struct DeviceBuffer {
  float* p = nullptr;
  std::size_t n = 0;
  explicit DeviceBuffer(std::size_t count) : n(count) { SAFNET_CUDA_CHECK(cudaMalloc(&p, sizeof(float) * std::max<std::size_t>(n, 1))); }
  ~DeviceBuffer() { cudaFree(p); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

std::vector<float> random_host(std::size_t n, std::mt19937& rng, float scale) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// `sets` copies of one operand, each random, so consecutive launches do not hit in L2.
struct Rotating {
  std::vector<std::unique_ptr<DeviceBuffer>> bufs;
  Rotating(std::size_t n, int sets, std::mt19937& rng, float scale, const Saf* tau = nullptr,
           Rotating* tau_out = nullptr) {
    for (int s = 0; s < sets; ++s) {
      std::vector<float> h = random_host(n, rng, scale);
      bufs.push_back(std::make_unique<DeviceBuffer>(n));
      SAFNET_CUDA_CHECK(cudaMemcpy(bufs.back()->p, h.data(), sizeof(float) * n, cudaMemcpyHostToDevice));
      if (tau_out) {
        for (auto& x : h) x = host_saf(*tau, x);
        tau_out->bufs.push_back(std::make_unique<DeviceBuffer>(n));
        SAFNET_CUDA_CHECK(cudaMemcpy(tau_out->bufs.back()->p, h.data(), sizeof(float) * n, cudaMemcpyHostToDevice));
      }
    }
  }
  Rotating() = default;
  float* at(int i) const { return bufs[static_cast<std::size_t>(i) % bufs.size()]->p; }
};

struct Timer {
  const Options& o;
  cudaStream_t s;
  // Median milliseconds of launch(i) over o.iters launches after o.warmup.
  double median_ms(const std::function<void(int)>& launch) const {
    for (int i = 0; i < o.warmup; ++i) launch(i);
    std::vector<cudaEvent_t> ev(2 * static_cast<std::size_t>(o.iters));
    for (auto& e : ev) SAFNET_CUDA_CHECK(cudaEventCreate(&e));
    for (int i = 0; i < o.iters; ++i) {
      SAFNET_CUDA_CHECK(cudaEventRecord(ev[2 * i], s));
      launch(o.warmup + i);
      SAFNET_CUDA_CHECK(cudaEventRecord(ev[2 * i + 1], s));
    }
    SAFNET_CUDA_CHECK(cudaStreamSynchronize(s));
    std::vector<double> ms(o.iters);
    for (int i = 0; i < o.iters; ++i) {
      float t = 0;
      SAFNET_CUDA_CHECK(cudaEventElapsedTime(&t, ev[2 * i], ev[2 * i + 1]));
      ms[i] = t;
    }
    for (auto& e : ev) SAFNET_CUDA_CHECK(cudaEventDestroy(e));
    std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
    return ms[ms.size() / 2];
  }
};

// max |a - b| / max |b| over two device buffers.
double rel_diff(const float* a, const float* b, std::size_t n) {
  std::vector<float> ha(n), hb(n);
  SAFNET_CUDA_CHECK(cudaMemcpy(ha.data(), a, sizeof(float) * n, cudaMemcpyDeviceToHost));
  SAFNET_CUDA_CHECK(cudaMemcpy(hb.data(), b, sizeof(float) * n, cudaMemcpyDeviceToHost));
  double num = 0, den = 0;
  for (std::size_t i = 0; i < n; ++i) {
    num = std::max(num, std::fabs(static_cast<double>(ha[i]) - hb[i]));
    den = std::max(den, std::fabs(static_cast<double>(hb[i])));
  }
  return den > 0 ? num / den : num;
}

void row(const std::string& model, const std::string& layer, const std::string& op, const std::string& shape,
         double flop, double ours, double lib32, double lib_tf32, double diff, const char* lib) {
  auto col = [&](double t) {
    char b[64];
    if (t <= 0) std::snprintf(b, sizeof b, "| n/a | n/a ");
    else std::snprintf(b, sizeof b, "| %.4f | %.2f ", t, t / ours);
    return std::string(b);
  };
  std::printf("| %s | %s | %s | %s | %.4f | %.2f %s%s| %s %.1e |\n", model.c_str(), layer.c_str(), op.c_str(),
              shape.c_str(), ours, flop / (ours * 1e-3) / 1e12, col(lib32).c_str(), col(lib_tf32).c_str(), lib,
              diff);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  std::vector<ConvShape> convs;
  std::vector<LinearShape> linears;
  shapes(o, convs, linears);
  if (o.list) {
    for (const auto& c : convs)
      std::printf("conv %s %s N=%d C=%d H=%d W=%d K=%d R=%d S=%d stride=%d pad=%d\n", c.model.c_str(), c.name.c_str(),
                  c.g.n, c.g.c, c.g.h, c.g.w, c.g.k, c.g.r, c.g.s, c.g.stride, c.g.pad);
    for (const auto& l : linears)
      std::printf("linear %s %s N=%d IN=%d OUT=%d\n", l.model.c_str(), l.name.c_str(), l.n, l.in, l.out);
    return 0;
  }
  int devices = 0;
  if (const cudaError_t e = cudaGetDeviceCount(&devices); e != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "bench_gpu: no GPU here (cudaGetDeviceCount: %s)\n",
                 e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    return 3;
  }
  cudaDeviceProp prop{};
  SAFNET_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  cudaStream_t stream;
  SAFNET_CUDA_CHECK(cudaStreamCreate(&stream));
  const Timer timer{o, stream};
  const Saf tau = saf_of(o.saf);

  Cudnn dnn;
  Cublas blas;
  if (!o.baselines) {  // opened, left unused
    dnn.lib.handle = blas.lib.handle = nullptr;
    dnn.lib.error = blas.lib.error = "--no-baselines";
  }
  if (dnn.ok()) {
    CUDNN_CHECK(dnn, dnn.cudnnCreate_(&dnn.h));
    CUDNN_CHECK(dnn, dnn.cudnnSetStream_(dnn.h, stream));
  }
  if (blas.ok()) {
    CUBLAS_CHECK(blas, blas.cublasCreate_(&blas.h));
    CUBLAS_CHECK(blas, blas.cublasSetStream_(blas.h, stream));
  }
  std::printf("bench_gpu: %s (sm_%d%d, %d SMs), SAF %s and math %s on our side, tau(W) precomputed for the "
              "libraries; %d warm-up + median of %d, %d rotating input sets\n",
              prop.name, prop.major, prop.minor, prop.multiProcessorCount, o.saf.c_str(), math_mode_name(o.math),
              o.warmup, o.iters, o.sets);
  std::printf("cuDNN: %s; cuBLAS: %s\n",
              dnn.ok() ? ("libcudnn.so.9 version " + std::to_string(dnn.cudnnGetVersion_())).c_str()
                       : ("not available (" + dnn.lib.error + ")").c_str(),
              blas.ok() ? "libcublas.so.13" : ("not available (" + blas.lib.error + ")").c_str());
  std::printf("\nratio = library time / our time (> 1: ours faster); diff = max|ours - library FP32| / max|library FP32|\n\n");
  std::printf("| model | layer | op | shape | ours ms | ours TFLOP/s | FP32 ms | ratio | TF32 ms | ratio | diff |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");

  std::mt19937 rng(1);
  for (const auto& cs : convs) {
    const ConvGeom& g = cs.g;
    const int oh = g.oh(), ow = g.ow();
    const std::size_t nx = std::size_t(g.n) * g.c * g.h * g.w, ny = std::size_t(g.n) * g.k * oh * ow,
                      nw = std::size_t(g.k) * g.c * g.r * g.s;
    const double flop = 2.0 * g.n * g.k * oh * ow * double(g.c) * g.r * g.s;
    Rotating x(nx, o.sets, rng, 1.0f), dy(ny, o.sets, rng, 1.0f), tw;
    Rotating w(nw, o.sets, rng, std::sqrt(2.0f / (g.c * g.r * g.s)), &tau, &tw);
    DeviceBuffer y(ny), dx(nx), dw(nw), ly(ny), ldx(nx), ldw(nw);
    auto view = [&](int i) { return WeightView{w.at(i), {}, tau}; };
    const double t_f = timer.median_ms([&](int i) { safnet::cuda::conv2d_forward(g, x.at(i), view(i), y.p, stream, o.math); });
    // Workspaces are allocated once, as the backend does, so no timed launch allocates.
    const std::size_t wt_bytes = safnet::cuda::conv2d_backward_data_workspace_bytes(g, {});
    DeviceBuffer wt(wt_bytes / sizeof(float));
    const double t_d = timer.median_ms([&](int i) {
      safnet::cuda::conv2d_backward_data(g, dy.at(i), view(i), dx.p, {wt.p, wt_bytes}, stream, o.math);
    });
    const std::size_t split_bytes = safnet::cuda::conv2d_backward_weight_plan(g, o.math).workspace_bytes();
    DeviceBuffer split(split_bytes / sizeof(float));
    const double t_w = timer.median_ms([&](int i) {
      safnet::cuda::conv2d_backward_weight(g, x.at(i), dy.at(i), SafGrad{nullptr, tau}, dw.p, {split.p, split_bytes},
                                           stream, o.math);
    });
    // Ours and the library's last launches used the same input set: their results are compared.
    double lf[2] = {0, 0}, ld[2] = {0, 0}, lw[2] = {0, 0}, df = -1, dd = -1, dwd = -1;
    if (dnn.ok()) {
      cudnnTensorDescriptor_t xd, yd;
      cudnnFilterDescriptor_t wd;
      cudnnConvolutionDescriptor_t cd;
      CUDNN_CHECK(dnn, dnn.cudnnCreateTensorDescriptor_(&xd));
      CUDNN_CHECK(dnn, dnn.cudnnCreateTensorDescriptor_(&yd));
      CUDNN_CHECK(dnn, dnn.cudnnCreateFilterDescriptor_(&wd));
      CUDNN_CHECK(dnn, dnn.cudnnCreateConvolutionDescriptor_(&cd));
      CUDNN_CHECK(dnn, dnn.cudnnSetTensor4dDescriptor_(xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, g.n, g.c, g.h, g.w));
      CUDNN_CHECK(dnn, dnn.cudnnSetTensor4dDescriptor_(yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, g.n, g.k, oh, ow));
      CUDNN_CHECK(dnn, dnn.cudnnSetFilter4dDescriptor_(wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, g.k, g.c, g.r, g.s));
      CUDNN_CHECK(dnn, dnn.cudnnSetConvolution2dDescriptor_(cd, g.pad, g.pad, g.stride, g.stride, 1, 1,
                                                           CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
      const float one = 1.0f, zero = 0.0f;
      for (int m = 0; m < 2; ++m) {  // 0: FP32 (FMA only), 1: TF32 tensor cores allowed
        CUDNN_CHECK(dnn, dnn.cudnnSetConvolutionMathType_(cd, m == 0 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH));
        int got = 0;
        cudnnConvolutionFwdAlgoPerf_t pf;
        cudnnConvolutionBwdDataAlgoPerf_t pd;
        cudnnConvolutionBwdFilterAlgoPerf_t pw;
        CUDNN_CHECK(dnn, dnn.cudnnFindConvolutionForwardAlgorithm_(dnn.h, xd, wd, cd, yd, 1, &got, &pf));
        CUDNN_CHECK(dnn, dnn.cudnnFindConvolutionBackwardDataAlgorithm_(dnn.h, wd, yd, cd, xd, 1, &got, &pd));
        CUDNN_CHECK(dnn, dnn.cudnnFindConvolutionBackwardFilterAlgorithm_(dnn.h, xd, yd, cd, wd, 1, &got, &pw));
        const std::size_t ws_bytes = std::max({pf.memory, pd.memory, pw.memory});
        void* ws = nullptr;
        if (ws_bytes) SAFNET_CUDA_CHECK(cudaMalloc(&ws, ws_bytes));
        lf[m] = timer.median_ms([&](int i) {
          CUDNN_CHECK(dnn, dnn.cudnnConvolutionForward_(dnn.h, &one, xd, x.at(i), wd, tw.at(i), cd, pf.algo, ws,
                                                       ws_bytes, &zero, yd, ly.p));
        });
        if (m == 0) df = rel_diff(y.p, ly.p, ny);
        ld[m] = timer.median_ms([&](int i) {
          CUDNN_CHECK(dnn, dnn.cudnnConvolutionBackwardData_(dnn.h, &one, wd, tw.at(i), yd, dy.at(i), cd, pd.algo, ws,
                                                            ws_bytes, &zero, xd, ldx.p));
        });
        if (m == 0) dd = rel_diff(dx.p, ldx.p, nx);
        lw[m] = timer.median_ms([&](int i) {
          CUDNN_CHECK(dnn, dnn.cudnnConvolutionBackwardFilter_(dnn.h, &one, xd, x.at(i), yd, dy.at(i), cd, pw.algo, ws,
                                                              ws_bytes, &zero, wd, ldw.p));
        });
        if (m == 0) dwd = rel_diff(dw.p, ldw.p, nw);
        if (ws) SAFNET_CUDA_CHECK(cudaFree(ws));
      }
      dnn.cudnnDestroyConvolutionDescriptor_(cd);
      dnn.cudnnDestroyFilterDescriptor_(wd);
      dnn.cudnnDestroyTensorDescriptor_(yd);
      dnn.cudnnDestroyTensorDescriptor_(xd);
    }
    char shape[128];
    std::snprintf(shape, sizeof shape, "N%d C%d %dx%d K%d %dx%d s%d", g.n, g.c, g.h, g.w, g.k, g.r, g.s, g.stride);
    row(cs.model, cs.name, "fwd", shape, flop, t_f, lf[0], lf[1], df, "cuDNN");
    row(cs.model, cs.name, "bwd-data", shape, flop, t_d, ld[0], ld[1], dd, "cuDNN");
    row(cs.model, cs.name, "bwd-weight", shape, flop, t_w, lw[0], lw[1], dwd, "cuDNN");
  }

  for (const auto& ls : linears) {
    const int n = ls.n, in = ls.in, out = ls.out;
    const double flop = 2.0 * n * in * out;
    Rotating x(std::size_t(n) * in, o.sets, rng, 1.0f), dy(std::size_t(n) * out, o.sets, rng, 1.0f), tw;
    Rotating w(std::size_t(out) * in, o.sets, rng, std::sqrt(1.0f / in), &tau, &tw);
    DeviceBuffer y(std::size_t(n) * out), dx(std::size_t(n) * in), dw(std::size_t(out) * in);
    DeviceBuffer ly(y.n), ldx(dx.n), ldw(dw.n);
    auto view = [&](int i) { return WeightView{w.at(i), {}, tau}; };
    const double t_f =
        timer.median_ms([&](int i) { safnet::cuda::linear_forward(n, in, out, x.at(i), view(i), nullptr, y.p, stream, o.math); });
    const double t_d =
        timer.median_ms([&](int i) { safnet::cuda::linear_backward_data(n, in, out, dy.at(i), view(i), dx.p, stream, o.math); });
    const std::size_t split_bytes = safnet::cuda::linear_backward_weight_plan(n, in, out, o.math).workspace_bytes();
    DeviceBuffer split(split_bytes / sizeof(float));
    const double t_w = timer.median_ms([&](int i) {
      safnet::cuda::linear_backward_weight(n, in, out, x.at(i), dy.at(i), SafGrad{nullptr, tau}, dw.p, nullptr,
                                           {split.p, split_bytes}, stream, o.math);
    });
    double lf[2] = {0, 0}, ld[2] = {0, 0}, lw[2] = {0, 0}, df = -1, dd = -1, dwd = -1;
    if (blas.ok()) {
      const float one = 1.0f, zero = 0.0f;
      for (int m = 0; m < 2; ++m) {
        CUBLAS_CHECK(blas, blas.cublasSetMathMode_(blas.h, m == 0 ? CUBLAS_DEFAULT_MATH : CUBLAS_TF32_TENSOR_OP_MATH));
        // Row-major Y (N, OUT) = X W^T is column-major Y^T (OUT, N) = W^T' X^T; likewise below.
        lf[m] = timer.median_ms([&](int i) {
          CUBLAS_CHECK(blas, blas.cublasSgemm_(blas.h, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &one, tw.at(i), in,
                                              x.at(i), in, &zero, ly.p, out));
        });
        if (m == 0) df = rel_diff(y.p, ly.p, y.n);
        ld[m] = timer.median_ms([&](int i) {  // dX (N, IN) = dY (N, OUT) W (OUT, IN)
          CUBLAS_CHECK(blas, blas.cublasSgemm_(blas.h, CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, &one, tw.at(i), in,
                                              dy.at(i), out, &zero, ldx.p, in));
        });
        if (m == 0) dd = rel_diff(dx.p, ldx.p, dx.n);
        lw[m] = timer.median_ms([&](int i) {  // dW (OUT, IN) = dY^T (OUT, N) X (N, IN)
          CUBLAS_CHECK(blas, blas.cublasSgemm_(blas.h, CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, &one, x.at(i), in,
                                              dy.at(i), out, &zero, ldw.p, in));
        });
        if (m == 0) dwd = rel_diff(dw.p, ldw.p, dw.n);
      }
    }
    char shape[128];
    std::snprintf(shape, sizeof shape, "N%d IN%d OUT%d", n, in, out);
    row(ls.model, ls.name, "fwd", shape, flop, t_f, lf[0], lf[1], df, "cuBLAS");
    row(ls.model, ls.name, "bwd-data", shape, flop, t_d, ld[0], ld[1], dd, "cuBLAS");
    row(ls.model, ls.name, "bwd-weight", shape, flop, t_w, lw[0], lw[1], dwd, "cuBLAS");
  }
  SAFNET_CUDA_CHECK(cudaStreamSynchronize(stream));
  SAFNET_CUDA_CHECK(cudaGetLastError());
  return 0;
}
