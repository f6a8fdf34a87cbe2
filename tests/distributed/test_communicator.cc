// distributed::Communicator in a single process (the MPI backend is tested under mpirun by
// tests/python/distributed/test_collectives.py), and the com.graft collective kernels on it.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "distributed/average.h"
#include "distributed/backends.h"
#include "distributed/communicator.h"
#include "distributed/watchdog.h"
#include "exec/error.h"
#include "exec/session.h"
#include "onnx/onnx_pb.h"

namespace graft::distributed {
namespace {

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(Communicator, SingleProcessIsRankZeroOfOne) {
  auto comm = make_single_process_communicator();
  EXPECT_STREQ(comm->backend(), "single");
  EXPECT_EQ(comm->rank(), 0);
  EXPECT_EQ(comm->size(), 1);
  std::vector<float> x = {1, 2, 3};
  comm->all_reduce(x.data(), 3, DType::Float, ReduceOp::Average);
  comm->broadcast(x.data(), 3, DType::Float, 0);
  EXPECT_EQ(x, (std::vector<float>{1, 2, 3}));
  std::vector<float> y(3);
  comm->all_gather(x.data(), y.data(), 3, DType::Float);
  EXPECT_EQ(y, x);
  std::vector<int64_t> a = {4, 5}, b(2);
  comm->reduce_scatter(a.data(), b.data(), 2, DType::Int64, ReduceOp::Sum);
  EXPECT_EQ(b, a);
  comm->barrier();
}

TEST(Communicator, ErrorsNameCollectiveLabelRankAndStep) {
  auto comm = make_single_process_communicator();
  comm->set_step(5);
  const CollectiveLabel label("[com.graft.AllReduce] node 'bucket3'");
  std::vector<char> flags(2);
  EXPECT_EQ(
      message_of([&] { comm->all_reduce(flags.data(), 2, DType::Bool, ReduceOp::Sum); }),
      "all_reduce ([com.graft.AllReduce] node 'bucket3') of 2 bool elements on rank 0 of 1 at "
      "step 5: cannot reduce elements of type bool");
  EXPECT_THROW(comm->broadcast(flags.data(), 2, DType::Bool, 1), InvalidArgument);
  EXPECT_THROW(comm->all_gather(flags.data(), flags.data(), -1, DType::UInt8), InvalidArgument);
  EXPECT_THROW(comm->broadcast(flags.data(), 1, DType::String, 0), InvalidArgument);
  EXPECT_THROW(comm->set_timeout(-1), InvalidArgument);
  EXPECT_THROW(parse_reduce_op("max", "AllReduce"), InvalidArgument);
}

TEST(Communicator, LabelsNestPerThread) {
  EXPECT_EQ(CollectiveLabel::current(), "");
  {
    const CollectiveLabel outer("outer");
    {
      const CollectiveLabel inner("inner");
      EXPECT_EQ(CollectiveLabel::current(), "inner");
    }
    EXPECT_EQ(CollectiveLabel::current(), "outer");
  }
  EXPECT_EQ(CollectiveLabel::current(), "");
}

TEST(Communicator, TimeoutComesFromTheEnvironment) {
  ::unsetenv("GRAFT_COLLECTIVE_TIMEOUT_S");
  EXPECT_EQ(default_timeout_seconds(), 300.0);
  ::setenv("GRAFT_COLLECTIVE_TIMEOUT_S", "2.5", 1);
  EXPECT_EQ(default_timeout_seconds(), 2.5);
  EXPECT_EQ(make_single_process_communicator()->timeout(), 2.5);
  ::setenv("GRAFT_COLLECTIVE_TIMEOUT_S", "soon", 1);
  EXPECT_THROW(default_timeout_seconds(), InvalidArgument);
  ::unsetenv("GRAFT_COLLECTIVE_TIMEOUT_S");
}

TEST(Communicator, AverageDividesInTheElementType) {
  std::vector<int32_t> ints = {7, -7, 8};
  divide_in_place(ints.data(), 3, DType::Int32, 2);
  EXPECT_EQ(ints, (std::vector<int32_t>{3, -3, 4}));
  std::vector<Float16> halves = {Float16(3.0f), Float16(-1.0f)};
  divide_in_place(halves.data(), 2, DType::Float16, 2);
  EXPECT_EQ(static_cast<float>(halves[0]), 1.5f);
  EXPECT_EQ(static_cast<float>(halves[1]), -0.5f);
}

TEST(Communicator, WorldIsSingleProcessWithoutALauncher) {
  if (launched_world_size() > 1) GTEST_SKIP() << "running under an MPI launcher";
  EXPECT_STREQ(world().backend(), "single");
  EXPECT_EQ(&world(), &world());
}

TEST(Watchdog, FiresOnlyForAnOperationPastItsDeadline) {
  std::atomic<int> fired{0};
  std::string seen;
  Watchdog watchdog([&](const std::string& what, const std::string& peer) {
    seen = what + " / " + peer;
    ++fired;
  });
  watchdog.arm(0.05, "all_reduce fast", "peer rank 1");
  watchdog.disarm();
  watchdog.arm(10.0, "all_reduce slow", "peer rank 1");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  watchdog.disarm();
  EXPECT_EQ(fired.load(), 0);
  watchdog.arm(0.02, "barrier", "peer ranks 1, 2");
  for (int i = 0; i < 200 && fired.load() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  watchdog.disarm();
  EXPECT_EQ(fired.load(), 1);
  EXPECT_EQ(seen, "barrier / peer ranks 1, 2");
}

// Without a GPU (or without NCCL) the NCCL factory fails with an exception, never a crash.
TEST(Communicator, NcclFactoryFailsCleanlyWithoutADevice) {
  auto bootstrap = make_single_process_communicator();
  if (!built_with_nccl()) {
    EXPECT_THROW(make_nccl_communicator(*bootstrap, 0, nullptr), NotImplemented);
    return;
  }
  try {
    auto comm = make_nccl_communicator(*bootstrap, 0, nullptr);
    EXPECT_EQ(comm->size(), 1);
    comm->barrier();
  } catch (const Fail& e) {
    EXPECT_NE(std::string(e.what()).find("failed"), std::string::npos) << e.what();
  }
}

// One com.graft node of `op_type` over inputs x (float [4, 2]) and y (int64 [3]).
std::string collective_model(const std::string& op_type, int num_inputs,
                             const std::string& attr = "", int64_t value = 0) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(18);
  auto* graft_opset = m.add_opset_import();
  graft_opset->set_domain("com.graft");
  graft_opset->set_version(1);
  auto* g = m.mutable_graph();
  g->set_name("g");
  auto* node = g->add_node();
  node->set_op_type(op_type);
  node->set_domain("com.graft");
  node->set_name("collective");
  if (!attr.empty()) {
    auto* a = node->add_attribute();
    a->set_name(attr);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(value);
  }
  const char* names[] = {"x", "y"};
  const int types[] = {onnx::TensorProto::FLOAT, onnx::TensorProto::INT64};
  for (int i = 0; i < num_inputs; ++i) {
    node->add_input(names[i]);
    node->add_output(std::string(names[i]) + "_out");
    for (auto* info : {g->add_input(), g->add_output()}) {
      info->set_name(info == &g->input(i) ? names[i] : std::string(names[i]) + "_out");
      info->mutable_type()->mutable_tensor_type()->set_elem_type(types[i]);
    }
  }
  return m.SerializeAsString();
}

TEST(CollectiveKernels, RunOnASingleProcess) {
  Tensor x(DType::Float, {4, 2});
  for (int i = 0; i < 8; ++i) x.data<float>()[i] = static_cast<float>(i);
  Tensor y(DType::Int64, {3});
  for (int i = 0; i < 3; ++i) y.data<int64_t>()[i] = 10 + i;
  for (const char* op : {"AllReduce", "Broadcast"}) {
    auto out = InferenceSession::from_bytes(collective_model(op, 2)).run({}, {{"x", x}, {"y", y}});
    ASSERT_EQ(out.size(), 2u) << op;
    EXPECT_EQ(out[0].tensor().shape(), x.shape()) << op;
    EXPECT_EQ(out[0].tensor().data<float>()[7], 7.0f) << op;
    EXPECT_EQ(out[1].tensor().data<int64_t>()[2], 12) << op;
  }
  for (const char* op : {"AllGather", "ReduceScatter"}) {
    auto out = InferenceSession::from_bytes(collective_model(op, 1)).run({}, {{"x", x}});
    EXPECT_EQ(out[0].tensor().shape(), x.shape()) << op;
    EXPECT_EQ(out[0].tensor().data<float>()[5], 5.0f) << op;
  }
}

TEST(CollectiveKernels, ErrorsNameTheNode) {
  auto session = InferenceSession::from_bytes(collective_model("Broadcast", 1, "root", 1));
  Tensor x(DType::Float, {4, 2});
  const std::string message = message_of([&] { session.run({}, {{"x", x}}); });
  EXPECT_NE(message.find("node 'collective'"), std::string::npos) << message;
  EXPECT_NE(message.find("root 1 is not a rank of 1"), std::string::npos) << message;
}

}  // namespace
}  // namespace graft::distributed
