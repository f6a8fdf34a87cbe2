#include "exec/constant_evaluator.h"

#include "exec/kernel.h"
#include "exec/provider.h"
#include "exec/tensor_proto.h"
#include "onnx/onnx_pb.h"

namespace graft {

ir::ConstantEvaluator cpu_constant_evaluator(const ir::Model& model) {
  return [&model](const ir::Node& n, const std::vector<const onnx::TensorProto*>& protos) {
    std::vector<std::shared_ptr<onnx::TensorProto>> result;
    try {
      std::vector<Value> inputs(protos.size());
      std::vector<const Value*> input_ptrs;
      std::vector<const Tensor*> constants;
      std::vector<DType> dtypes;
      for (size_t i = 0; i < protos.size(); ++i) {
        if (protos[i]) inputs[i] = Value(tensor_from_proto(*protos[i]));
        input_ptrs.push_back(protos[i] ? &inputs[i] : nullptr);
        constants.push_back(protos[i] ? &inputs[i].tensor() : nullptr);
        dtypes.push_back(protos[i] ? inputs[i].tensor().dtype() : DType::Undefined);
      }
      const int since = since_version_of(model, n);
      const KernelDef* def = cpu_kernel_registry().find(n.domain, n.op_type, since, dtypes, &n);
      if (!def) return result;
      const std::unique_ptr<Kernel> kernel = def->factory(KernelInfo(n, since, dtypes, constants));
      std::vector<Value> outputs(n.outputs.size());
      std::vector<Value*> output_ptrs;
      for (auto& v : outputs) output_ptrs.push_back(&v);
      const std::string desc = n.describe();
      KernelContext ctx(desc, input_ptrs, output_ptrs, nullptr);
      kernel->compute(ctx);
      if (auto finish = ctx.take_finish()) finish();
      for (size_t k = 0; k < outputs.size(); ++k) {
        if (n.outputs[k].empty()) continue;
        if (!outputs[k].is_tensor()) return decltype(result){};
        result.push_back(std::make_shared<onnx::TensorProto>());
        tensor_to_proto(outputs[k].tensor(), n.outputs[k], result.back().get());
      }
    } catch (const std::exception&) {
      result.clear();
    }
    return result;
  };
}

}  // namespace graft
