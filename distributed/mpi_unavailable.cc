// The MPI backend when graft is built without MPI.
#include "distributed/backends.h"
#include "exec/error.h"

namespace graft::distributed {

std::unique_ptr<Communicator> make_mpi_communicator() {
  throw NotImplemented("graft was built without MPI: rebuild with -DGRAFT_USE_MPI=ON");
}

bool built_with_mpi() { return false; }

}  // namespace graft::distributed
