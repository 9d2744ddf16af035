// pybind11 bindings of inf-FS on the GPU (cuda/inffs_cuda.h): device pointers in, device results written in place.
#include <pybind11/stl.h>

#include <cstdint>
#include <tuple>
#include <vector>

#include "bindings/registry.h"
#include "common/matrix_view.h"
#include "cuda/inffs_cuda.h"

namespace py = pybind11;

namespace swnas {
namespace {

MatrixView device_view(uintptr_t X, int dtype, int64_t n, int64_t p) {
  return MatrixView{reinterpret_cast<const void*>(X), n, p, dtype_from_code(dtype), 0};
}

}  // namespace

void register_inffs_cuda(py::module_& m) {
  m.def(
      "inffs_rank_gram",
      [](uintptr_t X, int dtype, int64_t n, int64_t p, bool spearman, uintptr_t Z, uintptr_t G, uintptr_t stdv,
         uintptr_t stream) {
        py::gil_scoped_release nogil;
        cuda::inffs_rank_gram(device_view(X, dtype, n, p), spearman, reinterpret_cast<void*>(Z),
                              reinterpret_cast<double*>(G), reinterpret_cast<double*>(stdv), stream);
      },
      py::arg("X"), py::arg("dtype"), py::arg("n"), py::arg("p"), py::arg("spearman"), py::arg("Z"), py::arg("G"),
      py::arg("std"), py::arg("stream"),
      "Column std, centred ranks/values Z and the double Gram matrix Z'Z of a row-major device matrix");
  m.def(
      "inffs_rank_gram_many",
      [](std::vector<std::tuple<uintptr_t, int, int64_t, int64_t, uintptr_t, uintptr_t, uintptr_t>> problems,
         bool spearman, uintptr_t stream) {
        py::gil_scoped_release nogil;
        for (const auto& t : problems)
          cuda::inffs_rank_gram(device_view(std::get<0>(t), std::get<1>(t), std::get<2>(t), std::get<3>(t)), spearman,
                                reinterpret_cast<void*>(std::get<4>(t)), reinterpret_cast<double*>(std::get<5>(t)),
                                reinterpret_cast<double*>(std::get<6>(t)), stream);
      },
      py::arg("problems"), py::arg("spearman"), py::arg("stream"),
      "inffs_rank_gram over a batch of (X, dtype, n, p, Z, G, std) device pointers in one call");
}
}  // namespace swnas
