// If: runs one of two nested graphs, chosen by a boolean scalar.
#include "exec/kernel.h"

namespace graft {
namespace {

class If : public Kernel {
 public:
  explicit If(const KernelInfo& info) {
    if (!info.attr_graph("then_branch") || !info.attr_graph("else_branch")) {
      info.fail("needs both then_branch and else_branch graphs");
    }
  }

  void compute(KernelContext& ctx) override {
    const Tensor& cond = ctx.input(0);
    if (cond.size() != 1)
      ctx.fail("condition must hold exactly one element, got shape " +
               shape_to_string(cond.shape()));
    bool take_then = cond.scalar_as_double(0) != 0.0;
    SubgraphRunner& branch = ctx.subgraph(take_then ? "then_branch" : "else_branch");
    std::vector<Value> outs = branch.run({});
    if (static_cast<int>(outs.size()) != ctx.num_outputs()) {
      ctx.fail(std::string(take_then ? "then_branch" : "else_branch") + " returned " +
               std::to_string(outs.size()) + " values for " + std::to_string(ctx.num_outputs()) +
               " outputs");
    }
    for (int i = 0; i < ctx.num_outputs(); ++i)
      ctx.set_output(i, std::move(outs[static_cast<size_t>(i)]));
  }
};

}  // namespace

GRAFT_CPU_KERNELS(if_op) { reg.add({"", "If", 1, 1 << 30, {}, 0, make<If>}); }

}  // namespace graft
