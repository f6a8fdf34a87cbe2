// Factories of the communicator backends. A backend graft was built without still links: its
// factory throws NotImplemented naming the CMake option that builds it.
#pragma once

#include <memory>

#include "distributed/communicator.h"

namespace graft::distributed {

// A communicator that is rank 0 of 1: every collective copies or does nothing.
GRAFT_API std::unique_ptr<Communicator> make_single_process_communicator();

// MPI_COMM_WORLD (duplicated, with MPI_ERRORS_RETURN). Initializes MPI when nobody has, and then
// finalizes it when the communicator is destroyed.
GRAFT_API std::unique_ptr<Communicator> make_mpi_communicator();
GRAFT_API bool built_with_mpi();

// An NCCL communicator over the ranks of `bootstrap` (which carries NCCL's unique id from rank 0),
// on CUDA device `device`, running its collectives on `cuda_stream` (a cudaStream_t; nullptr: a
// stream of its own). Buffers passed to it are device memory. Each call returns when the
// collective has completed on the stream.
GRAFT_API std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, int device,
                                                               void* cuda_stream);
GRAFT_API bool built_with_nccl();

}  // namespace graft::distributed
