// CPU kernels for ilfs (filled in by its issue); registers its functions on _core.
#include "swnas/bindings.h"

namespace swnas {
void register_ilfs_cpu(pybind11::module_& m) { (void)m; }
}  // namespace swnas
