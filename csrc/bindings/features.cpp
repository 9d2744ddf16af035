// pybind11 bindings of the CPU stage-feature reduction (cpu/features_cpu.h).
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstdint>

#include "bindings/registry.h"
#include "cpu/features_cpu.h"

namespace py = pybind11;

namespace swnas {
namespace {

using FArray = py::array_t<float, py::array::c_style>;
using IArray = py::array_t<int32_t, py::array::c_style>;

cpu::PoolShape check_input(const FArray& x, int64_t k) {
  if (x.ndim() != 4) throw py::value_error("x: expected a 4-D NCHW float32 array");
  return cpu::pool_shape(x.shape(0), x.shape(1), x.shape(2), x.shape(3), k);
}

py::array_t<float> avgpool_flat(const FArray& x, int64_t k) {
  const cpu::PoolShape s = check_input(x, k);
  py::array_t<float> out({s.n, s.p});
  float* op = out.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::avgpool_flat(x.data(), op, s);
  }
  return out;
}

py::tuple avgpool_stats(const FArray& x, int64_t k, const IArray& labels, int64_t n_classes) {
  const cpu::PoolShape s = check_input(x, k);
  if (labels.ndim() != 1 || labels.shape(0) != s.n)
    throw py::value_error("labels: expected one int32 label per sample");
  if (n_classes < 1) throw py::value_error("n_classes: must be >= 1");
  const int32_t* lab = labels.data();
  for (int64_t i = 0; i < s.n; ++i)
    if (lab[i] < 0 || lab[i] >= n_classes) throw py::value_error("labels: values must lie in 0..n_classes-1");
  py::array_t<float> out({s.n, s.p});
  py::array_t<double> colsum({s.p});
  py::array_t<double> clssum({n_classes, s.p});
  float* op = out.mutable_data();
  double* cs = colsum.mutable_data();
  double* ks = clssum.mutable_data();
  {
    py::gil_scoped_release nogil;
    cpu::avgpool_stats(x.data(), lab, n_classes, op, cs, ks, s);
  }
  return py::make_tuple(out, colsum, clssum);
}

}  // namespace

void register_features_cpu(py::module_& m) {
  m.def("features_avgpool", &avgpool_flat, py::arg("x"), py::arg("k"),
        "k x k average pooling (stride k, valid) of an NCHW float32 array, flattened to (N, C*Ho*Wo)");
  m.def("features_avgpool_stats", &avgpool_stats, py::arg("x"), py::arg("k"), py::arg("labels"),
        py::arg("n_classes"),
        "Pooling fused with float64 column sums (p,) and per-class column sums (n_classes, p)");
}

}  // namespace swnas
