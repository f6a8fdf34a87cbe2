// Function inlining: replaces calls to model-local functions, and to standard ops defined by a
// function body when no kernel runs them directly, with the body's nodes.
#pragma once

#include <functional>

#include "ir/model.h"

namespace graft::ir {

// Decides whether a standard op node is kept as is (a kernel runs it). Receives the node and
// the since_version its schema resolves to.
using KeepNode = std::function<bool(const Node& node, int since_version)>;

// Inlines to a fixed point, in the main graph and in nested graphs. Model-local functions are
// always inlined. Throws InvalidArgument naming the node when a body cannot be built.
void inline_functions(Model& model, const KeepNode& keep);

}  // namespace graft::ir
