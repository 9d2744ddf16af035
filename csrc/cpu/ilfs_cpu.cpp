// CPU kernels of il-FS (docs/scorers.md, section 4): class means and token counts (OpenMP over feature blocks), PLSA EM.
#include <omp.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "bindings/registry.h"
#include "common/ilfs_math.h"

namespace py = pybind11;

namespace swnas {
namespace cpu {
namespace {

// counts (TT x p, row-major) of the tokens of every (sample, feature); returns false on NaN/Inf data.
template <typename T>
bool token_counts(const T* X, const int32_t* y, int64_t n, int64_t p, int nc, int tt, int64_t* counts,
                  bool parallel) {
  const int64_t B = 64;
  const int64_t nblocks = (p + B - 1) / B;
  std::vector<double> ccount(nc, 0.0);
  for (int64_t s = 0; s < n; ++s) ccount[y[s]] += 1.0;
  bool ok = true;
#pragma omp parallel if (parallel)
  {
    std::vector<double> mu(size_t(nc) * B), inv(static_cast<size_t>(B)), own(static_cast<size_t>(B));
    std::vector<int> nz(B);
    std::vector<char> ownz(B);
#pragma omp for schedule(dynamic, 1) reduction(&& : ok)
    for (int64_t blk = 0; blk < nblocks; ++blk) {
      const int64_t j0 = blk * B, nb = std::min(B, p - j0);
      std::fill(mu.begin(), mu.end(), 0.0);
      for (int64_t s = 0; s < n; ++s) {
        const T* x = X + s * p + j0;
        double* m = &mu[size_t(y[s]) * B];
        for (int64_t b = 0; b < nb; ++b) m[b] += double(x[b]);
      }
      for (int c = 0; c < nc; ++c)
        for (int64_t b = 0; b < nb; ++b) {
          mu[size_t(c) * B + b] /= std::max(ccount[c], 1.0);
          if (!std::isfinite(mu[size_t(c) * B + b])) ok = false;
        }
      if (!ok) continue;
      for (int64_t s = 0; s < n; ++s) {
        const T* x = X + s * p + j0;
        const int ys = y[s];
        std::fill(inv.begin(), inv.end(), 0.0);
        std::fill(nz.begin(), nz.end(), 0);
        for (int c = 0; c < nc; ++c) {
          const double* m = &mu[size_t(c) * B];
          for (int64_t b = 0; b < nb; ++b) {
            const double d = (double(x[b]) - m[b]) * (double(x[b]) - m[b]);
            double iv;
            bool z;
            ilfs::add_distance(d, inv[b], nz[b], iv, z);
            if (c == ys) { own[b] = iv; ownz[b] = z; }
          }
        }
        for (int64_t b = 0; b < nb; ++b) {
          const double pi = ilfs::relevance_pi(own[b], ownz[b] != 0, inv[b], nz[b]);
          counts[int64_t(ilfs::token_of(pi, tt)) * p + j0 + b]++;
        }
      }
    }
  }
  return ok;
}


py::tuple run_one(const py::array& Xa, const py::array_t<int32_t, py::array::c_style>& y, int nc, int tt,
                  int max_iter, double tol, bool parallel) {
  if (Xa.ndim() != 2) throw std::invalid_argument("X: expected a 2-D matrix");
  const int64_t n = Xa.shape(0), p = Xa.shape(1);
  if (y.ndim() != 1 || y.shape(0) != n) throw std::invalid_argument("y: length must equal the rows of X");
  if (!(Xa.flags() & py::array::c_style)) throw std::invalid_argument("X: must be C-contiguous");
  py::array_t<int64_t> counts({int64_t(tt), p});
  std::memset(counts.mutable_data(), 0, sizeof(int64_t) * size_t(tt) * p);
  bool ok;
  const bool is32 = py::isinstance<py::array_t<float>>(Xa);
  const bool is64 = py::isinstance<py::array_t<double>>(Xa);
  if (!is32 && !is64) throw std::invalid_argument("X: dtype must be float32 or float64");
  ilfs::PlsaResult res;
  std::vector<double> scores;
  {
    py::gil_scoped_release nogil;
    if (is32) ok = token_counts<float>(static_cast<const float*>(Xa.data()), y.data(), n, p, nc, tt,
                                       counts.mutable_data(), parallel);
    else ok = token_counts<double>(static_cast<const double*>(Xa.data()), y.data(), n, p, nc, tt,
                                   counts.mutable_data(), parallel);
    if (ok) {
      res = ilfs::plsa(counts.data(), tt, p, max_iter, tol);
      scores = ilfs::closed_form(res.v);
    }
  }
  if (!ok) return py::make_tuple(py::none(), py::none(), py::none(), counts, false);
  py::array_t<double> s(p), v(p), ll(int64_t(res.loglik.size()));
  std::memcpy(s.mutable_data(), scores.data(), sizeof(double) * p);
  std::memcpy(v.mutable_data(), res.v.data(), sizeof(double) * p);
  std::memcpy(ll.mutable_data(), res.loglik.data(), sizeof(double) * res.loglik.size());
  return py::make_tuple(s, v, ll, counts, true);
}

}  // namespace
}  // namespace cpu

void register_ilfs_cpu(py::module_& m) {
  using namespace cpu;
  m.def("ilfs_run", [](py::array X, py::array_t<int32_t, py::array::c_style> y, int nc, int tt, int max_iter,
                       double tol) { return run_one(X, y, nc, tt, max_iter, tol, true); },
        py::arg("X"), py::arg("y"), py::arg("n_classes"), py::arg("TT"), py::arg("max_iter"), py::arg("tol"),
        "il-FS of one problem: (scores, v, loglik, counts, finite_ok)");
  m.def("ilfs_many", [](py::list problems, int tt, int max_iter, double tol) {
        // one compiled call for a batch: problems run one after another, each with all threads
        py::list out;
        for (auto item : problems) {
          py::tuple t = item.cast<py::tuple>();
          out.append(run_one(t[0].cast<py::array>(), t[1].cast<py::array_t<int32_t, py::array::c_style>>(),
                             t[2].cast<int>(), tt, max_iter, tol, true));
        }
        return out;
      },
      py::arg("problems"), py::arg("TT"), py::arg("max_iter"), py::arg("tol"),
      "il-FS of a list of (X, y, n_classes): a list of (scores, v, loglik, counts, finite_ok)");
}

}  // namespace swnas
