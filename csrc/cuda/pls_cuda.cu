// CUDA passes over X for PLS-VIP (docs/scorers.md, section 1): fused column statistics, t = X v - c
// (warp per row) and X't.
//
// Everything is accumulated in float64 (double atomics, sm_60+); X (float32/float64, row-major) is
// read in place. The small kernel-PLS algebra runs on the host in Python.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "common/pls_math.h"
#include "cuda/device_buffer.h"
#include "cuda/pls_cuda.h"

namespace swnas {
namespace cuda {
namespace {

constexpr int kTile = 128;         // columns (threads) per block in the column-wise kernels
constexpr int kSmemClassMax = 48;  // per-class sums in shared memory up to this many classes (48 KiB)
constexpr int kRowBlock = 256;     // threads per block of the row-wise kernel (8 warps, one row each)

// Row chunks for the column-wise kernels: about 16 blocks per SM in all (enough loads in flight to
// saturate HBM), at most 65535 chunks.
int64_t rows_per_chunk(int64_t n, int64_t col_tiles, int sms) {
  const int64_t target_chunks = std::max<int64_t>(1, (16LL * sms + col_tiles - 1) / col_tiles);
  int64_t rows = std::max<int64_t>(64, (n + target_chunks - 1) / target_chunks);
  rows = std::max<int64_t>(rows, (n + 65534) / 65535);
  return rows;
}

// Statistics pass. Thread = one column j, block = kTile columns x one chunk of rows. Per row:
// d = x_ij - x_0j (shift by the first row, as on the CPU); sums of d^2 and per-class sums of d.
template <class T>
__global__ void stats_kernel(const T* __restrict__ X, int64_t n, int64_t p, const int32_t* __restrict__ codes,
                             int n_classes, int64_t chunk, double* __restrict__ cls, double* __restrict__ s2) {
  extern __shared__ double smem[];  // n_classes * blockDim.x when n_classes <= kSmemClassMax
  const bool use_smem = n_classes <= kSmemClassMax;
  const int tid = threadIdx.x;
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + tid;
  if (j >= p) return;  // no __syncthreads below: each thread only touches its own shared slots
  if (use_smem)
    for (int c = 0; c < n_classes; ++c) smem[c * blockDim.x + tid] = 0.0;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * chunk;
  const int64_t r1 = r0 + chunk < n ? r0 + chunk : n;
  const double x0 = static_cast<double>(X[j]);
  double acc2 = 0.0;
#pragma unroll 4
  for (int64_t i = r0; i < r1; ++i) {
    const double d = static_cast<double>(X[i * p + j]) - x0;
    acc2 += d * d;
    const int c = codes[i];
    if (use_smem) {
      smem[c * blockDim.x + tid] += d;
    } else {
      atomicAdd(&cls[static_cast<int64_t>(c) * p + j], d);
    }
  }
  atomicAdd(&s2[j], acc2);
  if (use_smem)
    for (int c = 0; c < n_classes; ++c) atomicAdd(&cls[static_cast<int64_t>(c) * p + j], smem[c * blockDim.x + tid]);
}

// t_i = x_i . v - c: one warp per row (grid-stride), float4 loads when VEC4 (float32, p % 4 == 0,
// 16-byte aligned). Also sum(t) and t't, one atomic pair per block. Launch with kRowBlock threads.
template <class T, bool VEC4>
__global__ void xv_kernel(const T* __restrict__ X, int64_t n, int64_t p, const double* __restrict__ v, double c,
                          double* __restrict__ t, double* __restrict__ tstats) {
  const int lane = threadIdx.x & 31;
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t n_warps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  double local_sum = 0.0, local_sq = 0.0;
  for (int64_t i = warp; i < n; i += n_warps) {  // warp-uniform loop: full-mask shuffles are safe
    const T* row = X + i * p;
    double s = 0.0;
    if constexpr (VEC4) {
      const float4* row4 = reinterpret_cast<const float4*>(row);
      const int64_t p4 = p >> 2;
      for (int64_t q = lane; q < p4; q += 32) {
        const float4 x = row4[q];
        const int64_t j = q << 2;
        s += static_cast<double>(x.x) * v[j] + static_cast<double>(x.y) * v[j + 1] +
             static_cast<double>(x.z) * v[j + 2] + static_cast<double>(x.w) * v[j + 3];
      }
    } else {
      for (int64_t j = lane; j < p; j += 32) s += static_cast<double>(row[j]) * v[j];
    }
    for (int off = 16; off > 0; off >>= 1) s += __shfl_down_sync(0xffffffffu, s, off);
    if (lane == 0) {
      const double ti = s - c;
      t[i] = ti;
      local_sum += ti;
      local_sq += ti * ti;
    }
  }
  // block reduction of the per-warp sums (lane 0 holds them), then one atomic pair per block
  __shared__ double red[2][kRowBlock / 32];
  const int wid = threadIdx.x >> 5;
  if (lane == 0) {
    red[0][wid] = local_sum;
    red[1][wid] = local_sq;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double a = 0.0, b = 0.0;
    for (int w = 0; w < kRowBlock / 32; ++w) {
      a += red[0][w];
      b += red[1][w];
    }
    atomicAdd(&tstats[0], a);
    atomicAdd(&tstats[1], b);
  }
}

// g_j = sum_i x_ij t_i: thread = column j (coalesced across the warp), block = kTile columns x one
// chunk of rows, one atomic per thread.
template <class T>
__global__ void xtt_kernel(const T* __restrict__ X, int64_t n, int64_t p, const double* __restrict__ t, int64_t chunk,
                           double* __restrict__ g) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= p) return;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * chunk;
  const int64_t r1 = r0 + chunk < n ? r0 + chunk : n;
  double acc = 0.0;
#pragma unroll 8
  for (int64_t i = r0; i < r1; ++i) acc += static_cast<double>(X[i * p + j]) * t[i];
  atomicAdd(&g[j], acc);
}

template <class T>
void launch_stats(const T* X, int64_t n, int64_t p, const int32_t* codes, int n_classes, double* cls, double* s2,
                  int sms, cudaStream_t stream) {
  const int64_t tiles = (p + kTile - 1) / kTile;
  const int64_t chunk = rows_per_chunk(n, tiles, sms);
  const int64_t chunks = (n + chunk - 1) / chunk;
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(chunks));
  const size_t smem = n_classes <= kSmemClassMax ? static_cast<size_t>(n_classes) * kTile * sizeof(double) : 0;
  stats_kernel<T><<<grid, kTile, smem, stream>>>(X, n, p, codes, n_classes, chunk, cls, s2);
  SWNAS_CUDA_CHECK(cudaGetLastError());
}

template <class T>
void launch_project(const T* X, int64_t n, int64_t p, const double* v, double c, double* t, double* tstats, double* g,
                    int sms, cudaStream_t stream, bool loading) {
  // one wave: as many blocks as can be resident at once (the occupancy API, not a guess: registers
  // allow fewer than 8 blocks of this kernel per SM, and a second partial wave costs ~20%)
  const int64_t warps_per_block = kRowBlock / 32;
  auto grid_for = [&](auto kernel) {
    const int64_t resident = static_cast<int64_t>(resident_blocks_per_sm(kernel, kRowBlock)) * sms;
    return static_cast<unsigned>(
        std::max<int64_t>(1, std::min<int64_t>((n + warps_per_block - 1) / warps_per_block, resident)));
  };
  bool launched = false;
  if constexpr (std::is_same_v<T, float>) {
    if (p % 4 == 0 && reinterpret_cast<uintptr_t>(X) % 16 == 0) {
      xv_kernel<float, true><<<grid_for(xv_kernel<float, true>), kRowBlock, 0, stream>>>(X, n, p, v, c, t, tstats);
      launched = true;
    }
  }
  if (!launched) xv_kernel<T, false><<<grid_for(xv_kernel<T, false>), kRowBlock, 0, stream>>>(X, n, p, v, c, t, tstats);
  SWNAS_CUDA_CHECK(cudaGetLastError());
  if (!loading) return;  // the last component: t't is all kernel PLS needs (docs/scorers.md, section 1)
  const int64_t tiles = (p + kTile - 1) / kTile;
  const int64_t chunk = rows_per_chunk(n, tiles, sms);
  const int64_t chunks = (n + chunk - 1) / chunk;
  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(chunks));
  xtt_kernel<T><<<grid, kTile, 0, stream>>>(X, n, p, t, chunk, g);
  SWNAS_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

struct PlsMatrix::Workspace {
  cudaStream_t stream = nullptr;
  DeviceBuffer<unsigned char> owned;  // the uploaded copy of host data (empty when borrowed)
  DeviceBuffer<double> v, g, t, tstats;
  int sms = 1;
  explicit Workspace(const MatrixView& x)
      : v(static_cast<size_t>(x.cols)),
        g(static_cast<size_t>(x.cols)),
        t(static_cast<size_t>(x.rows)),
        tstats(2),
        sms(sm_count(x.device)) {
    SWNAS_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  }
  ~Workspace() {
    if (stream) {
      cudaStreamSynchronize(stream);  // no kernel may still read a buffer freed below
      cudaStreamDestroy(stream);
    }
  }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
};

PlsMatrix::PlsMatrix(const MatrixView& x, std::uintptr_t producer_stream) : x_(x) {
  if (x.rows < 1 || x.cols < 1) throw std::invalid_argument("X: is empty");
  if (x.device < 0) throw std::invalid_argument("X: a PlsMatrix needs device memory");
  DeviceGuard guard(x_.device);
  ws_ = std::make_unique<Workspace>(x_);
  stream_wait(ws_->stream, reinterpret_cast<cudaStream_t>(producer_stream));
}

std::unique_ptr<PlsMatrix> PlsMatrix::from_host(const MatrixView& host, int device) {
  if (host.rows < 1 || host.cols < 1) throw std::invalid_argument("X: is empty");
  DeviceGuard guard(device);
  DeviceBuffer<unsigned char> buf(host.bytes());
  SWNAS_CUDA_CHECK(cudaMemcpy(buf.get(), host.data, host.bytes(), cudaMemcpyHostToDevice));
  MatrixView on_device = host;
  on_device.data = buf.get();
  on_device.device = device;
  auto m = std::make_unique<PlsMatrix>(on_device, 0);
  m->ws_->owned = std::move(buf);
  return m;
}

PlsMatrix::~PlsMatrix() {
  if (!ws_) return;
  int prev = 0;
  cudaGetDevice(&prev);
  cudaSetDevice(x_.device);
  ws_.reset();
  cudaSetDevice(prev);
}

PlsStats PlsMatrix::stats(const int32_t* codes, int64_t n_classes) {
  if (n_classes < 1 || n_classes > (1LL << 30)) throw std::invalid_argument("n_classes: out of range");
  DeviceGuard guard(x_.device);
  cudaStream_t stream = ws_->stream;
  const int64_t n = x_.rows, p = x_.cols, C = n_classes;
  PlsStats out;
  out.counts.assign(C, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    if (codes[i] < 0 || codes[i] >= C) throw std::invalid_argument("codes: must lie in 0..n_classes-1");
    out.counts[codes[i]] += 1.0;
  }
  DeviceBuffer<int32_t> d_codes(static_cast<size_t>(n), stream);
  DeviceBuffer<double> d_cls(static_cast<size_t>(C * p), stream);
  DeviceBuffer<double> d_s2(static_cast<size_t>(p), stream);
  SWNAS_CUDA_CHECK(cudaMemcpyAsync(d_codes.get(), codes, d_codes.bytes(), cudaMemcpyHostToDevice, stream));
  d_cls.zero_async(stream);
  d_s2.zero_async(stream);
  std::vector<double> cls(static_cast<size_t>(C * p)), s2(static_cast<size_t>(p)), x0(static_cast<size_t>(p));
  dispatch_dtype(x_.dtype, [&](auto tag) {
    using T = decltype(tag);
    launch_stats<T>(x_.as<T>(), n, p, d_codes.get(), static_cast<int>(C), d_cls.get(), d_s2.get(), ws_->sms, stream);
    std::vector<T> row(static_cast<size_t>(p));
    SWNAS_CUDA_CHECK(cudaMemcpyAsync(row.data(), x_.data, row.size() * sizeof(T), cudaMemcpyDeviceToHost, stream));
    SWNAS_CUDA_CHECK(cudaMemcpyAsync(cls.data(), d_cls.get(), d_cls.bytes(), cudaMemcpyDeviceToHost, stream));
    SWNAS_CUDA_CHECK(cudaMemcpyAsync(s2.data(), d_s2.get(), d_s2.bytes(), cudaMemcpyDeviceToHost, stream));
    SWNAS_CUDA_CHECK(cudaStreamSynchronize(stream));
    for (int64_t j = 0; j < p; ++j) x0[j] = static_cast<double>(row[j]);
  });
  out.colsum.resize(static_cast<size_t>(p));
  out.sq.resize(static_cast<size_t>(p));
  out.class_sums.resize(static_cast<size_t>(C * p));
  pls::finish_stats(n, p, C, x0.data(), cls.data(), s2.data(), out.counts.data(), out.colsum.data(), out.sq.data(),
                    out.class_sums.data());
  return out;
}

void PlsMatrix::project_launch(const double* v, double c, bool loading) {
  DeviceGuard guard(x_.device);
  Workspace& w = *ws_;
  SWNAS_CUDA_CHECK(cudaMemcpyAsync(w.v.get(), v, w.v.bytes(), cudaMemcpyHostToDevice, w.stream));
  if (loading) w.g.zero_async(w.stream);
  w.tstats.zero_async(w.stream);
  dispatch_dtype(x_.dtype, [&](auto tag) {
    using T = decltype(tag);
    launch_project<T>(x_.as<T>(), x_.rows, x_.cols, w.v.get(), c, w.t.get(), w.tstats.get(), w.g.get(), w.sms, w.stream,
                      loading);
  });
}

PlsProjection PlsMatrix::project_finish(bool loading) {
  DeviceGuard guard(x_.device);
  Workspace& w = *ws_;
  PlsProjection out;
  double ts[2] = {0.0, 0.0};
  if (loading) {
    out.g.resize(static_cast<size_t>(x_.cols));
    SWNAS_CUDA_CHECK(cudaMemcpyAsync(out.g.data(), w.g.get(), w.g.bytes(), cudaMemcpyDeviceToHost, w.stream));
  }
  SWNAS_CUDA_CHECK(cudaMemcpyAsync(ts, w.tstats.get(), 2 * sizeof(double), cudaMemcpyDeviceToHost, w.stream));
  SWNAS_CUDA_CHECK(cudaStreamSynchronize(w.stream));
  out.tsum = ts[0];
  out.tt = ts[1];
  return out;
}

std::vector<PlsProjection> pls_project_many(const std::vector<PlsMatrix*>& ms, const std::vector<const double*>& vs,
                                            const std::vector<double>& cs, bool loading) {
  if (vs.size() != ms.size() || cs.size() != ms.size())
    throw std::invalid_argument("project_many: matrices, vs and cs must have the same length");
  for (size_t k = 0; k < ms.size(); ++k) ms[k]->project_launch(vs[k], cs[k], loading);
  std::vector<PlsProjection> out;
  out.reserve(ms.size());
  for (size_t k = 0; k < ms.size(); ++k) out.push_back(ms[k]->project_finish(loading));
  return out;
}

}  // namespace cuda
}  // namespace swnas
