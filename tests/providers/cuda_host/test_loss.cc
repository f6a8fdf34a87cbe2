// The CUDA provider's SoftmaxCrossEntropyLoss and NegativeLogLikelihoodLoss
// (providers/cuda/kernels/loss.h), compiled for the host, against the CPU provider (which runs
// the ops' ONNX function bodies): every reduction, with and without weights, ignore_index inside
// and outside the classes, the log_prob output, extra dims after the classes, int32 and int64
// labels, and 1, 33 and 1025 classes; and the gradient graph of a LayerNormalization, Softmax and
// loss chain, whose fused gradient ops run on the device. float32 within 1e-5, the 16-bit floats
// within 1e-2.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>

#include "autodiff/gradient.h"
#include "ir/serialize.h"
#include "onnx/defs/parser.h"
#include "onnx/onnx_pb.h"
#include "providers/cuda/kernels/loss.h"
#include "tests/providers/cuda_host/host_backend.h"

namespace graft::test_util {
namespace {

const HostFamily family(&cuda::register_loss<HostBackend>);

double tolerance(DType dtype) {
  return dtype == DType::Float16 || dtype == DType::BFloat16 ? 1e-2 : 1e-5;
}

// Labels in [0, classes) for `shape`, every third one replaced by `ignored` when given.
Tensor labels_for(DType dtype, const Shape& shape, int64_t classes,
                  std::optional<int64_t> ignored = std::nullopt, uint64_t seed = 3) {
  const Tensor drawn = random_tensor(DType::Int64, shape, 0, static_cast<double>(classes), seed);
  std::vector<double> values(static_cast<size_t>(drawn.size()));
  for (size_t i = 0; i < values.size(); ++i) {
    values[i] = static_cast<double>(drawn.data<int64_t>()[i]);
    if (ignored && i % 3 == 1) values[i] = static_cast<double>(*ignored);
  }
  return tensor_of(dtype, shape, values);
}

struct LossCase {
  std::string op;
  DType dtype = DType::Float;
  Shape shape;  // of the scores, [N, C, D...]
  std::string reduction = "mean";
  bool weights = false;
  std::optional<int64_t> ignore_index = std::nullopt;
  bool log_prob = false;  // SoftmaxCrossEntropyLoss's second output
  DType label_type = DType::Int64;
  int64_t opset = 13;
};

void expect_loss_matches(const LossCase& l) {
  SCOPED_TRACE(l.op + " " + dtype_name(l.dtype) + " " + shape_to_string(l.shape) + " " +
               l.reduction + (l.weights ? " weighted" : "") +
               (l.ignore_index ? " ignore " + std::to_string(*l.ignore_index) : "") +
               (l.log_prob ? " log_prob" : "") + " labels " + dtype_name(l.label_type));
  const int64_t classes = l.shape[1];
  Shape label_shape = l.shape;
  label_shape.erase(label_shape.begin() + 1);
  // Log-probabilities for NegativeLogLikelihoodLoss, any scores for SoftmaxCrossEntropyLoss.
  const bool nll = l.op == "NegativeLogLikelihoodLoss";
  std::vector<Tensor> inputs = {random_tensor(l.dtype, l.shape, nll ? -4 : -3, nll ? 0 : 3, 1),
                                labels_for(l.label_type, label_shape, classes, l.ignore_index)};
  if (l.weights) inputs.push_back(random_tensor(l.dtype, {classes}, 0.2, 2, 2));
  const std::string reduction = l.reduction;
  const std::optional<int64_t> ignore_index = l.ignore_index;
  expect_op_matches_cpu({l.op, inputs, l.log_prob ? 2 : 1, l.opset,
                         [reduction, ignore_index](onnx::NodeProto& n) {
                           set_attr(n, "reduction", reduction);
                           if (ignore_index) set_attr(n, "ignore_index", *ignore_index);
                         }},
                        tolerance(l.dtype), 1e-5);
}

TEST(CudaHostLoss, EveryReductionWeightAndIgnoreIndex) {
  for (const char* op : {"SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss"}) {
    for (const Shape& shape : std::vector<Shape>{{6, 5}, {3, 5, 4}, {2, 4, 3, 2}}) {
      for (const char* reduction : {"none", "sum", "mean"}) {
        for (bool weights : {false, true}) {
          for (std::optional<int64_t> ignore : {std::optional<int64_t>(), std::optional<int64_t>(2),
                                                std::optional<int64_t>(-100)}) {
            expect_loss_matches({.op = op,
                                 .shape = shape,
                                 .reduction = reduction,
                                 .weights = weights,
                                 .ignore_index = ignore});
          }
        }
      }
    }
  }
}

TEST(CudaHostLoss, LogProbOutput) {
  for (const char* reduction : {"none", "sum", "mean"}) {
    for (const Shape& shape : std::vector<Shape>{{4, 7}, {2, 3, 5}}) {
      expect_loss_matches({.op = "SoftmaxCrossEntropyLoss",
                           .shape = shape,
                           .reduction = reduction,
                           .weights = true,
                           .ignore_index = 0,
                           .log_prob = true});
    }
  }
}

TEST(CudaHostLoss, TypesAndLabels) {
  for (DType dtype : {DType::Float, DType::Double, DType::Float16, DType::BFloat16}) {
    for (DType labels : {DType::Int32, DType::Int64}) {
      expect_loss_matches({.op = "SoftmaxCrossEntropyLoss",
                           .dtype = dtype,
                           .shape = {4, 6, 3},
                           .weights = true,
                           .ignore_index = 1,
                           .log_prob = true,
                           .label_type = labels});
      expect_loss_matches({.op = "NegativeLogLikelihoodLoss",
                           .dtype = dtype,
                           .shape = {4, 6, 3},
                           .reduction = "sum",
                           .weights = true,
                           .ignore_index = -1,
                           .label_type = labels,
                           .opset = 22});
    }
  }
}

TEST(CudaHostLoss, OddClassCounts) {
  for (int64_t classes : {1, 33, 1025}) {
    for (const char* op : {"SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss"}) {
      expect_loss_matches({.op = op, .shape = {5, classes}});
      expect_loss_matches(
          {.op = op, .shape = {3, classes, 2}, .reduction = "none", .weights = true});
    }
  }
}

// loss = SoftmaxCrossEntropyLoss(Softmax(h) * h, labels, weights), h = LayerNormalization(x),
// differentiated for x, Scale and B: the backward graph holds LayerNormGrad, SoftmaxGrad,
// LogSoftmax and ReduceSum besides the forward ops, all of which must run on the device.
TEST(CudaHostLoss, GradientGraph) {
  onnx::ModelProto proto;
  const auto status = onnx::OnnxParser::Parse(proto, R"ONNX(
<ir_version: 10, opset_import: ["" : 18]>
g (float[6, 9] x, int64[6] labels, float[9] scale, float[9] bias, float[9] weights)
    => (float loss) {
  h = LayerNormalization <axis = -1, epsilon = 0.001> (x, scale, bias)
  p = Softmax <axis = 1> (h)
  logits = Mul (p, h)
  loss = SoftmaxCrossEntropyLoss <reduction = "mean", ignore_index = 4> (logits, labels, weights)
}
)ONNX");
  ASSERT_TRUE(status.IsOK()) << status.ErrorMessage();
  const ir::Model model = autodiff::build_gradient_graph(
      ir::load_model_from_bytes(proto.SerializeAsString()), "loss", {"x", "scale", "bias"});
  const std::vector<std::string> on_device = {
      "LayerNormalization", "Softmax",  "SoftmaxCrossEntropyLoss", "LayerNormGrad", "SoftmaxGrad",
      "LogSoftmax",         "ReduceSum"};
  std::vector<std::string> elsewhere;
  for (const auto& node : model.graph.nodes) {
    if (std::count(on_device.begin(), on_device.end(), node->op_type) == 0)
      elsewhere.push_back(node->op_type);
  }
  for (const std::string& op : on_device) {
    EXPECT_TRUE(std::any_of(model.graph.nodes.begin(), model.graph.nodes.end(),
                            [&](const auto& node) { return node->op_type == op; }))
        << op << " is not in the gradient graph";
  }
  expect_matches_cpu(model,
                     {{"x", Value(random_tensor(DType::Float, {6, 9}, -2, 2, 1))},
                      {"labels", Value(labels_for(DType::Int64, {6}, 9, 4))},
                      {"scale", Value(random_tensor(DType::Float, {9}, 0.5, 2, 2))},
                      {"bias", Value(random_tensor(DType::Float, {9}, -1, 1, 3))},
                      {"weights", Value(random_tensor(DType::Float, {9}, 0.2, 2, 4))}},
                     1e-5, 1e-6, elsewhere);
}

}  // namespace
}  // namespace graft::test_util
