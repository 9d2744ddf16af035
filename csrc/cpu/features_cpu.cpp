// CPU stage-feature reduction: k x k average pooling (stride k, valid) of an NCHW float32 batch,
// flattened channel-major, fused with the column sums and per-class column sums (float64) that the
// PLS statistics need, so a stage's feature map is read once (docs/scorers.md, section 5).
#include "cpu/features_cpu.h"

#include <omp.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

namespace swnas {
namespace cpu {
namespace {

// Pool sample i of x (C x H x W) into out (C x Ho x Wo), k x k windows, stride k.
inline void pool_one(const float* x, float* out, int64_t C, int64_t H, int64_t W, int64_t k) {
  const int64_t Ho = H / k, Wo = W / k;
  const float inv = 1.0f / static_cast<float>(k * k);
  for (int64_t c = 0; c < C; ++c) {
    const float* xc = x + c * H * W;
    float* oc = out + c * Ho * Wo;
    for (int64_t i = 0; i < Ho; ++i) {
      float* orow = oc + i * Wo;
      for (int64_t j = 0; j < Wo; ++j) orow[j] = 0.0f;
      for (int64_t r = 0; r < k; ++r) {
        const float* xrow = xc + (i * k + r) * W;
        for (int64_t j = 0; j < Wo; ++j) {
          const float* w = xrow + j * k;
          float s = 0.0f;
          for (int64_t q = 0; q < k; ++q) s += w[q];
          orow[j] += s;
        }
      }
      for (int64_t j = 0; j < Wo; ++j) orow[j] *= inv;
    }
  }
}

}  // namespace

PoolShape pool_shape(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k) {
  if (k < 1) throw std::invalid_argument("k: pooling size must be >= 1");
  if (h < k || w < k) throw std::invalid_argument("k: pooling window is larger than the feature map");
  PoolShape s{n, c, h, w, k, h / k, w / k, 0};
  s.p = s.c * s.ho * s.wo;
  return s;
}

void avgpool_flat(const float* x, float* out, const PoolShape& s) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < s.n; ++i) pool_one(x + i * s.c * s.h * s.w, out + i * s.p, s.c, s.h, s.w, s.k);
}

void avgpool_stats(const float* x, const int32_t* labels, int64_t n_classes, float* out, double* colsum,
                   double* clssum, const PoolShape& s) {
  const int nt = omp_get_max_threads();
  // per-thread class sums (the column sums are their total over classes)
  std::vector<double> part(static_cast<size_t>(nt) * n_classes * s.p, 0.0);
#pragma omp parallel
  {
    double* mine = part.data() + static_cast<size_t>(omp_get_thread_num()) * n_classes * s.p;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < s.n; ++i) {
      float* row = out + i * s.p;
      pool_one(x + i * s.c * s.h * s.w, row, s.c, s.h, s.w, s.k);
      double* dst = mine + static_cast<int64_t>(labels[i]) * s.p;
      for (int64_t f = 0; f < s.p; ++f) dst[f] += static_cast<double>(row[f]);
    }
  }
  const int64_t cp = n_classes * s.p;
#pragma omp parallel for schedule(static)
  for (int64_t e = 0; e < cp; ++e) {
    double v = 0.0;
    for (int t = 0; t < nt; ++t) v += part[static_cast<size_t>(t) * cp + e];
    clssum[e] = v;
  }
  for (int64_t f = 0; f < s.p; ++f) {
    double v = 0.0;
    for (int64_t c = 0; c < n_classes; ++c) v += clssum[c * s.p + f];
    colsum[f] = v;
  }
}

}  // namespace cpu
}  // namespace swnas
