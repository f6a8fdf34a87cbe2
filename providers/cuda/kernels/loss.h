// SoftmaxCrossEntropyLoss and NegativeLogLikelihoodLoss. Scores are [N, C, D...] and labels
// [N, D...]: sample s = (n, d) picks its label t = labels[s] and loses -w[t] * p[s, t], where p
// are the log-probabilities (NegativeLogLikelihoodLoss: its input; SoftmaxCrossEntropyLoss: the
// LogSoftmax of the scores over C, from one LogSumExp reduction per sample) and w the weights
// (all 1 without them). A sample labelled ignore_index loses 0 with weight 0. 'none' keeps the
// per-sample losses, 'sum' adds them and 'mean' divides the sum by the total weight, in one
// reduce_rows row over the samples.
//
// A label outside [0, C) that is not ignore_index makes its loss NaN: the device cannot raise,
// and a NaN reaches the caller where an out-of-bounds read would not.
#pragma once

#include <string>

#include "exec/reduce_shapes.h"
#include "providers/cuda/kernels/backend.h"
#include "providers/cuda/kernels/reduce.h"
#include "providers/cuda/kernels/softmax.h"

namespace graft::cuda {

// One sample's loss and weight.
template <typename T, typename L>
struct SamplePick {
  using A = Acc<T>;
  const T* scores;
  const L* labels;
  const T* weights;      // nullptr without weights
  const A* log_sum_exp;  // per sample, subtracted from the score; nullptr for log-probabilities
  AxisRows rows;         // the samples of [N, C, D...] along C
  bool has_ignore_index;
  int64_t ignore_index;
  GRAFT_HD SumPair<A> operator()(int64_t s) const {
    const auto t = static_cast<int64_t>(labels[s]);
    if (has_ignore_index && t == ignore_index) return {A(0), A(0)};
    if (t < 0 || t >= rows.n) {
      const A nan = static_cast<A>(bits_as_float(0x7fc00000u));
      return {nan, nan};
    }
    A p = widen(scores[rows(s, t)]);
    if (log_sum_exp != nullptr) p -= log_sum_exp[s];
    const A w = weights != nullptr ? static_cast<A>(widen(weights[t])) : A(1);
    return {-w * p, w};
  }
};

template <typename T, typename L>
struct SampleLossFn {
  SamplePick<T, L> pick;
  T* loss;
  GRAFT_HD void operator()(int64_t s) const { loss[s] = narrow<T>(pick(s).first); }
};

// 'sum' and 'mean': the samples are the columns of a single row.
template <typename T, typename L>
struct TotalLossFn {
  using Acc = SumPair<cuda::Acc<T>>;
  SamplePick<T, L> pick;
  T* loss;
  bool mean;
  GRAFT_HD Acc identity() const { return {cuda::Acc<T>(0), cuda::Acc<T>(0)}; }
  GRAFT_HD Acc load(int64_t, int64_t s) const { return pick(s); }
  GRAFT_HD Acc combine(Acc a, Acc b) const { return Acc::combine(a, b); }
  GRAFT_HD void store(int64_t, Acc a) const {
    loss[0] = narrow<T>(mean ? a.first / a.second : a.first);
  }
};

template <class B>
class LossKernel final : public DeviceKernel<B> {
 public:
  LossKernel(const KernelInfo& info, bool softmax)
      : DeviceKernel<B>(info),
        softmax_(softmax),
        reduction_(info.attr_string("reduction", "mean")),
        has_ignore_index_(info.has_attr("ignore_index")),
        ignore_index_(info.attr_int("ignore_index", 0)) {
    if (reduction_ != "none" && reduction_ != "sum" && reduction_ != "mean")
      info.fail("reduction must be 'none', 'sum' or 'mean', not '" + reduction_ + "'");
  }

  void compute(KernelContext& ctx) override {
    const Tensor& scores = ctx.input(0);
    const Tensor& labels = ctx.input(1);
    const Tensor* weights = ctx.has_input(2) ? &ctx.input(2) : nullptr;
    if (scores.rank() < 2)
      ctx.fail("scores must have rank 2 or more, got " + shape_to_string(scores.shape()));
    Shape label_shape = scores.shape();
    label_shape.erase(label_shape.begin() + 1);
    if (labels.shape() != label_shape)
      ctx.fail("labels " + shape_to_string(labels.shape()) + " do not match scores " +
               shape_to_string(scores.shape()) + " (expected " + shape_to_string(label_shape) +
               ")");
    if (labels.dtype() != DType::Int32 && labels.dtype() != DType::Int64)
      ctx.fail(std::string("labels must be int32 or int64, not ") + dtype_name(labels.dtype()));
    const int64_t classes = scores.dim(1);
    if (weights != nullptr &&
        (weights->shape() != Shape{classes} || weights->dtype() != scores.dtype()))
      ctx.fail("weights must be a vector of the " + std::to_string(classes) +
               " classes in the scores' type, got " + shape_to_string(weights->shape()));
    const AxisSplit split = split_at_axis(scores.shape(), 1, false);
    const AxisRows rows{classes, split.inner};
    const int64_t samples = split.outer * split.inner;
    Tensor& loss = ctx.output(0, scores.dtype(), reduction_ == "none" ? label_shape : Shape{});
    Tensor* log_prob = softmax_ && ctx.num_outputs() > 1 && ctx.has_output(1)
                           ? &ctx.output(1, scores.dtype(), scores.shape())
                           : nullptr;
    dispatch_device_float(scores.dtype(), ctx.describe().c_str(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      using A = Acc<T>;
      Tensor log_sum_exp;
      if (softmax_) {
        log_sum_exp = scratch<A>(this->backend(), samples);
        this->backend().reduce_rows(
            samples, classes,
            SoftmaxStatsFn<T>{scores.data<T>(), log_sum_exp.data<A>(), nullptr, rows, true});
        if (log_prob != nullptr) {
          this->backend().for_each(
              scores.size(), SoftmaxApplyFn<T, true>{scores.data<T>(), log_prob->template data<T>(),
                                                     log_sum_exp.data<A>(), nullptr, rows});
        }
      }
      auto run = [&](auto label_tag) {
        using L = typename decltype(label_tag)::type;
        const SamplePick<T, L> pick{scores.data<T>(),
                                    labels.data<L>(),
                                    weights != nullptr ? weights->data<T>() : nullptr,
                                    softmax_ ? log_sum_exp.data<A>() : nullptr,
                                    rows,
                                    has_ignore_index_,
                                    ignore_index_};
        if (reduction_ == "none") {
          this->backend().for_each(samples, SampleLossFn<T, L>{pick, loss.data<T>()});
        } else {
          this->backend().reduce_rows(
              1, samples, TotalLossFn<T, L>{pick, loss.data<T>(), reduction_ == "mean"});
        }
      };
      if (labels.dtype() == DType::Int64)
        run(TypeTag<int64_t>{});
      else
        run(TypeTag<int32_t>{});
    });
  }

 private:
  bool softmax_;
  std::string reduction_;
  bool has_ignore_index_;
  int64_t ignore_index_;
};

template <class B>
void register_loss(KernelRegistry& reg) {
  constexpr int kAny = 1 << 30;
  reg.add({"", "SoftmaxCrossEntropyLoss", 12, kAny, kDeviceFloatTypes, 0,
           [](const KernelInfo& info) { return std::make_unique<LossKernel<B>>(info, true); }});
  reg.add({"", "NegativeLogLikelihoodLoss", 12, kAny, kDeviceFloatTypes, 0,
           [](const KernelInfo& info) { return std::make_unique<LossKernel<B>>(info, false); }});
}

}  // namespace graft::cuda
