// pybind11 bindings of the ilfs CUDA host wrappers (filled in by its issue).
#include "swnas/bindings.h"

namespace swnas {
void register_ilfs_cuda(pybind11::module_& m) { (void)m; }
}  // namespace swnas
