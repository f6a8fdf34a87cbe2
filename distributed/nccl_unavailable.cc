// The NCCL backend when graft is built without NCCL.
#include "distributed/backends.h"
#include "exec/error.h"

namespace graft::distributed {

std::unique_ptr<Communicator> make_nccl_communicator(Communicator&, int, void*) {
  throw NotImplemented("graft was built without NCCL: rebuild with -DGRAFT_USE_NCCL=ON");
}

bool built_with_nccl() { return false; }

}  // namespace graft::distributed
