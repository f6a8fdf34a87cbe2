// Loop: runs its body while the trip count and the condition allow, carrying values from one
// iteration to the next and stacking per-iteration scan outputs.
#include "exec/kernel.h"
#include "exec/tensor_proto.h"
#include "ir/model.h"
#include "onnx/onnx_pb.h"
#include "providers/cpu/controlflow/stacking.h"

namespace graft {
namespace {

class Loop : public Kernel {
 public:
  explicit Loop(const KernelInfo& info) {
    const ir::Graph* body = info.attr_graph("body");
    if (!body) info.fail("has no body graph");
    num_carried_ = info.num_inputs() - 2;
    if (num_carried_ < 0)
      info.fail("needs at least the M and cond inputs (they may be empty names)");
    if (body->inputs.size() != static_cast<size_t>(num_carried_ + 2)) {
      info.fail("body takes " + std::to_string(body->inputs.size()) + " inputs, expected " +
                std::to_string(num_carried_ + 2) + " (iteration, condition, carried values)");
    }
    if (body->outputs.size() < static_cast<size_t>(num_carried_ + 1)) {
      info.fail("body returns " + std::to_string(body->outputs.size()) +
                " values, expected at least " + std::to_string(num_carried_ + 1));
    }
    for (size_t i = static_cast<size_t>(num_carried_ + 1); i < body->outputs.size(); ++i) {
      const auto& t = body->outputs[i].type;
      scan_dtypes_.push_back(t ? elem_dtype_of(*t) : DType::Float);
      Shape s{0};
      if (t && t->has_tensor_type() && t->tensor_type().has_shape()) {
        for (const auto& d : t->tensor_type().shape().dim())
          s.push_back(d.has_dim_value() ? d.dim_value() : 0);
      }
      empty_scan_shapes_.push_back(s);
    }
  }

  void compute(KernelContext& ctx) override {
    // M is an int64 and cond a bool, one element each (the operator's type constraints).
    auto check = [&](int i, DType dtype, const char* name) {
      const Tensor& t = ctx.input(i);
      if (t.dtype() != dtype || t.size() != 1) {
        ctx.fail(std::string("input '") + name + "' must be one " + dtype_name(dtype) + ", got " +
                 dtype_name(t.dtype()) + " " + shape_to_string(t.shape()));
      }
    };
    if (ctx.has_input(0)) check(0, DType::Int64, "M");
    if (ctx.has_input(1)) check(1, DType::Bool, "cond");
    int64_t max_trips = ctx.has_input(0) ? ctx.input(0).data<int64_t>()[0] : INT64_MAX;
    bool cond = ctx.has_input(1) ? ctx.input(1).data<bool>()[0] : true;
    std::vector<Value> carried;
    for (int i = 0; i < num_carried_; ++i) carried.push_back(ctx.input_value(2 + i));
    const size_t num_scan = scan_dtypes_.size();
    std::vector<std::vector<Value>> scans(num_scan);
    SubgraphRunner& body = ctx.subgraph("body");
    for (int64_t iter = 0; iter < max_trips && cond; ++iter) {
      std::vector<Value> in;
      Tensor it(DType::Int64, {});
      it.data<int64_t>()[0] = iter;
      Tensor c(DType::Bool, {});
      c.data<bool>()[0] = cond;
      in.push_back(it);
      in.push_back(c);
      for (auto& v : carried) in.push_back(v);
      std::vector<Value> out = body.run(in);
      if (!out[0].is_tensor() || out[0].tensor().size() != 1 ||
          out[0].tensor().dtype() != DType::Bool) {
        ctx.fail("body's condition output is not one bool");
      }
      cond = out[0].tensor().data<bool>()[0];
      for (int i = 0; i < num_carried_; ++i)
        carried[static_cast<size_t>(i)] = std::move(out[static_cast<size_t>(1 + i)]);
      for (size_t k = 0; k < num_scan; ++k)
        scans[k].push_back(std::move(out[static_cast<size_t>(1 + num_carried_) + k]));
    }
    for (int i = 0; i < num_carried_; ++i)
      ctx.set_output(i, std::move(carried[static_cast<size_t>(i)]));
    for (size_t k = 0; k < num_scan; ++k) {
      int out_index = num_carried_ + static_cast<int>(k);
      if (scans[k].empty()) {
        ctx.output(out_index, scan_dtypes_[k], empty_scan_shapes_[k]);
        continue;
      }
      if (!scans[k][0].is_tensor()) {
        // Scan outputs of sequence type collect into a sequence.
        ctx.set_output(out_index, Value::sequence(scans[k], scans[k][0].elem_dtype()));
        continue;
      }
      std::vector<Tensor> parts;
      for (auto& v : scans[k]) parts.push_back(v.tensor());
      try {
        ctx.set_output(out_index, stack_along(parts, 0));
      } catch (const InvalidArgument& e) {
        ctx.fail(std::string("scan output ") + std::to_string(k) + ": " + e.what());
      }
    }
  }

 private:
  int num_carried_ = 0;
  std::vector<DType> scan_dtypes_;
  std::vector<Shape> empty_scan_shapes_;
};

}  // namespace

GRAFT_CPU_KERNELS(loop) { reg.add({"", "Loop", 1, 1 << 30, {}, 0, make<Loop>}); }

}  // namespace graft
