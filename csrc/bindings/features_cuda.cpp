// pybind11 bindings of the CUDA stage-feature reduction: takes raw device pointers (e.g. torch
// tensors' data_ptr()) so the module never links PyTorch.
#include <cstdint>
#include <stdexcept>

#include "bindings/registry.h"
#include "cuda/features_cuda.h"

namespace py = pybind11;

namespace swnas {
void register_features_cuda(py::module_& m) {
  m.def(
      "features_avgpool",
      [](std::uintptr_t x, std::uintptr_t out, int64_t n, int64_t c, int64_t h, int64_t w, int64_t k,
         std::uintptr_t stream) {
        if (x == 0 || out == 0) throw py::value_error("x, out: null device pointer");
        try {
          cuda::avgpool_flat(reinterpret_cast<const float*>(x), reinterpret_cast<float*>(out), n, c, h, w,
                                      k, stream);
        } catch (const std::invalid_argument& e) {
          throw py::value_error(e.what());
        }
      },
      py::arg("x"), py::arg("out"), py::arg("n"), py::arg("c"), py::arg("h"), py::arg("w"), py::arg("k"),
      py::arg("stream") = 0,
      "k x k average pooling of device float32 NCHW x into device out (n, c*(h/k)*(w/k)); pointers as ints");
  m.def(
      "features_avgpool_stats",
      [](std::uintptr_t x, std::uintptr_t labels, std::uintptr_t out, std::uintptr_t colsum, std::uintptr_t clssum,
         int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t n_classes, std::uintptr_t stream) {
        if (x == 0 || labels == 0 || out == 0 || colsum == 0 || clssum == 0)
          throw py::value_error("x, labels, out, colsum, clssum: null device pointer");
        try {
          cuda::avgpool_stats(reinterpret_cast<const float*>(x), reinterpret_cast<const int32_t*>(labels),
                                       reinterpret_cast<float*>(out), reinterpret_cast<double*>(colsum),
                                       reinterpret_cast<double*>(clssum), n, c, h, w, k, n_classes, stream);
        } catch (const std::invalid_argument& e) {
          throw py::value_error(e.what());
        }
      },
      py::arg("x"), py::arg("labels"), py::arg("out"), py::arg("colsum"), py::arg("clssum"), py::arg("n"),
      py::arg("c"), py::arg("h"), py::arg("w"), py::arg("k"), py::arg("n_classes"), py::arg("stream") = 0,
      "Pooling fused with float64 column sums and per-class column sums (added into zeroed device buffers)");
}
}  // namespace swnas
