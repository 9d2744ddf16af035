// The Python form of an il-FS outcome, shared by the CPU and CUDA bindings.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <cstring>

#include "common/ilfs_math.h"

namespace swnas {

// (scores, v, loglik, counts (TT x p), finite_ok); the first three are None when finite_ok is False.
inline pybind11::tuple ilfs_to_python(const ilfs::Outcome& o, int tt, int64_t p) {
  namespace py = pybind11;
  py::array_t<int64_t> counts({int64_t(tt), p});
  if (!o.ok) {
    std::memset(counts.mutable_data(), 0, sizeof(int64_t) * static_cast<size_t>(tt) * static_cast<size_t>(p));
    return py::make_tuple(py::none(), py::none(), py::none(), counts, false);
  }
  std::memcpy(counts.mutable_data(), o.counts.data(), sizeof(int64_t) * o.counts.size());
  py::array_t<double> s(p), v(p), ll(int64_t(o.em.loglik.size()));
  std::memcpy(s.mutable_data(), o.scores.data(), sizeof(double) * static_cast<size_t>(p));
  std::memcpy(v.mutable_data(), o.em.v.data(), sizeof(double) * static_cast<size_t>(p));
  std::memcpy(ll.mutable_data(), o.em.loglik.data(), sizeof(double) * o.em.loglik.size());
  return py::make_tuple(s, v, ll, counts, true);
}

}  // namespace swnas
