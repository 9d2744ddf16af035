// The one pybind11 entry point of the CPU core: every scorer file registers its own functions here.
#include <omp.h>
#include "bindings/registry.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "swnas CPU core: feature-importance scorers (C++17, OpenMP)";
  m.def("max_threads", []() { return omp_get_max_threads(); }, "OpenMP threads the core will use");
  swnas::register_pls_cpu(m);
  swnas::register_inffs_cpu(m);
  swnas::register_ilfs_cpu(m);
}
