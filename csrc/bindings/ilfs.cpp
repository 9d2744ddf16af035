// pybind11 bindings of il-FS on the CPU (cpu/ilfs_cpu.h): one problem or a batch in one call.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bindings/ilfs_py.h"
#include "bindings/py_array.h"
#include "bindings/registry.h"
#include "cpu/ilfs_cpu.h"

namespace py = pybind11;

namespace swnas {
namespace {

using Labels = py::array_t<int32_t, py::array::c_style>;

py::tuple run_one(const py::array& X, const Labels& y, int nc, int tt, int max_iter, double tol,
                  const std::string& name) {
  const MatrixView m = view_matrix(X, name, true);
  if (y.ndim() != 1 || y.shape(0) != m.rows) throw py::value_error("y: length must equal the rows of X");
  ilfs::Outcome o;
  {
    py::gil_scoped_release nogil;
    o = cpu::ilfs_run(m, y.data(), nc, tt, max_iter, tol, true);
  }
  return ilfs_to_python(o, tt, m.cols);
}

}  // namespace

void register_ilfs_cpu(py::module_& m) {
  m.def(
      "ilfs_run",
      [](py::array X, Labels y, int nc, int tt, int max_iter, double tol) {
        return run_one(X, y, nc, tt, max_iter, tol, "X");
      },
      py::arg("X"), py::arg("y"), py::arg("n_classes"), py::arg("TT"), py::arg("max_iter"), py::arg("tol"),
      "il-FS of one problem: (scores, v, loglik, counts, finite_ok)");
  m.def(
      "ilfs_many",
      [](py::list problems, int tt, int max_iter, double tol) {
        // one compiled call for a batch: problems run one after another, each with all threads
        py::list out;
        size_t i = 0;
        for (auto item : problems) {
          py::tuple t = item.cast<py::tuple>();
          out.append(run_one(t[0].cast<py::array>(), t[1].cast<Labels>(), t[2].cast<int>(), tt, max_iter, tol,
                             "problems[" + std::to_string(i++) + "].X"));
        }
        return out;
      },
      py::arg("problems"), py::arg("TT"), py::arg("max_iter"), py::arg("tol"),
      "il-FS of a list of (X, y, n_classes): a list of (scores, v, loglik, counts, finite_ok)");
}

}  // namespace swnas
