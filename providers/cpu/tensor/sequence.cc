// Sequence ops: build, edit and read sequences of tensors, and convert between a sequence and
// a split or concatenated tensor.
#include <algorithm>

#include "exec/kernel.h"
#include "providers/cpu/tensor/tensor_util.h"

namespace graft {
namespace {

const Value& sequence_input(const KernelContext& ctx, int i) {
  const Value& v = ctx.input_value(i);
  if (v.kind() != Value::Kind::Sequence)
    ctx.fail("input " + std::to_string(i) + " is not a sequence");
  return v;
}

// Reads the optional position input `i`, defaulting to `fallback`, and maps it from
// [-size, size - 1 + extra] to [0, size - 1 + extra].
int64_t position(const KernelContext& ctx, int i, int64_t size, int64_t fallback, int64_t extra) {
  int64_t pos = fallback;
  if (ctx.has_input(i)) {
    const Tensor& t = ctx.input(i);
    if (t.size() != 1) ctx.fail("position must be a scalar");
    pos = t.scalar_as_int();
  }
  if (pos < -size || pos >= size + extra) {
    ctx.fail("position " + std::to_string(pos) + " is out of range for a sequence of " +
             std::to_string(size));
  }
  return pos < 0 ? pos + size : pos;
}

DType checked_dtype(const KernelContext& ctx, const Value& seq, const Tensor& t) {
  if (seq.elem_dtype() != DType::Undefined && seq.elem_dtype() != t.dtype()) {
    ctx.fail(std::string("tensor of dtype ") + dtype_name(t.dtype()) +
             " does not match the sequence's " + dtype_name(seq.elem_dtype()));
  }
  return t.dtype();
}

class SequenceEmpty final : public Kernel {
 public:
  explicit SequenceEmpty(const KernelInfo& info)
      : dtype_(static_cast<DType>(info.attr_int("dtype", static_cast<int64_t>(DType::Float)))) {}
  void compute(KernelContext& ctx) override { ctx.set_output(0, Value::sequence({}, dtype_)); }

 private:
  DType dtype_;
};

class SequenceConstruct final : public Kernel {
 public:
  explicit SequenceConstruct(const KernelInfo&) {}
  void compute(KernelContext& ctx) override {
    std::vector<Value> elements;
    const DType dtype = ctx.input(0).dtype();
    for (int i = 0; i < ctx.num_inputs(); ++i) {
      const Tensor& t = ctx.input(i);
      if (t.dtype() != dtype) ctx.fail("inputs differ in dtype");
      elements.emplace_back(t);
    }
    ctx.set_output(0, Value::sequence(std::move(elements), dtype));
  }
};

class SequenceInsert final : public Kernel {
 public:
  explicit SequenceInsert(const KernelInfo&) {}
  void compute(KernelContext& ctx) override {
    const Value& seq = sequence_input(ctx, 0);
    const Tensor& t = ctx.input(1);
    const DType dtype = checked_dtype(ctx, seq, t);
    std::vector<Value> elements = seq.elements();
    const auto size = static_cast<int64_t>(elements.size());
    const int64_t pos = position(ctx, 2, size, size, 1);
    elements.insert(elements.begin() + pos, Value(t));
    ctx.set_output(0, Value::sequence(std::move(elements), dtype));
  }
};

class SequenceAt final : public Kernel {
 public:
  explicit SequenceAt(const KernelInfo&) {}
  void compute(KernelContext& ctx) override {
    const Value& seq = sequence_input(ctx, 0);
    if (!ctx.has_input(1)) ctx.fail("position is required");
    const auto size = static_cast<int64_t>(seq.elements().size());
    const int64_t pos = position(ctx, 1, size, 0, 0);
    ctx.set_output(0, seq.elements()[static_cast<size_t>(pos)]);
  }
};

class SequenceErase final : public Kernel {
 public:
  explicit SequenceErase(const KernelInfo&) {}
  void compute(KernelContext& ctx) override {
    const Value& seq = sequence_input(ctx, 0);
    std::vector<Value> elements = seq.elements();
    const auto size = static_cast<int64_t>(elements.size());
    if (size == 0) ctx.fail("cannot erase from an empty sequence");
    const int64_t pos = position(ctx, 1, size, -1, 0);
    elements.erase(elements.begin() + pos);
    ctx.set_output(0, Value::sequence(std::move(elements), seq.elem_dtype()));
  }
};

class SequenceLength final : public Kernel {
 public:
  explicit SequenceLength(const KernelInfo&) {}
  void compute(KernelContext& ctx) override {
    const auto size = static_cast<int64_t>(sequence_input(ctx, 0).elements().size());
    ctx.output(0, DType::Int64, {}).data<int64_t>()[0] = size;
  }
};

// Without `split` the axis is cut into pieces of 1, squeezed away unless keepdims; a scalar
// `split` is a chunk length (the last chunk may be shorter); a 1-D `split` lists the lengths.
class SplitToSequence final : public Kernel {
 public:
  explicit SplitToSequence(const KernelInfo& info)
      : axis_(info.attr_int("axis", 0)), keepdims_(info.attr_int("keepdims", 1) != 0) {}

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() == 0) ctx.fail("cannot split a scalar");
    const int64_t axis = tensor_ops::normalize_axis(ctx, axis_, x.rank());
    const int64_t dim = x.dim(axis);
    std::vector<int64_t> sizes;
    bool squeeze = false;
    if (!ctx.has_input(1)) {
      sizes.assign(static_cast<size_t>(dim), 1);
      squeeze = !keepdims_;
    } else {
      const Tensor& split = ctx.input(1);
      if (split.rank() == 0) {
        const int64_t chunk = split.scalar_as_int();
        if (chunk <= 0) ctx.fail("split must be positive");
        for (int64_t begin = 0; begin < dim; begin += chunk) {
          sizes.push_back(std::min(chunk, dim - begin));
        }
      } else {
        sizes = split.to_int_vector();
        int64_t total = 0;
        for (int64_t s : sizes) {
          if (s < 0) ctx.fail("split lengths must be non-negative");
          total += s;
        }
        if (total != dim) {
          ctx.fail("split lengths " + shape_to_string(sizes) + " do not add up to the axis dim " +
                   std::to_string(dim));
        }
      }
    }
    std::vector<Value> elements;
    for (Tensor& piece : tensor_ops::split_tensor(x, axis, sizes)) {
      if (squeeze) {
        Shape shape = piece.shape();
        shape.erase(shape.begin() + axis);
        piece = piece.reshaped(shape);
      }
      elements.emplace_back(std::move(piece));
    }
    ctx.set_output(0, Value::sequence(std::move(elements), x.dtype()));
  }

 private:
  int64_t axis_;
  bool keepdims_;
};

// With new_axis the tensors are stacked along a new axis instead of joined along an existing
// one.
class ConcatFromSequence final : public Kernel {
 public:
  explicit ConcatFromSequence(const KernelInfo& info)
      : axis_(info.required_int("axis")), new_axis_(info.attr_int("new_axis", 0) != 0) {}

  void compute(KernelContext& ctx) override {
    const Value& seq = sequence_input(ctx, 0);
    if (seq.elements().empty()) ctx.fail("cannot concatenate an empty sequence");
    std::vector<Tensor> parts;
    for (const Value& v : seq.elements()) parts.push_back(v.tensor());
    const int64_t rank = parts[0].rank() + (new_axis_ ? 1 : 0);
    if (rank == 0) ctx.fail("cannot concatenate scalars");
    const int64_t axis = tensor_ops::normalize_axis(ctx, axis_, rank);
    if (new_axis_) {
      for (Tensor& t : parts) {
        if (t.rank() + 1 != rank) ctx.fail("sequence elements differ in rank");
        Shape shape = t.shape();
        shape.insert(shape.begin() + axis, 1);
        t = t.reshaped(shape);
      }
    }
    ctx.set_output(0, tensor_ops::concat_tensors(ctx, parts, axis));
  }

 private:
  int64_t axis_;
  bool new_axis_;
};

}  // namespace

GRAFT_CPU_KERNELS(tensor_sequence) {
  reg.add({"", "SequenceEmpty", 11, 1 << 30, {}, 0, make<SequenceEmpty>});
  reg.add({"", "SequenceConstruct", 11, 1 << 30, {}, 0, make<SequenceConstruct>});
  reg.add({"", "SequenceInsert", 11, 1 << 30, {}, 0, make<SequenceInsert>});
  reg.add({"", "SequenceAt", 11, 1 << 30, {}, 0, make<SequenceAt>});
  reg.add({"", "SequenceErase", 11, 1 << 30, {}, 0, make<SequenceErase>});
  reg.add({"", "SequenceLength", 11, 1 << 30, {}, 0, make<SequenceLength>});
  reg.add({"", "SplitToSequence", 11, 1 << 30, {}, 0, make<SplitToSequence>});
  reg.add({"", "ConcatFromSequence", 11, 1 << 30, {}, 0, make<ConcatFromSequence>});
}

}  // namespace graft
