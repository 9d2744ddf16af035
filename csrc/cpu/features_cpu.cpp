// CPU stage-feature reduction: k x k average pooling (stride k, valid) of an NCHW float32 batch,
// flattened channel-major, fused with the column sums and per-class column sums (float64) that the
// PLS statistics need, so a stage's feature map is read once. OpenMP over samples.
#include <omp.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/registry.h"

namespace py = pybind11;

namespace swnas {
namespace cpu {
namespace {

using FArray = py::array_t<float, py::array::c_style>;
using IArray = py::array_t<int32_t, py::array::c_style>;

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

struct Shape {
  int64_t n, c, h, w, k, ho, wo, p;
};

Shape check_input(const FArray& x, int64_t k) {
  if (x.ndim() != 4) throw py::value_error("x: expected a 4-D NCHW float32 array");
  if (k < 1) throw py::value_error("k: pooling size must be >= 1");
  Shape s{x.shape(0), x.shape(1), x.shape(2), x.shape(3), k, 0, 0, 0};
  if (s.h < k || s.w < k) throw py::value_error("k: pooling window is larger than the feature map");
  s.ho = s.h / k;
  s.wo = s.w / k;
  s.p = s.c * s.ho * s.wo;
  return s;
}

// k x k average pooling, flattened: (N, C*Ho*Wo) float32.
py::array_t<float> avgpool_flat(const FArray& x, int64_t k) {
  Shape s = check_input(x, k);
  py::array_t<float> out({s.n, s.p});
  const float* xp = x.data();
  float* op = out.mutable_data();
  {
    py::gil_scoped_release nogil;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < s.n; ++i) pool_one(xp + i * s.c * s.h * s.w, op + i * s.p, s.c, s.h, s.w, s.k);
  }
  return out;
}

// Pooling fused with float64 column sums and per-class column sums (labels 0..n_classes-1).
py::tuple avgpool_stats(const FArray& x, int64_t k, const IArray& labels, int64_t n_classes) {
  Shape s = check_input(x, k);
  if (labels.ndim() != 1 || labels.shape(0) != s.n)
    throw py::value_error("labels: expected one int32 label per sample");
  if (n_classes < 1) throw py::value_error("n_classes: must be >= 1");
  const int32_t* lab = labels.data();
  for (int64_t i = 0; i < s.n; ++i)
    if (lab[i] < 0 || lab[i] >= n_classes) throw py::value_error("labels: values must lie in 0..n_classes-1");
  py::array_t<float> out({s.n, s.p});
  py::array_t<double> colsum({s.p});
  py::array_t<double> clssum({n_classes, s.p});
  const float* xp = x.data();
  float* op = out.mutable_data();
  double* cs = colsum.mutable_data();
  double* ks = clssum.mutable_data();
  {
    py::gil_scoped_release nogil;
    const int nt = omp_get_max_threads();
    // per-thread class sums (the column sums are their total over classes)
    std::vector<double> part(static_cast<size_t>(nt) * n_classes * s.p, 0.0);
#pragma omp parallel
    {
      double* mine = part.data() + static_cast<size_t>(omp_get_thread_num()) * n_classes * s.p;
#pragma omp for schedule(static)
      for (int64_t i = 0; i < s.n; ++i) {
        float* row = op + i * s.p;
        pool_one(xp + i * s.c * s.h * s.w, row, s.c, s.h, s.w, s.k);
        double* dst = mine + static_cast<int64_t>(lab[i]) * s.p;
        for (int64_t f = 0; f < s.p; ++f) dst[f] += static_cast<double>(row[f]);
      }
    }
    const int64_t cp = n_classes * s.p;
#pragma omp parallel for schedule(static)
    for (int64_t e = 0; e < cp; ++e) {
      double v = 0.0;
      for (int t = 0; t < nt; ++t) v += part[static_cast<size_t>(t) * cp + e];
      ks[e] = v;
    }
    for (int64_t f = 0; f < s.p; ++f) {
      double v = 0.0;
      for (int64_t c = 0; c < n_classes; ++c) v += ks[c * s.p + f];
      cs[f] = v;
    }
  }
  return py::make_tuple(out, colsum, clssum);
}

}  // namespace
}  // namespace cpu

void register_features_cpu(py::module_& m) {
  using namespace cpu;
  m.def("features_avgpool", &avgpool_flat, py::arg("x"), py::arg("k"),
        "k x k average pooling (stride k, valid) of an NCHW float32 array, flattened to (N, C*Ho*Wo)");
  m.def("features_avgpool_stats", &avgpool_stats, py::arg("x"), py::arg("k"), py::arg("labels"),
        py::arg("n_classes"),
        "Pooling fused with float64 column sums (p,) and per-class column sums (n_classes, p)");
}

}  // namespace swnas
