// The CUDA provider's collective kernels in a graph, on a CUDA device: com.graft AllReduce
// (several inputs of two dtypes, packed into one device buffer), Broadcast, AllGather and
// ReduceScatter placed on CUDAExecutionProvider between CPU nodes, so values cross host -> device
// -> device -> host. Checked against the same arithmetic done on the host, on one rank (NCCL
// refuses two ranks on one device). Each collective is enqueued on the NCCL stream and finishes
// later (the profile shows the executor's wait for it). Exits 77 (skipped) with the reason printed
// when no CUDA device is present, 0 when every check passes, 1 otherwise.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "exec/provider.h"
#include "exec/session.h"
#include "ir/serialize.h"
#include "onnx/onnx_pb.h"
#include "providers/cuda/device.h"
#include "tests/device_training.h"

namespace graft {
namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  std::printf("  %-66s %s\n", what.c_str(), ok ? "ok" : "FAILED");
  if (!ok) ++failures;
}

void declare(onnx::ValueInfoProto* v, const std::string& name, int elem,
             std::vector<int64_t> dims) {
  v->set_name(name);
  auto* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(elem);
  for (int64_t d : dims) t->mutable_shape()->add_dim()->set_dim_value(d);
}

onnx::NodeProto* add_node(onnx::GraphProto* g, const std::string& op, const std::string& domain,
                          std::vector<std::string> in, std::vector<std::string> out) {
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_domain(domain);
  n->set_name(op + "_" + out[0]);
  for (const auto& i : in) n->add_input(i);
  for (const auto& o : out) n->add_output(o);
  return n;
}

void string_attr(onnx::NodeProto* n, const std::string& name, const std::string& value) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(value);
}

// a [n] float, b [3, 5] float, c [7] int64:
//   s = a * 2 (CPU); s2, b2, c2 = AllReduce(s, b, c) average; b3 = Broadcast(b2);
//   g = AllGather(s2); r = ReduceScatter(g) sum; out = r + a (CPU)
std::string model_bytes(int64_t n) {
  onnx::ModelProto m;
  m.set_ir_version(10);
  m.add_opset_import()->set_version(18);
  auto* graft_opset = m.add_opset_import();
  graft_opset->set_domain("com.graft");
  graft_opset->set_version(1);
  auto* g = m.mutable_graph();
  g->set_name("collectives");
  declare(g->add_input(), "a", onnx::TensorProto::FLOAT, {n});
  declare(g->add_input(), "b", onnx::TensorProto::FLOAT, {3, 5});
  declare(g->add_input(), "c", onnx::TensorProto::INT64, {7});
  auto* two = g->add_initializer();
  two->set_name("two");
  two->set_data_type(onnx::TensorProto::FLOAT);
  two->add_float_data(2.0f);
  add_node(g, "Mul", "", {"a", "two"}, {"s"});
  string_attr(add_node(g, "AllReduce", "com.graft", {"s", "b", "c"}, {"s2", "b2", "c2"}),
              "reduction", "average");
  add_node(g, "Broadcast", "com.graft", {"b2"}, {"b3"});
  add_node(g, "AllGather", "com.graft", {"s2"}, {"g"});
  string_attr(add_node(g, "ReduceScatter", "com.graft", {"g"}, {"r"}), "reduction", "sum");
  add_node(g, "Add", "", {"r", "a"}, {"out"});
  declare(g->add_output(), "out", onnx::TensorProto::FLOAT, {n});
  declare(g->add_output(), "b3", onnx::TensorProto::FLOAT, {3, 5});
  declare(g->add_output(), "c2", onnx::TensorProto::INT64, {7});
  declare(g->add_output(), "g", onnx::TensorProto::FLOAT, {n});
  return m.SerializeAsString();
}

// Counts the events of op `op` in a profile written by end_profiling().
size_t count_events(const std::string& trace_path, const std::string& op) {
  std::ifstream trace(trace_path);
  std::stringstream text;
  text << trace.rdbuf();
  const std::string events = text.str();
  const std::string key = "\"op_name\":\"" + op + "\"";
  size_t k = 0;
  for (size_t at = events.find(key); at != std::string::npos; at = events.find(key, at + 1)) ++k;
  return k;
}

void run_case(int64_t n) {
  std::printf("n = %lld:\n", static_cast<long long>(n));
  SessionOptions options;
  options.enable_profiling = true;
  options.profile_file_prefix = "/tmp/graft_cuda_collectives";
  InferenceSession session = InferenceSession::from_bytes(
      model_bytes(n), options, {"CUDAExecutionProvider", "CPUExecutionProvider"});
  Tensor a(DType::Float, {n}), b(DType::Float, {3, 5}), c(DType::Int64, {7});
  for (int64_t i = 0; i < n; ++i) a.data<float>()[i] = std::sin(0.001f * static_cast<float>(i));
  for (int64_t i = 0; i < 15; ++i) b.data<float>()[i] = 0.5f * static_cast<float>(i) - 3.0f;
  for (int64_t i = 0; i < 7; ++i) c.data<int64_t>()[i] = (i - 3) * 1000000007LL;
  std::vector<Value> out = session.run({}, {{"a", a}, {"b", b}, {"c", c}});
  const Tensor& y = out[0].tensor();
  const Tensor& b3 = out[1].tensor();
  const Tensor& c2 = out[2].tensor();
  const Tensor& gathered = out[3].tensor();
  bool host = true;
  for (const auto& v : out) host = host && v.tensor().buffer()->on_host();
  check(host, "every output is handed back in host memory");
  double worst = 0;
  bool gathered_ok = true;
  for (int64_t i = 0; i < n; ++i) {
    const float ai = a.data<float>()[i];
    worst = std::max(worst, static_cast<double>(std::fabs(y.data<float>()[i] - 3.0f * ai)));
    gathered_ok = gathered_ok && gathered.data<float>()[i] == 2.0f * ai;
  }
  check(worst == 0.0, "out = ReduceScatter(AllGather(AllReduce(2a))) + a = 3a (max error " +
                          std::to_string(worst) + ")");
  check(gathered_ok, "AllGather(AllReduce average of 2a) = 2a");
  bool b_ok = true;
  for (int64_t i = 0; i < 15; ++i) b_ok = b_ok && b3.data<float>()[i] == b.data<float>()[i];
  check(b_ok, "Broadcast(AllReduce average of b) = b (packed beside s at a 64-byte boundary)");
  bool c_ok = true;
  for (int64_t i = 0; i < 7; ++i) c_ok = c_ok && c2.data<int64_t>()[i] == c.data<int64_t>()[i];
  check(c_ok, "AllReduce average of int64 c = c (its own dtype group)");
  // The profile shows which nodes ran, copies included.
  const std::string trace = session.end_profiling();
  auto count = [&](const std::string& op) { return count_events(trace, op); };
  check(count("MemcpyFromHost") == 3,
        "3 host-to-device copies (s, b, c): " + std::to_string(count("MemcpyFromHost")));
  check(count("MemcpyToHost") == 4, "4 device-to-host copies (r for Add; outputs b3, c2, g): " +
                                        std::to_string(count("MemcpyToHost")));
  // Each collective returned before it completed; the compute stream waited for its event when a
  // later node read the outputs (the executor profiles those waits as <op>Wait).
  for (const char* op : {"AllReduce", "Broadcast", "AllGather", "ReduceScatter"}) {
    check(count(std::string(op) + "Wait") == 1,
          std::string(op) +
              " finished later, once: " + std::to_string(count(std::string(op) + "Wait")));
  }
}

// Data-parallel training on one rank, the gradients' AllReduce on the device over NCCL: the
// state after 5 SGD-momentum steps equals host-only training's, bit for bit (an average over one
// rank is the value itself).
void run_training() {
  std::printf("data-parallel training, AllReduce on the device:\n");
  const auto on_host = test_util::train_relu_regression({});
  const auto on_device = test_util::train_relu_regression(
      {"CUDAExecutionProvider", "CPUExecutionProvider"}, "/tmp/graft_cuda_training");
  const size_t reduces = count_events(on_device.trace, "AllReduce");
  check(reduces >= 5, "AllReduce ran in every step (" + std::to_string(reduces) + " in 5 steps)");
  check(count_events(on_device.trace, "AllReduceWait") == reduces,
        "every AllReduce overlapped the nodes after it until its outputs were read");
  check(count_events(on_device.trace, "MemcpyFromHost") > 0 &&
            count_events(on_device.trace, "MemcpyToHost") > 0,
        "the gradients went to the device and back");
  bool host = true;
  for (const auto& [name, h] : on_device.on_host) host = host && h;
  check(host, "the state stays in host memory");
  check(on_host.values == on_device.values && on_host.values.count("w") == 1,
        "state after 5 steps equals host-only training's (" +
            std::to_string(on_host.values.size()) + " tensors)");
}

}  // namespace
}  // namespace graft

int main() {
  std::string why;
  if (graft::cuda::device_count(&why) == 0) {
    std::printf("skipped: %s\n", why.c_str());
    return 77;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  std::printf("device 0: %s\n", prop.name);
  std::printf("available providers:");
  for (const auto& p : graft::available_providers()) std::printf(" %s", p.c_str());
  std::printf("\n");
  try {
    for (int64_t n : {1, 1000, 1048577, 6553600}) graft::run_case(n);
    graft::run_training();
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
  std::printf("%d failed\n", graft::failures);
  return graft::failures == 0 ? 0 : 1;
}
