// pybind11 bindings of il-FS on the GPU (cuda/ilfs_cuda.h): device token counts, then the host PLSA EM and closed form.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <tuple>
#include <vector>

#include "bindings/registry.h"
#include "common/ilfs_math.h"
#include "cuda/ilfs_cuda.h"

namespace py = pybind11;

namespace swnas {
namespace {

struct Out {
  bool ok = false;
  std::vector<int64_t> counts;
  ilfs::PlsaResult em;
  std::vector<double> scores;
};

Out run(uintptr_t X, int dtype, int64_t n, int64_t p, uintptr_t y, int nc, int tt, int max_iter, double tol,
        uintptr_t stream) {
  const MatrixView view{reinterpret_cast<const void*>(X), n, p, dtype_from_code(dtype), 0};
  Out o;
  o.ok = cuda::ilfs_token_counts(view, reinterpret_cast<const int32_t*>(y), nc, tt, o.counts, stream);
  if (o.ok) {
    o.em = ilfs::plsa(o.counts.data(), tt, p, max_iter, tol);
    o.scores = ilfs::closed_form(o.em.v);
  }
  return o;
}

py::tuple to_py(const Out& o, int tt, int64_t p) {
  py::array_t<int64_t> counts({int64_t(tt), p});
  if (!o.ok) return py::make_tuple(py::none(), py::none(), py::none(), counts, false);
  std::memcpy(counts.mutable_data(), o.counts.data(), sizeof(int64_t) * o.counts.size());
  py::array_t<double> s(p), v(p), ll(int64_t(o.em.loglik.size()));
  std::memcpy(s.mutable_data(), o.scores.data(), sizeof(double) * p);
  std::memcpy(v.mutable_data(), o.em.v.data(), sizeof(double) * p);
  std::memcpy(ll.mutable_data(), o.em.loglik.data(), sizeof(double) * o.em.loglik.size());
  return py::make_tuple(s, v, ll, counts, true);
}

}  // namespace

void register_ilfs_cuda(py::module_& m) {
  m.def("ilfs_run",
        [](uintptr_t X, int dtype, int64_t n, int64_t p, uintptr_t y, int nc, int tt, int max_iter, double tol,
           uintptr_t stream) {
          Out o;
          {
            py::gil_scoped_release nogil;
            o = run(X, dtype, n, p, y, nc, tt, max_iter, tol, stream);
          }
          return to_py(o, tt, p);
        },
        py::arg("X"), py::arg("dtype"), py::arg("n"), py::arg("p"), py::arg("y"), py::arg("n_classes"), py::arg("TT"),
        py::arg("max_iter"), py::arg("tol"), py::arg("stream"),
        "il-FS of a row-major device matrix: (scores, v, loglik, counts, finite_ok)");
  m.def("ilfs_many",
        [](std::vector<std::tuple<uintptr_t, int, int64_t, int64_t, uintptr_t, int>> problems, int tt, int max_iter,
           double tol, uintptr_t stream) {
          std::vector<Out> outs(problems.size());
          {
            py::gil_scoped_release nogil;
            for (size_t k = 0; k < problems.size(); ++k) {
              const auto& t = problems[k];
              outs[k] = run(std::get<0>(t), std::get<1>(t), std::get<2>(t), std::get<3>(t), std::get<4>(t),
                            std::get<5>(t), tt, max_iter, tol, stream);
            }
          }
          py::list res;
          for (size_t k = 0; k < problems.size(); ++k) res.append(to_py(outs[k], tt, std::get<3>(problems[k])));
          return res;
        },
        py::arg("problems"), py::arg("TT"), py::arg("max_iter"), py::arg("tol"), py::arg("stream"),
        "il-FS of a batch of (X, dtype, n, p, y, n_classes) device problems in one call");
}
}  // namespace swnas
