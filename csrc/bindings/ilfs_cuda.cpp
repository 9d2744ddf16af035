// pybind11 bindings of il-FS on the GPU (cuda/ilfs_cuda.h): device token counts, then the host PLSA EM and closed form.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <tuple>
#include <vector>

#include "bindings/ilfs_py.h"
#include "bindings/registry.h"
#include "common/ilfs_math.h"
#include "cuda/ilfs_cuda.h"

namespace py = pybind11;

namespace swnas {
namespace {

ilfs::Outcome run(uintptr_t X, int dtype, int64_t n, int64_t p, uintptr_t y, int nc, int tt, int max_iter, double tol,
                  uintptr_t stream) {
  const MatrixView view{reinterpret_cast<const void*>(X), n, p, dtype_from_code(dtype), 0};
  ilfs::Outcome o;
  o.ok = cuda::ilfs_token_counts(view, reinterpret_cast<const int32_t*>(y), nc, tt, o.counts, stream);
  ilfs::finish(o, tt, p, max_iter, tol);
  return o;
}

}  // namespace

void register_ilfs_cuda(py::module_& m) {
  m.def(
      "ilfs_run",
      [](uintptr_t X, int dtype, int64_t n, int64_t p, uintptr_t y, int nc, int tt, int max_iter, double tol,
         uintptr_t stream) {
        ilfs::Outcome o;
        {
          py::gil_scoped_release nogil;
          o = run(X, dtype, n, p, y, nc, tt, max_iter, tol, stream);
        }
        return ilfs_to_python(o, tt, p);
      },
      py::arg("X"), py::arg("dtype"), py::arg("n"), py::arg("p"), py::arg("y"), py::arg("n_classes"), py::arg("TT"),
      py::arg("max_iter"), py::arg("tol"), py::arg("stream"),
      "il-FS of a row-major device matrix: (scores, v, loglik, counts, finite_ok)");
  m.def(
      "ilfs_many",
      [](std::vector<std::tuple<uintptr_t, int, int64_t, int64_t, uintptr_t, int>> problems, int tt, int max_iter,
         double tol, uintptr_t stream) {
        std::vector<ilfs::Outcome> outs(problems.size());
        {
          py::gil_scoped_release nogil;
          for (size_t k = 0; k < problems.size(); ++k) {
            const auto& t = problems[k];
            outs[k] = run(std::get<0>(t), std::get<1>(t), std::get<2>(t), std::get<3>(t), std::get<4>(t),
                          std::get<5>(t), tt, max_iter, tol, stream);
          }
        }
        py::list res;
        for (size_t k = 0; k < problems.size(); ++k) res.append(ilfs_to_python(outs[k], tt, std::get<3>(problems[k])));
        return res;
      },
      py::arg("problems"), py::arg("TT"), py::arg("max_iter"), py::arg("tol"), py::arg("stream"),
      "il-FS of a batch of (X, dtype, n, p, y, n_classes) device problems in one call");
}
}  // namespace swnas
