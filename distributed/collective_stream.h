// A thread of its own on which collectives run in submission order, so that a graph node's
// collective overlaps the nodes after it (the bucketed gradient all-reduce of data-parallel
// training overlaps the rest of backward). Every rank submits its collectives in the same order
// (graph order), and the stream keeps that order, as MPI and NCCL require.
#pragma once

#include <functional>
#include <future>
#include <string>

#include "ir/api.h"

namespace graft::distributed {

class Communicator;

// Runs `work` on the stream's thread after everything submitted before it. The future holds
// work's exception, if it throws. Callers wait for their futures before the buffers `work`
// touches are reused; the thread is started on first use.
GRAFT_API std::future<void> submit_collective(std::function<void()> work);

// Runs `work` (a collective of `comm`, on behalf of `label`: errors name it) in order with
// whatever the stream holds and waits for it: on the stream when comm has several ranks and the
// stream has been used, else on this thread. A collective node that must finish before
// it returns uses this, so it never overtakes one still on the stream.
GRAFT_API void run_collective_in_order(const Communicator& comm, const std::string& label,
                                       const std::function<void()>& work);

// Whether data-parallel collectives go to the stream, for ranks that compute with
// `compute_threads` threads each. GRAFT_OVERLAP_COLLECTIVES=1 or 0 decides; unset, only when the
// machine has a core to spare for the stream's thread: at least (compute_threads + 1) per rank
// on this node (OMPI_COMM_WORLD_LOCAL_SIZE or MPI_LOCALNRANKS ranks). Without one, the stream's
// thread (MPI polls while it waits) takes its cycles from the computing threads, and the
// overlap costs more than it saves.
GRAFT_API bool overlap_collectives(int compute_threads);

}  // namespace graft::distributed
