// SequenceMap: runs the body graph once per element of the input sequence, feeding the matching
// element of each additional sequence input (or the whole tensor for tensor inputs), and
// collects each body output into an output sequence.
#include <string>
#include <vector>

#include "exec/kernel.h"
#include "exec/tensor_proto.h"
#include "ir/model.h"
#include "onnx/onnx_pb.h"

namespace graft {
namespace {

class SequenceMap final : public Kernel {
 public:
  explicit SequenceMap(const KernelInfo& info) {
    const ir::Graph* body = info.attr_graph("body");
    if (!body) info.fail("has no body graph");
    if (body->inputs.size() != static_cast<size_t>(info.num_inputs())) {
      info.fail("body takes " + std::to_string(body->inputs.size()) + " inputs but the node has " +
                std::to_string(info.num_inputs()));
    }
    if (body->outputs.size() != static_cast<size_t>(info.num_outputs())) {
      info.fail("body returns " + std::to_string(body->outputs.size()) +
                " values but the node has " + std::to_string(info.num_outputs()) + " outputs");
    }
    for (const auto& out : body->outputs) {
      out_dtypes_.push_back(out.type ? elem_dtype_of(*out.type) : DType::Undefined);
    }
  }

  void compute(KernelContext& ctx) override {
    const Value& seq = ctx.input_value(0);
    if (seq.kind() != Value::Kind::Sequence) ctx.fail("input 0 is not a sequence");
    const size_t length = seq.elements().size();
    for (int i = 1; i < ctx.num_inputs(); ++i) {
      const Value& v = ctx.input_value(i);
      if (v.kind() == Value::Kind::Sequence && v.elements().size() != length) {
        ctx.fail("sequence input " + std::to_string(i) + " has " +
                 std::to_string(v.elements().size()) + " elements, expected " +
                 std::to_string(length));
      }
      if (v.kind() != Value::Kind::Sequence && !v.is_tensor()) {
        ctx.fail("input " + std::to_string(i) + " is neither a tensor nor a sequence");
      }
    }
    SubgraphRunner& body = ctx.subgraph("body");
    std::vector<std::vector<Value>> collected(out_dtypes_.size());
    for (size_t k = 0; k < length; ++k) {
      std::vector<Value> feeds;
      for (int i = 0; i < ctx.num_inputs(); ++i) {
        const Value& v = ctx.input_value(i);
        feeds.push_back(v.kind() == Value::Kind::Sequence ? v.elements()[k] : v);
      }
      std::vector<Value> out = body.run(feeds);
      if (out.size() != collected.size()) ctx.fail("body returned the wrong number of values");
      for (size_t j = 0; j < out.size(); ++j) {
        if (!out[j].is_tensor()) ctx.fail("body output " + std::to_string(j) + " is not a tensor");
        collected[j].push_back(std::move(out[j]));
      }
    }
    for (size_t j = 0; j < collected.size(); ++j) {
      DType dtype = out_dtypes_[j];
      if (!collected[j].empty()) dtype = collected[j][0].tensor().dtype();
      ctx.set_output(static_cast<int>(j), Value::sequence(std::move(collected[j]), dtype));
    }
  }

 private:
  std::vector<DType> out_dtypes_;
};

}  // namespace

GRAFT_CPU_KERNELS(misc_sequence_map) {
  reg.add({"", "SequenceMap", 17, 1 << 30, {}, 0, make<SequenceMap>});
}

}  // namespace graft
