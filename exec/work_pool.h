// Worker threads for short loops of equal units (the blocks of a matrix product), built to lose
// little when other processes share the cores.
//
// An OpenMP parallel region ends at a barrier that waits for every thread of its team, so when
// another process holds a core, the region lasts until the worker on that core is scheduled
// again: a time slice (milliseconds) for a product that takes a tenth of one. Here the calling
// thread claims units like any worker and returns as soon as every unit is done: it waits for
// workers in the middle of a unit, never for one that has not arrived. Idle workers spin briefly,
// then sleep until the next loop.
#pragma once

#include <cstdint>
#include <type_traits>

namespace graft {

namespace detail {
void run_units(int64_t units, void (*call)(void* body, int64_t unit), void* body);
}

// Calls body(unit) once for every unit in [0, units), on the calling thread and up to
// omp_get_max_threads() - 1 pool workers (the session's intra_op_num_threads). Runs every unit on
// the calling thread when it is already inside an OpenMP region or a pool loop, or while another
// thread's loop holds the pool. OpenMP regions inside a unit run on the unit's thread alone. An
// exception thrown by a unit reaches the caller once the loop is over.
template <typename Body>
void run_units(int64_t units, Body&& body) {
  detail::run_units(
      units, [](void* b, int64_t unit) { (*static_cast<std::remove_reference_t<Body>*>(b))(unit); },
      const_cast<void*>(static_cast<const void*>(&body)));
}

}  // namespace graft
