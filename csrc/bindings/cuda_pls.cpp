// pybind11 bindings of the PLS-VIP CUDA host wrappers (filled in by the foundation issue).
#include "swnas/bindings.h"

namespace swnas {
void register_pls_cuda(pybind11::module_& m) { (void)m; }
}  // namespace swnas
