// The flag behind graft.RunOptions.terminate: Python sets it from any thread, a run in progress
// reads it before each node (RunOptions::terminate).
#pragma once

#include <atomic>

namespace graft::python {

struct TerminateFlag {
  std::atomic<bool> value{false};
};

}  // namespace graft::python
