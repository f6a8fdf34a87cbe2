// Constant folding's evaluator (ir::ConstantEvaluator): computes a node whose inputs are all
// constants with the CPU provider's kernels, while a session is created. It lives in exec
// because ir executes nothing: ir::fold_constants decides what to fold, this computes it.
#pragma once

#include "ir/transforms/optimize.h"

namespace graft {

// An evaluator for nodes of `model` (referenced, not copied: it must outlive the evaluator).
// It returns no tensors, rather than throwing, for a node without a CPU kernel, with a
// non-tensor output, or whose kernel fails: the node then stays and reports its error when run.
ir::ConstantEvaluator cpu_constant_evaluator(const ir::Model& model);

}  // namespace graft
