#include "providers/cpu/rnn/rnn_util.h"

#include <cctype>
#include <optional>

namespace graft::cpu::rnn {
namespace {

using Kind = Activation::Kind;

struct ActivationSpec {
  const char* name;
  Kind kind;
  bool uses_alpha, uses_beta;
  float alpha, beta;  // defaults
};

constexpr ActivationSpec kActivations[] = {
    {"relu", Kind::Relu, false, false, 0.0f, 0.0f},
    {"tanh", Kind::Tanh, false, false, 0.0f, 0.0f},
    {"sigmoid", Kind::Sigmoid, false, false, 0.0f, 0.0f},
    {"affine", Kind::Affine, true, true, 1.0f, 0.0f},
    {"leakyrelu", Kind::LeakyRelu, true, false, 0.01f, 0.0f},
    {"thresholdedrelu", Kind::ThresholdedRelu, true, false, 1.0f, 0.0f},
    {"scaledtanh", Kind::ScaledTanh, true, true, 1.0f, 1.0f},
    {"hardsigmoid", Kind::HardSigmoid, true, true, 0.2f, 0.5f},
    {"elu", Kind::Elu, true, false, 1.0f, 0.0f},
    {"softsign", Kind::Softsign, false, false, 0.0f, 0.0f},
    {"softplus", Kind::Softplus, false, false, 0.0f, 0.0f},
};

std::optional<ActivationSpec> find_activation(const std::string& name) {
  std::string lower = name;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const ActivationSpec& spec : kActivations)
    if (lower == spec.name) return spec;
  return std::nullopt;
}

// Assigns activation_alpha / activation_beta values to the activations: the values are
// consumed in order by the activations that take the parameter (as onnxruntime reads them);
// missing ones take the operator's default.
void assign_params(std::vector<Activation>& acts, const std::vector<ActivationSpec>& specs,
                   const std::vector<float>& values, bool beta) {
  size_t next = 0;
  for (size_t i = 0; i < acts.size(); ++i) {
    const bool used = beta ? specs[i].uses_beta : specs[i].uses_alpha;
    float value = beta ? specs[i].beta : specs[i].alpha;
    if (used && next < values.size()) value = values[next++];
    (beta ? acts[i].beta : acts[i].alpha) = value;
  }
}

}  // namespace

RecurrentAttrs::RecurrentAttrs(const KernelInfo& info, const std::vector<std::string>& defaults)
    : per_direction_(defaults.size()) {
  const std::string direction = info.attr_string("direction", "forward");
  if (direction == "bidirectional") {
    num_directions_ = 2;
  } else if (direction == "reverse") {
    reverse_only_ = true;
  } else if (direction != "forward") {
    info.fail("unknown direction '" + direction + "'");
  }
  const int64_t layout = info.attr_int("layout", 0);
  if (layout != 0 && layout != 1) info.fail("layout must be 0 or 1");
  batch_major_ = layout == 1;
  hidden_size_ = info.attr_int("hidden_size", 0);
  if (info.has_attr("hidden_size") && hidden_size_ <= 0) info.fail("hidden_size must be positive");
  has_clip_ = info.has_attr("clip");
  clip_ = info.attr_float("clip", 0.0f);
  if (has_clip_ && !(clip_ >= 0.0f)) info.fail("clip must not be negative");

  std::vector<std::string> names = info.attr_strings("activations");
  const size_t wanted = per_direction_ * static_cast<size_t>(num_directions_);
  if (names.empty()) {
    for (int d = 0; d < num_directions_; ++d)
      names.insert(names.end(), defaults.begin(), defaults.end());
  }
  std::vector<ActivationSpec> specs;
  for (const std::string& name : names) {
    const std::optional<ActivationSpec> spec = find_activation(name);
    if (!spec) info.fail("unknown activation '" + name + "'");
    specs.push_back(*spec);
  }
  activations_.resize(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) activations_[i].kind = specs[i].kind;
  assign_params(activations_, specs, info.attr_floats("activation_alpha"), false);
  assign_params(activations_, specs, info.attr_floats("activation_beta"), true);
  // One direction's list serves both directions of a bidirectional op.
  if (activations_.size() == per_direction_ && num_directions_ == 2) {
    const std::vector<Activation> one = activations_;
    activations_.insert(activations_.end(), one.begin(), one.end());
  }
  if (activations_.size() != wanted)
    info.fail("expected " + std::to_string(wanted) + " activations, got " +
              std::to_string(names.size()));
}

RecurrentDims check_inputs(const KernelContext& ctx, const RecurrentAttrs& attrs, int64_t gates,
                           bool lstm) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  const Tensor& r = ctx.input(2);
  if (x.rank() != 3) ctx.fail("X must have rank 3, got " + shape_to_string(x.shape()));
  if (w.rank() != 3 || r.rank() != 3)
    ctx.fail("W and R must have rank 3, got " + shape_to_string(w.shape()) + " and " +
             shape_to_string(r.shape()));
  RecurrentDims d;
  d.seq = attrs.batch_major() ? x.dim(1) : x.dim(0);
  d.batch = attrs.batch_major() ? x.dim(0) : x.dim(1);
  d.input = x.dim(2);
  d.dirs = attrs.num_directions();
  d.gates = gates;
  d.hidden = attrs.hidden_size() > 0 ? attrs.hidden_size() : r.dim(2);
  const int num_inputs = lstm ? 8 : 6;
  for (int i = 1; i < num_inputs; ++i)
    if (i != 4 && ctx.has_input(i) && ctx.input(i).dtype() != x.dtype())
      ctx.fail("input " + std::to_string(i) + " must have X's dtype " + dtype_name(x.dtype()));
  auto expect = [&](const Tensor& t, const Shape& shape, const char* name) {
    if (t.shape() != shape)
      ctx.fail(std::string(name) + " has shape " + shape_to_string(t.shape()) + ", expected " +
               shape_to_string(shape));
  };
  expect(w, {d.dirs, gates * d.hidden, d.input}, "W");
  expect(r, {d.dirs, gates * d.hidden, d.hidden}, "R");
  if (ctx.has_input(3)) expect(ctx.input(3), {d.dirs, 2 * gates * d.hidden}, "B");
  const Shape state =
      attrs.batch_major() ? Shape{d.batch, d.dirs, d.hidden} : Shape{d.dirs, d.batch, d.hidden};
  if (ctx.has_input(5)) expect(ctx.input(5), state, "initial_h");
  if (lstm && ctx.has_input(6)) expect(ctx.input(6), state, "initial_c");
  if (lstm && ctx.has_input(7)) expect(ctx.input(7), {d.dirs, 3 * d.hidden}, "P");
  if (ctx.has_input(4)) {
    const Tensor& lens = ctx.input(4);
    if (lens.dtype() != DType::Int32 && lens.dtype() != DType::Int64)
      ctx.fail("sequence_lens must be int32");
    expect(lens, {d.batch}, "sequence_lens");
    for (int64_t i = 0; i < d.batch; ++i) {
      const int64_t len = lens.scalar_as_int(i);
      if (len < 0 || len > d.seq)
        ctx.fail("sequence_lens[" + std::to_string(i) + "] = " + std::to_string(len) +
                 " is outside [0, " + std::to_string(d.seq) + "]");
    }
  }
  return d;
}

}  // namespace graft::cpu::rnn
