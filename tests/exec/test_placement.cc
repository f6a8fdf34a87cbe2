// Where the partitioner puts nodes and values around a device, checked on the fake device of
// tests/exec/fake_device.h (its memory cannot be read by the CPU, so a host kernel handed a device
// value crashes the test): inputs a device kernel reads on the host, inputs read only for their
// shape, shape arithmetic kept on the host, and nodes a device kernel declines. Every result is
// compared with the CPU provider's alone.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "exec/session.h"
#include "ir/model.h"
#include "ir/serialize.h"
#include "onnx/onnx_pb.h"
#include "tests/exec/fake_device.h"
#include "tests/model_builder.h"

namespace graft {
namespace {

using test_util::fake_device_log;
using test_util::kFakeDevice;
using test_util::reset_fake_device;

void declare(onnx::ValueInfoProto* v, const std::string& name, int elem_type,
             const std::vector<std::string>& dims) {
  v->set_name(name);
  auto* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(elem_type);
  for (const auto& d : dims) {
    if (std::isdigit(static_cast<unsigned char>(d[0]))) {
      t->mutable_shape()->add_dim()->set_dim_value(std::stoll(d));
    } else {
      t->mutable_shape()->add_dim()->set_dim_param(d);
    }
  }
}

void int64_initializer(test_util::ModelBuilder& m, const std::string& name,
                       const std::vector<int64_t>& dims, const std::vector<int64_t>& values) {
  auto* t = m.graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::INT64);
  for (int64_t d : dims) t->add_dims(d);
  for (int64_t v : values) t->add_int64_data(v);
}

Tensor floats(const Shape& shape, float start) {
  Tensor t(DType::Float, shape);
  for (int64_t i = 0; i < t.size(); ++i) t.data<float>()[i] = start + static_cast<float>(i);
  return t;
}

Tensor int64s(const std::vector<int64_t>& values) {
  Tensor t(DType::Int64, {static_cast<int64_t>(values.size())});
  std::memcpy(t.raw(), values.data(), values.size() * sizeof(int64_t));
  return t;
}

SessionOptions unoptimized() {
  SessionOptions options;
  options.graph_optimization_level = 0;
  return options;
}

// Runs `model` on the fake device and the CPU, and on the CPU alone; expects the same outputs
// (dtype, shape, elements) and returns the first run's. The fake device's log covers that run
// only.
std::vector<Value> run_beside_cpu(const ir::Model& model, const std::map<std::string, Value>& feeds,
                                  const SessionOptions& options = unoptimized()) {
  InferenceSession reference(model.clone(), options, {"CPUExecutionProvider"});
  const std::vector<Value> expected = reference.run({}, feeds);
  InferenceSession session(model.clone(), options, {kFakeDevice, "CPUExecutionProvider"});
  reset_fake_device();
  std::vector<Value> out = session.run({}, feeds);
  EXPECT_EQ(out.size(), expected.size());
  for (size_t k = 0; k < out.size() && k < expected.size(); ++k) {
    const Tensor& a = out[k].tensor();
    const Tensor& b = expected[k].tensor();
    EXPECT_TRUE(a.on_host()) << "output " << k;
    EXPECT_EQ(a.dtype(), b.dtype()) << "output " << k;
    EXPECT_EQ(a.shape(), b.shape()) << "output " << k;
    if (a.dtype() != b.dtype() || a.shape() != b.shape()) continue;
    if (a.dtype() == DType::String) {
      for (int64_t i = 0; i < a.size(); ++i)
        EXPECT_EQ(a.data<std::string>()[i], b.data<std::string>()[i]) << "output " << k;
    } else {
      EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0) << "output " << k;
    }
  }
  return out;
}

// The copy nodes of a saved optimized model: (op type, input, output) of each.
std::vector<std::vector<std::string>> copies_in(const ir::Model& model) {
  std::vector<std::vector<std::string>> copies;
  for (const auto& n : model.graph.nodes) {
    if (n->op_type == "MemcpyFromHost" || n->op_type == "MemcpyToHost")
      copies.push_back({n->op_type, n->inputs[0], n->outputs[0]});
  }
  return copies;
}

// y = Reshape(Relu(x), shape): the device's Reshape reads its shape, a graph input, on the host.
TEST(Placement, HostInputsOfDeviceKernelsStayInHostMemory) {
  test_util::ModelBuilder m("host_input");
  m.input("x", std::vector<std::string>{"6"});
  declare(m.graph()->add_input(), "shape", onnx::TensorProto::INT64, {"2"});
  m.node("Relu", {"x"}, "r");
  m.node("Reshape", {"r", "shape"}, "y");
  declare(m.graph()->add_output(), "y", onnx::TensorProto::FLOAT, {});
  std::vector<Value> out =
      run_beside_cpu(m.build(), {{"x", floats({6}, -3.0f)}, {"shape", int64s({2, 3})}});
  EXPECT_EQ(out[0].tensor().shape(), (Shape{2, 3}));
  EXPECT_EQ(fake_device_log().ran["Reshape"], 1);
  EXPECT_EQ(fake_device_log().copies_in, 1);   // x; the shape stays where it is
  EXPECT_EQ(fake_device_log().copies_out, 1);  // y
}

// The shape is made on the device (Cast of a Relu's float output, which no host kernel could read
// without a copy): it is copied back for the Reshape.
TEST(Placement, HostInputsMadeOnTheDeviceAreCopiedBack) {
  test_util::ModelBuilder m("host_input_from_device");
  m.input("x", std::vector<std::string>{"6"});
  m.input("s", std::vector<std::string>{"2"});
  m.node("Relu", {"x"}, "r");
  m.node("Relu", {"s"}, "rs");
  test_util::ModelBuilder::int_attribute(m.node("Cast", {"rs"}, "shape"), "to",
                                         onnx::TensorProto::INT64);
  m.node("Reshape", {"r", "shape"}, "y");
  declare(m.graph()->add_output(), "y", onnx::TensorProto::FLOAT, {});
  Tensor s(DType::Float, {2});
  s.data<float>()[0] = 3.0f;
  s.data<float>()[1] = 2.0f;
  std::vector<Value> out = run_beside_cpu(m.build(), {{"x", floats({6}, -3.0f)}, {"s", s}});
  EXPECT_EQ(out[0].tensor().shape(), (Shape{3, 2}));
  EXPECT_EQ(fake_device_log().ran["Cast"], 1);
  EXPECT_EQ(fake_device_log().ran["Reshape"], 1);
  EXPECT_EQ(fake_device_log().copies_out, 2);  // the shape, y
}

// Shape and Size on the host read a device value's shape, never its elements (the fake device's
// memory would fault): nothing is copied back.
TEST(Placement, ShapeAndSizeReadADeviceValueWhereItLives) {
  const std::string path = ::testing::TempDir() + "/placement_shape.onnx";
  test_util::ModelBuilder m("metadata");
  m.input("x", std::vector<std::string>{"2", "3"});
  m.node("Relu", {"x"}, "r");
  m.node("Shape", {"r"}, "dims");
  m.node("Size", {"r"}, "count");
  declare(m.graph()->add_output(), "dims", onnx::TensorProto::INT64, {"2"});
  declare(m.graph()->add_output(), "count", onnx::TensorProto::INT64, {});
  SessionOptions options = unoptimized();
  options.optimized_model_filepath = path;
  std::vector<Value> out = run_beside_cpu(m.build(), {{"x", floats({2, 3}, -1.0f)}}, options);
  EXPECT_EQ(out[0].tensor().to_int_vector(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(out[1].tensor().scalar_as_int(), 6);
  EXPECT_EQ(fake_device_log().ran["Relu"], 1);
  EXPECT_EQ(fake_device_log().copies_in, 1);
  EXPECT_EQ(fake_device_log().copies_out, 0);
  EXPECT_EQ(copies_in(ir::load_model(path)),
            (std::vector<std::vector<std::string>>{
                {"MemcpyFromHost", "x", "x@" + std::string(kFakeDevice)}}));
}

// y = Relu(Reshape(x, Concat(Gather(Shape(x), [0]), [-1]))) with the device claiming Gather,
// Concat, Reshape and Relu: the shape arithmetic runs on the host beside Shape, so only x goes in
// and y comes out; no shape value crosses.
TEST(Placement, ShapeArithmeticStaysOnTheHost) {
  const std::string path = ::testing::TempDir() + "/placement_shape_arithmetic.onnx";
  test_util::ModelBuilder m("shape_arithmetic");
  m.input("x", std::vector<std::string>{"N", "3", "4"});
  int64_initializer(m, "first", {1}, {0});
  int64_initializer(m, "rest", {1}, {-1});
  m.node("Shape", {"x"}, "dims");
  test_util::ModelBuilder::int_attribute(m.node("Gather", {"dims", "first"}, "n"), "axis", 0);
  test_util::ModelBuilder::int_attribute(m.node("Concat", {"n", "rest"}, "shape"), "axis", 0);
  m.node("Reshape", {"x", "shape"}, "flat");
  m.node("Relu", {"flat"}, "y");
  declare(m.graph()->add_output(), "y", onnx::TensorProto::FLOAT, {"N", "12"});
  SessionOptions options;  // every rewrite on: none may undo the placement
  options.optimized_model_filepath = path;
  std::vector<Value> out = run_beside_cpu(m.build(), {{"x", floats({2, 3, 4}, -5.0f)}}, options);
  EXPECT_EQ(out[0].tensor().shape(), (Shape{2, 12}));
  EXPECT_EQ(fake_device_log().ran["Gather"], 0);
  EXPECT_EQ(fake_device_log().ran["Concat"], 0);
  EXPECT_EQ(fake_device_log().ran["Reshape"], 1);
  EXPECT_EQ(fake_device_log().ran["Relu"], 1);
  EXPECT_EQ(fake_device_log().copies_in, 1);
  EXPECT_EQ(fake_device_log().copies_out, 1);
  // The saved model shows it: one copy in (x), one out (y), and the shape nodes read host values.
  const ir::Model saved = ir::load_model(path);
  const std::string device = "@" + std::string(kFakeDevice);
  EXPECT_EQ(copies_in(saved),
            (std::vector<std::vector<std::string>>{{"MemcpyFromHost", "x", "x" + device},
                                                   {"MemcpyToHost", "y" + device, "y"}}));
  for (const auto& n : saved.graph.nodes) {
    if (n->op_type != "Gather" && n->op_type != "Concat" && n->op_type != "Shape") continue;
    for (const auto& in : n->inputs) EXPECT_EQ(in.find('@'), std::string::npos) << n->op_type;
  }
}

// first = Gather(Shape(Relu(x)), [0]), an output: the Gather follows the Shape to the host, so
// nothing but x crosses.
TEST(Placement, ArithmeticOnAShapeFollowsItToTheHost) {
  test_util::ModelBuilder m("shape_result");
  m.input("x", std::vector<std::string>{"2", "3"});
  int64_initializer(m, "index", {1}, {0});
  m.node("Relu", {"x"}, "r");
  m.node("Shape", {"r"}, "dims");
  m.node("Gather", {"dims", "index"}, "first");
  declare(m.graph()->add_output(), "first", onnx::TensorProto::INT64, {"1"});
  std::vector<Value> out = run_beside_cpu(m.build(), {{"x", floats({2, 3}, -1.0f)}});
  EXPECT_EQ(out[0].tensor().to_int_vector(), (std::vector<int64_t>{2}));
  EXPECT_EQ(fake_device_log().ran["Gather"], 0);
  EXPECT_EQ(fake_device_log().copies_in, 1);
  EXPECT_EQ(fake_device_log().copies_out, 0);
}

// The shape is computed from a graph input (Concat(rows, [-1])) only for the device's Reshape,
// which reads it on the host: the Concat runs there too, and the shape never enters the device.
TEST(Placement, ShapeArithmeticForAHostInputStaysOnTheHost) {
  test_util::ModelBuilder m("shape_from_input");
  m.input("x", std::vector<std::string>{"6"});
  declare(m.graph()->add_input(), "rows", onnx::TensorProto::INT64, {"1"});
  int64_initializer(m, "rest", {1}, {-1});
  test_util::ModelBuilder::int_attribute(m.node("Concat", {"rows", "rest"}, "shape"), "axis", 0);
  m.node("Relu", {"x"}, "r");
  m.node("Reshape", {"r", "shape"}, "y");
  declare(m.graph()->add_output(), "y", onnx::TensorProto::FLOAT, {});
  std::vector<Value> out =
      run_beside_cpu(m.build(), {{"x", floats({6}, -3.0f)}, {"rows", int64s({3})}});
  EXPECT_EQ(out[0].tensor().shape(), (Shape{3, 2}));
  EXPECT_EQ(fake_device_log().ran["Concat"], 0);
  EXPECT_EQ(fake_device_log().ran["Reshape"], 1);
  EXPECT_EQ(fake_device_log().copies_in, 1);  // x
}

// The device's Cast makes no strings and its Gather takes only axis 0 (KernelDef::accepts): the
// nodes it declines run on the CPU, with copies around them; the ones it accepts run on it.
TEST(Placement, NodesADeviceKernelDeclinesFallBackToTheHost) {
  test_util::ModelBuilder m("declined");
  m.input("x", std::vector<std::string>{"2", "3"});
  int64_initializer(m, "columns", {2}, {2, 0});
  int64_initializer(m, "rows", {1}, {1});
  m.node("Relu", {"x"}, "r");
  test_util::ModelBuilder::int_attribute(m.node("Cast", {"r"}, "words"), "to",
                                         onnx::TensorProto::STRING);
  test_util::ModelBuilder::int_attribute(m.node("Cast", {"r"}, "wide"), "to",
                                         onnx::TensorProto::DOUBLE);
  test_util::ModelBuilder::int_attribute(m.node("Gather", {"r", "columns"}, "picked"), "axis", 1);
  test_util::ModelBuilder::int_attribute(m.node("Gather", {"r", "rows"}, "row"), "axis", 0);
  declare(m.graph()->add_output(), "words", onnx::TensorProto::STRING, {"2", "3"});
  declare(m.graph()->add_output(), "wide", onnx::TensorProto::DOUBLE, {"2", "3"});
  declare(m.graph()->add_output(), "picked", onnx::TensorProto::FLOAT, {"2", "2"});
  declare(m.graph()->add_output(), "row", onnx::TensorProto::FLOAT, {"1", "3"});
  run_beside_cpu(m.build(), {{"x", floats({2, 3}, -2.5f)}});
  EXPECT_EQ(fake_device_log().ran["Cast"], 1);
  EXPECT_EQ(fake_device_log().ran["Gather"], 1);
  // Out: r once for both host nodes, and the device's wide and row.
  EXPECT_EQ(fake_device_log().copies_out, 3);
}

}  // namespace
}  // namespace graft
