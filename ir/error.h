// graft's exception types. Every error names the model element at fault.
#pragma once

#include "ir/api.h"

#include <stdexcept>
#include <string>

namespace graft {

// A model or input that graft refuses: bad file, invalid graph, wrong input shape or type.
// Python sees it as graft.InvalidArgument (a subclass of ValueError).
class GRAFT_API InvalidArgument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Something graft cannot do: an op with no kernel, a provider that was not built.
// Python sees it as graft.NotImplemented (a subclass of RuntimeError).
class GRAFT_API NotImplemented : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A failure while running; Python sees it as graft.Fail (a subclass of RuntimeError).
class GRAFT_API Fail : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace graft
