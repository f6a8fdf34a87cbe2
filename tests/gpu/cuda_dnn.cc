// The CUDA provider's convolution, pooling and batch normalization kernels on a CUDA device
// (cuDNN, and the provider's own window loops), against the CPU provider: ResNet-sized Conv,
// ConvTranspose, MaxPool, AveragePool, GlobalAveragePool and BatchNormalization in float32 (no
// TF32), float16 and bfloat16, the gradient ops ConvGrad, MaxPoolGrad (ties included) and
// BatchNormGrad, and a second run of each session (the cached algorithms). The host tests
// (tests/providers/cuda_host) cover the geometry cases on the device when run with
// GRAFT_TEST_DEVICE=cuda. Exits 77 (skipped) with the reason printed when no CUDA device is
// present, 0 when every check passes, 1 otherwise.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "exec/session.h"
#include "ir/serialize.h"
#include "onnx/onnx_pb.h"
#include "onnx/shape_inference/implementation.h"
#include "providers/cuda/device.h"

namespace graft {
namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  std::printf("  %-78s %s\n", what.c_str(), ok ? "ok" : "FAILED");
  if (!ok) ++failures;
}

Tensor random_tensor(DType dtype, const Shape& shape, double lo, double hi, uint64_t seed,
                     bool integers = false) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  Tensor t(dtype, shape);
  dispatch_float(dtype, "random_tensor", [&](auto tag) {
    using T = typename decltype(tag)::type;
    for (int64_t i = 0; i < t.size(); ++i) {
      const double v = u(rng);
      t.data<T>()[i] = static_cast<T>(integers ? std::floor(v) : v);
    }
  });
  return t;
}

double element(const Tensor& t, int64_t i) {
  return dispatch_numeric(t.dtype(), "element", [&](auto tag) -> double {
    using T = typename decltype(tag)::type;
    return static_cast<double>(t.data<T>()[i]);
  });
}

using Attrs = std::function<void(onnx::NodeProto&)>;

void set_ints(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& values) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

void set_int(onnx::NodeProto& n, const std::string& name, int64_t value) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

void set_float(onnx::NodeProto& n, const std::string& name, float value) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(value);
}

// One node reading graph inputs in0... and writing out0...: of the given types for com.graft
// ops, as ONNX infers them (`num_outputs` of them) for standard ones.
struct Case {
  std::string what;
  std::string op;
  std::vector<Tensor> inputs;
  Attrs attrs = nullptr;
  int num_outputs = 1;
  std::vector<std::pair<DType, Shape>> graft_outputs = {};
  int64_t opset = 18;
};

std::string model_bytes(const Case& c) {
  onnx::ModelProto m;
  m.set_ir_version(10);
  m.add_opset_import()->set_version(c.opset);
  auto* graft_opset = m.add_opset_import();
  graft_opset->set_domain("com.graft");
  graft_opset->set_version(1);
  auto* g = m.mutable_graph();
  g->set_name(c.op);
  auto declare = [](onnx::ValueInfoProto* v, const std::string& name, DType dtype,
                    const Shape& shape) {
    v->set_name(name);
    auto* t = v->mutable_type()->mutable_tensor_type();
    t->set_elem_type(static_cast<int>(dtype));
    for (int64_t d : shape) t->mutable_shape()->add_dim()->set_dim_value(d);
  };
  auto* n = g->add_node();
  const bool graft_op = !c.graft_outputs.empty();
  if (graft_op) n->set_domain("com.graft");
  n->set_op_type(c.op);
  n->set_name("node");
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const std::string name = "in" + std::to_string(i);
    declare(g->add_input(), name, c.inputs[i].dtype(), c.inputs[i].shape());
    n->add_input(name);
  }
  const size_t outputs = graft_op ? c.graft_outputs.size() : static_cast<size_t>(c.num_outputs);
  for (size_t k = 0; k < outputs; ++k) n->add_output("out" + std::to_string(k));
  if (c.attrs) c.attrs(*n);
  if (!graft_op) onnx::shape_inference::InferShapes(m);
  for (size_t k = 0; k < outputs; ++k) {
    const std::string name = "out" + std::to_string(k);
    auto* out = g->add_output();
    if (graft_op) {
      declare(out, name, c.graft_outputs[k].first, c.graft_outputs[k].second);
      continue;
    }
    out->set_name(name);
    for (const auto& v : g->value_info())
      if (v.name() == name) *out->mutable_type() = v.type();
  }
  g->clear_value_info();
  return m.SerializeAsString();
}

// Runs `c` on the CUDA provider (float32 without TF32) and on the CPU provider alone, twice,
// and compares every output: |cuda - cpu| <= atol + rtol * |cpu|, integers exactly.
void run_case(const Case& c, double rtol, double atol) {
  SessionOptions options;
  options.graph_optimization_level = 0;
  options.provider_options["CUDAExecutionProvider"] = {{"use_tf32", "0"}};
  InferenceSession cuda = InferenceSession::from_bytes(
      model_bytes(c), options, {"CUDAExecutionProvider", "CPUExecutionProvider"});
  InferenceSession cpu =
      InferenceSession::from_bytes(model_bytes(c), options, {"CPUExecutionProvider"});
  std::map<std::string, Value> feeds;
  for (size_t i = 0; i < c.inputs.size(); ++i) feeds["in" + std::to_string(i)] = Value(c.inputs[i]);
  bool on_device = false;
  for (const auto& node : cuda.model().graph.nodes)
    on_device = on_device || node->op_type == "MemcpyFromHost";
  const std::vector<Value> want = cpu.run({}, feeds);
  for (int turn = 0; turn < 2; ++turn) {
    const std::vector<Value> got = cuda.run({}, feeds);
    double worst = 0;
    bool ok = on_device && got.size() == want.size();
    for (size_t k = 0; ok && k < got.size(); ++k) {
      const Tensor& a = got[k].tensor();
      const Tensor& b = want[k].tensor();
      ok = a.dtype() == b.dtype() && a.shape() == b.shape();
      const bool exact = !dtype_is_float(a.dtype());
      for (int64_t i = 0; ok && i < a.size(); ++i) {
        const double x = element(a, i), y = element(b, i);
        const double excess = std::fabs(x - y) - (exact ? 0.0 : atol + rtol * std::fabs(y));
        if (!(x == y || excess <= 0)) ok = false;
        if (!exact && std::isfinite(excess)) worst = std::max(worst, std::fabs(x - y));
      }
    }
    char note[64];
    std::snprintf(note, sizeof(note), " (run %d, max |diff| %.2g)", turn + 1, worst);
    check(ok, c.what + note);
  }
}

double rtol_of(DType dtype) { return dtype == DType::Float ? 1e-4 : 1e-2; }
double atol_of(DType dtype) { return dtype == DType::Float ? 1e-4 : 2e-2; }

Attrs window(Shape strides, Shape pads, Shape dilations = {}, int64_t group = 1) {
  return [=](onnx::NodeProto& n) {
    set_ints(n, "strides", strides);
    if (!pads.empty()) set_ints(n, "pads", pads);
    if (!dilations.empty()) set_ints(n, "dilations", dilations);
    if (group != 1) set_int(n, "group", group);
  };
}

void convolutions() {
  std::printf("Conv and ConvTranspose:\n");
  for (DType dtype : {DType::Float, DType::Float16, DType::BFloat16}) {
    const std::string t = std::string(" ") + dtype_name(dtype);
    const double r = rtol_of(dtype), a = atol_of(dtype);
    run_case(
        {"Conv 7x7/2 stem [4, 3, 224, 224] -> 64 with bias" + t,
         "Conv",
         {random_tensor(dtype, {4, 3, 224, 224}, -1, 1, 1),
          random_tensor(dtype, {64, 3, 7, 7}, -0.2, 0.2, 2), random_tensor(dtype, {64}, -1, 1, 3)},
         window({2, 2}, {3, 3, 3, 3})},
        r, a);
    run_case({"Conv 3x3 [8, 64, 56, 56] -> 64" + t,
              "Conv",
              {random_tensor(dtype, {8, 64, 56, 56}, -1, 1, 4),
               random_tensor(dtype, {64, 64, 3, 3}, -0.1, 0.1, 5)},
              window({1, 1}, {1, 1, 1, 1})},
             r, a);
    run_case({"Conv depthwise 3x3/2 [4, 32, 28, 28], asymmetric pads" + t,
              "Conv",
              {random_tensor(dtype, {4, 32, 28, 28}, -1, 1, 6),
               random_tensor(dtype, {32, 1, 3, 3}, -0.5, 0.5, 7)},
              window({2, 2}, {0, 0, 1, 1}, {}, 32)},
             r, a);
    run_case({"ConvTranspose 4x4/2 [4, 64, 14, 14] -> 32, pads 1" + t,
              "ConvTranspose",
              {random_tensor(dtype, {4, 64, 14, 14}, -1, 1, 8),
               random_tensor(dtype, {64, 32, 4, 4}, -0.1, 0.1, 9),
               random_tensor(dtype, {32}, -1, 1, 10)},
              window({2, 2}, {1, 1, 1, 1})},
             r, a);
  }
  run_case({"Conv grouped 1-D [4, 16, 100], group 4, dilation 2",
            "Conv",
            {random_tensor(DType::Float, {4, 16, 100}, -1, 1, 11),
             random_tensor(DType::Float, {32, 4, 5}, -0.3, 0.3, 12)},
            window({1}, {4, 4}, {2}, 4)},
           1e-4, 1e-4);
  run_case({"Conv 3-D [2, 8, 9, 10, 11] -> 16, strides 2, SAME_UPPER",
            "Conv",
            {random_tensor(DType::Float, {2, 8, 9, 10, 11}, -1, 1, 13),
             random_tensor(DType::Float, {16, 8, 2, 3, 3}, -0.3, 0.3, 14)},
            [](onnx::NodeProto& n) {
              set_ints(n, "strides", {2, 2, 2});
              auto* a = n.add_attribute();
              a->set_name("auto_pad");
              a->set_type(onnx::AttributeProto::STRING);
              a->set_s("SAME_UPPER");
            }},
           1e-4, 1e-4);
  run_case({"ConvTranspose [2, 8, 7, 7] asymmetric pads, output_padding",
            "ConvTranspose",
            {random_tensor(DType::Float, {2, 8, 7, 7}, -1, 1, 15),
             random_tensor(DType::Float, {8, 4, 3, 3}, -0.3, 0.3, 16)},
            [](onnx::NodeProto& n) {
              window({2, 2}, {0, 1, 2, 1})(n);
              set_ints(n, "output_padding", {1, 1});
            }},
           1e-4, 1e-4);
}

void pooling() {
  std::printf("pooling:\n");
  for (DType dtype : {DType::Float, DType::Float16, DType::BFloat16}) {
    const std::string t = std::string(" ") + dtype_name(dtype);
    const double r = rtol_of(dtype), a = atol_of(dtype);
    const Tensor x = random_tensor(dtype, {8, 64, 112, 112}, -2, 2, 20);
    const Attrs stem = [](onnx::NodeProto& n) {
      set_ints(n, "kernel_shape", {3, 3});
      window({2, 2}, {1, 1, 1, 1})(n);
    };
    run_case({"MaxPool 3x3/2 [8, 64, 112, 112] (cuDNN)" + t, "MaxPool", {x}, stem}, r, a);
    run_case({"MaxPool 3x3/2 with Indices (own kernel)" + t, "MaxPool", {x}, stem, 2}, r, a);
    run_case({"AveragePool 3x3/2 count_include_pad" + t,
              "AveragePool",
              {x},
              [&](onnx::NodeProto& n) {
                stem(n);
                set_int(n, "count_include_pad", 1);
              }},
             r, a);
    run_case({"AveragePool 2x2/2 ceil_mode (own kernel)" + t,
              "AveragePool",
              {random_tensor(dtype, {4, 16, 15, 15}, -2, 2, 21)},
              [](onnx::NodeProto& n) {
                set_ints(n, "kernel_shape", {2, 2});
                window({2, 2}, {})(n);
                set_int(n, "ceil_mode", 1);
              }},
             r, a);
    run_case({"GlobalAveragePool [8, 512, 7, 7]" + t,
              "GlobalAveragePool",
              {random_tensor(dtype, {8, 512, 7, 7}, -2, 2, 22)}},
             r, a);
  }
}

void batch_norm() {
  std::printf("BatchNormalization:\n");
  for (DType dtype : {DType::Float, DType::Float16, DType::BFloat16}) {
    const std::string t = std::string(" ") + dtype_name(dtype);
    const Shape shape = {8, 64, 56, 56};
    std::vector<Tensor> inputs = {random_tensor(dtype, shape, -2, 3, 30),
                                  random_tensor(DType::Float, {64}, 0.5, 1.5, 31),
                                  random_tensor(DType::Float, {64}, -1, 1, 32),
                                  random_tensor(DType::Float, {64}, -0.5, 0.5, 33),
                                  random_tensor(DType::Float, {64}, 0.5, 2, 34)};
    for (int64_t training : {0, 1}) {
      run_case({std::string(training ? "training" : "inference") + " [8, 64, 56, 56]" + t,
                "BatchNormalization",
                inputs,
                [=](onnx::NodeProto& n) {
                  set_int(n, "training_mode", training);
                  set_float(n, "momentum", 0.8f);
                },
                training ? 3 : 1,
                {},
                15},
               rtol_of(dtype), atol_of(dtype));
    }
  }
}

void gradients() {
  std::printf("gradient ops:\n");
  const Tensor x = random_tensor(DType::Float, {8, 64, 28, 28}, -1, 1, 40);
  const Tensor w = random_tensor(DType::Float, {32, 64, 3, 3}, -0.1, 0.1, 41);
  const Tensor dy = random_tensor(DType::Float, {8, 32, 14, 14}, -1, 1, 42);
  run_case(
      {"ConvGrad 3x3/2 [8, 64, 28, 28] -> 32",
       "ConvGrad",
       {dy, x, w},
       [](onnx::NodeProto& n) {
         set_ints(n, "strides", {2, 2});
         set_ints(n, "pads", {1, 1, 1, 1});
         set_ints(n, "dilations", {1, 1});
       },
       1,
       {{DType::Float, {8, 64, 28, 28}}, {DType::Float, {32, 64, 3, 3}}, {DType::Float, {32}}}},
      1e-4, 1e-3);
  run_case({"ConvGrad asymmetric pads",
            "ConvGrad",
            {random_tensor(DType::Float, {2, 8, 8, 7}, -1, 1, 43),
             random_tensor(DType::Float, {2, 4, 15, 13}, -1, 1, 44),
             random_tensor(DType::Float, {8, 4, 3, 3}, -0.3, 0.3, 45)},
            [](onnx::NodeProto& n) {
              set_ints(n, "strides", {2, 2});
              set_ints(n, "pads", {1, 0, 0, 1});
              set_ints(n, "dilations", {1, 1});
            },
            1,
            {{DType::Float, {2, 4, 15, 13}}, {DType::Float, {8, 4, 3, 3}}, {DType::Float, {8}}}},
           1e-4, 1e-4);
  for (bool ties : {false, true}) {
    // Ties: inputs of -1, 0 and 1, as after a ReLU, where windows hold equal maxima.
    const Tensor px = random_tensor(DType::Float, {8, 64, 56, 56}, -1, 2, 46, ties);
    run_case({std::string("MaxPoolGrad 3x3/2 [8, 64, 56, 56]") + (ties ? ", ties" : ""),
              "MaxPoolGrad",
              {random_tensor(DType::Float, {8, 64, 28, 28}, -1, 1, 47), px},
              [](onnx::NodeProto& n) {
                set_ints(n, "kernel_shape", {3, 3});
                window({2, 2}, {1, 1, 1, 1}, {1, 1})(n);
              },
              1,
              {{DType::Float, {8, 64, 56, 56}}}},
             1e-5, 1e-5);
  }
  for (DType dtype : {DType::Float, DType::Float16}) {
    const Shape shape = {8, 64, 28, 28};
    run_case({std::string("BatchNormGrad [8, 64, 28, 28] ") + dtype_name(dtype),
              "BatchNormGrad",
              {random_tensor(dtype, shape, -1, 1, 48), random_tensor(dtype, shape, -2, 3, 49),
               random_tensor(dtype, {64}, 0.5, 1.5, 50)},
              [](onnx::NodeProto& n) {
                set_ints(n, "axes", {0, 2, 3});
                set_float(n, "epsilon", 1e-5f);
              },
              1,
              {{dtype, shape}, {dtype, {64}}, {dtype, {64}}}},
             rtol_of(dtype), dtype == DType::Float ? 1e-3 : 5e-2);
  }
}

}  // namespace
}  // namespace graft

int main() {
  std::string why;
  if (graft::cuda::device_count(&why) == 0) {
    std::printf("skipped: %s\n", why.c_str());
    return 77;
  }
  try {
    graft::convolutions();
    graft::pooling();
    graft::batch_norm();
    graft::gradients();
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
  std::printf("%d failed\n", graft::failures);
  return graft::failures == 0 ? 0 : 1;
}
