// What the layout passes (nchwc.cc, nhwc_int8.cc) share: fresh value and node names, and which
// rewritten values the rest of the graph still reads in the old layout.
#pragma once

#include <set>
#include <string>

#include "ir/model.h"

namespace graft::ir {

// The names a graph uses (node inputs and outputs, graph inputs, initializers), and new ones.
class NameSource {
 public:
  explicit NameSource(const Graph& g);
  // `base`, or `base_1`, `base_2`, ...: the first no one uses; reserved from then on.
  std::string fresh(const std::string& base);

 private:
  std::set<std::string> taken_;
};

// Whether something other than the nodes in `rewritten` reads `value`: another node (a nested
// graph's reader included), or the graph's outputs.
bool read_outside(const Graph& g, const std::string& value, const std::set<const Node*>& rewritten);

}  // namespace graft::ir
