// Checkpoints store every float bit-exactly (learning rates as small as a subnormal), entries
// whose dims or sizes do not add up are refused by name, and a TrainingSession refuses a bad
// checkpoint before anything of its state changes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <stdexcept>
#include <tuple>

#include "exec/error.h"
#include "exec/generator.h"
#include "ir/names.h"
#include "onnx/onnx_pb.h"
#include "tests/model_builder.h"
#include "train/checkpoint.h"
#include "train/training_session.h"

namespace graft {
namespace {

std::filesystem::path temp_folder() {
  auto dir = std::filesystem::temp_directory_path() /
             ("graft_checkpoint_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

// loss = mean((x w^T - target)^2), w [2, 3].
ir::Model regression() {
  test_util::ModelBuilder b("regression");
  b.initializer("w", {2, 3}, [](int64_t i) { return 0.1f * static_cast<float>(i) - 0.2f; });
  test_util::ModelBuilder::int_attribute(b.node("Gemm", {"x", "w"}, "y"), "transB", 1);
  b.node("Sub", {"y", "target"}, "err");
  b.node("Mul", {"err", "err"}, "sq");
  test_util::ModelBuilder::int_attribute(b.node("ReduceMean", {"sq"}, "loss"), "keepdims", 0);
  b.input("x", std::vector<std::string>{"N", "3"});
  b.input("target", std::vector<std::string>{"N", "2"});
  b.output("loss", std::vector<std::string>{});
  return b.build();
}

std::map<std::string, Value> batch() {
  Tensor x(DType::Float, {4, 3}), target(DType::Float, {4, 2});
  for (int64_t i = 0; i < x.size(); ++i) x.data<float>()[i] = 0.25f * static_cast<float>(i % 5);
  for (int64_t i = 0; i < target.size(); ++i) target.data<float>()[i] = 0.5f;
  return {{"x", x}, {"target", target}};
}

TEST(Checkpoint, FloatsRoundTripBitExactly) {
  const float denormal = std::numeric_limits<float>::denorm_min();
  for (float value : {1e-7f, 3.14159e-12f, denormal, 5.877e-39f, 0.1f, -2.5e38f, 0.0f}) {
    const float back = parse_float(format_float(value), "value");
    EXPECT_EQ(std::bit_cast<uint32_t>(back), std::bit_cast<uint32_t>(value)) << format_float(value);
  }
  EXPECT_THROW(parse_float("abc", "property 'graft.lr'"), InvalidArgument);
  EXPECT_THROW(parse_float("1e99", "property 'graft.lr'"), InvalidArgument);
  EXPECT_THROW(parse_float("", "property 'graft.lr'"), InvalidArgument);
}

TEST(Checkpoint, TrainingSessionLearningRatesRoundTripBitExactly) {
  const auto dir = temp_folder();
  for (float lr : {1e-7f, 3.14159e-12f, std::numeric_limits<float>::denorm_min()}) {
    TrainingOptions options;
    options.loss = "loss";
    options.learning_rate = lr;
    options.data_parallel = false;
    TrainingSession saved(regression(), options);
    saved.train_step(batch());
    saved.save_checkpoint((dir / "lr.ckpt").string());
    options.learning_rate = 1.0f;
    TrainingSession loaded(regression(), options);
    loaded.load_checkpoint((dir / "lr.ckpt").string());
    EXPECT_EQ(std::bit_cast<uint32_t>(loaded.learning_rate()), std::bit_cast<uint32_t>(lr))
        << format_float(lr) << " came back as " << format_float(loaded.learning_rate());
    EXPECT_EQ(loaded.step(), 1);
  }
  std::filesystem::remove_all(dir);
}

// A checkpoint file taken apart as train/checkpoint.cc lays it out (magic, step, properties,
// tensor entries each with its CRC-32, the CRC-32 of the whole), so a test can change one part
// and write the file back with every checksum recomputed: the file then passes the checksums
// and only the check under test can refuse it.
struct CheckpointFile {
  uint64_t step = 0;
  std::vector<std::pair<std::string, std::string>> properties;
  std::vector<onnx::TensorProto> tensors;

  static uint32_t crc32(const std::string& data) {
    uint32_t c = 0xFFFFFFFFu;
    for (unsigned char ch : data) {
      c ^= ch;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
  }

  static CheckpointFile read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t pos = 8;
    auto u64 = [&] {
      uint64_t v = 0;
      for (int i = 0; i < 8; ++i)
        v |= static_cast<uint64_t>(static_cast<unsigned char>(data.at(pos + i))) << (8 * i);
      pos += 8;
      return v;
    };
    auto bytes = [&] {
      const uint64_t n = u64();
      std::string s = data.substr(pos, n);
      pos += n;
      return s;
    };
    CheckpointFile file;
    file.step = u64();
    for (uint64_t n = u64(); n > 0; --n) {
      std::string key = bytes();
      file.properties.emplace_back(key, bytes());
    }
    for (uint64_t n = u64(); n > 0; --n) {
      file.tensors.emplace_back().ParseFromString(bytes());
      u64();  // its CRC, recomputed when written
    }
    return file;
  }

  std::string bytes() const {
    std::string out = "GRAFTCK1";
    auto u64 = [&](uint64_t v) {
      for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
    };
    auto bytes = [&](const std::string& s) {
      u64(s.size());
      out += s;
    };
    u64(step);
    u64(properties.size());
    for (const auto& [key, value] : properties) {
      bytes(key);
      bytes(value);
    }
    u64(tensors.size());
    for (const auto& t : tensors) {
      const std::string entry = t.SerializeAsString();
      bytes(entry);
      u64(crc32(entry));
    }
    u64(crc32(out));
    return out;
  }

  void write(const std::string& path) const { std::ofstream(path, std::ios::binary) << bytes(); }

  onnx::TensorProto& tensor(const std::string& name) {
    for (auto& t : tensors) {
      if (t.name() == name) return t;
    }
    throw std::runtime_error("no tensor " + name);
  }

  void set_property(const std::string& key, const std::string& value) {
    for (auto& [k, v] : properties) {
      if (k == key) {
        v = value;
        return;
      }
    }
    properties.emplace_back(key, value);
  }
};

onnx::TensorProto entry(const std::string& name, int data_type, const std::vector<int64_t>& dims,
                        size_t raw_bytes) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(data_type);
  for (int64_t d : dims) t.add_dims(d);
  t.set_raw_data(std::string(raw_bytes, '\x01'));
  return t;
}

// The message of the InvalidArgument `f` throws; a failure when it throws none.
std::string refusal(const std::function<void()>& f) {
  try {
    f();
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted";
  return "";
}

TEST(Checkpoint, EntriesAreCheckedBeforeTheirTensorsAreMade) {
  const auto dir = temp_folder();
  const std::string good = (dir / "good.ckpt").string(), bad = (dir / "bad.ckpt").string();
  Checkpoint c;
  c.tensors["w"] = Tensor(DType::Float, {2, 3});
  save_checkpoint(c, good);
  CheckpointFile::read(good).write(bad);
  EXPECT_EQ(load_checkpoint(bad).tensors.at("w").shape(), (Shape{2, 3}));  // written back alike

  // 3 * 6148914691236517206 is 2^64 + 2: wrapped, the dims would claim two floats.
  const int64_t wraps = 6148914691236517206;
  const int64_t big = int64_t{1} << 61;
  const int float_type = onnx::TensorProto::FLOAT;
  onnx::TensorProto untyped = entry("extra", float_type, {int64_t{1} << 40}, 0);
  untyped.clear_raw_data();
  const std::vector<std::pair<onnx::TensorProto, std::vector<std::string>>> cases = {
      {entry("extra", float_type, {3, wraps}, 8), {"tensor 'extra'", "element count", "overflows"}},
      {entry("extra", onnx::TensorProto::INT64, {big, 4}, 8),
       {"'extra'", "element count", "overflows"}},
      {entry("extra", float_type, {big}, 8), {"'extra'", "size in bytes", "overflows"}},
      {entry("extra", float_type, {2, -1}, 0), {"'extra'", "[2, -1]", "negative"}},
      {entry("extra", float_type, {2, 3}, 20), {"'extra'", "stores 20 bytes", "need 24"}},
      {entry("extra", onnx::TensorProto::INT4, {5}, 2), {"'extra'", "stores 2 bytes", "need 3"}},
      {entry("extra", 99, {2}, 8), {"'extra'", "element type 99"}},
      {untyped, {"'extra'", "holds 0 values"}},
      {entry("w", float_type, {2, 3}, 24), {"tensor 'w' appears twice"}},
  };
  for (const auto& [crafted, mentions] : cases) {
    CheckpointFile file = CheckpointFile::read(good);
    file.tensors.push_back(crafted);
    file.write(bad);
    const std::string message = refusal([&] { load_checkpoint(bad); });
    EXPECT_NE(message.find("bad.ckpt"), std::string::npos) << message;
    for (const auto& m : mentions) EXPECT_NE(message.find(m), std::string::npos) << message;
  }
  std::filesystem::remove_all(dir);
}

// The session's whole state, its step, learning rate and the default generator, as bytes.
struct Snapshot {
  std::map<std::string, std::string> tensors;
  int64_t step;
  float learning_rate;
  std::string generator;

  explicit Snapshot(const TrainingSession& session)
      : step(session.step()),
        learning_rate(session.learning_rate()),
        generator(default_generator().state()) {
    for (const auto& [name, t] : session.host_state()) {
      tensors[name] = dtype_name(t.dtype()) + shape_to_string(t.shape()) +
                      std::string(static_cast<const char*>(t.raw()), t.nbytes());
    }
  }
  bool operator==(const Snapshot&) const = default;
};

TEST(Checkpoint, RefusedCheckpointLeavesTheSessionAsItWas) {
  const auto dir = temp_folder();
  TrainingOptions options;
  options.loss = "loss";
  options.data_parallel = false;
  options.optimizer.kind = optim::Kind::AdamW;
  TrainingSession session(regression(), options);
  session.train_step(batch());
  const std::string good = (dir / "good.ckpt").string(), bad = (dir / "bad.ckpt").string();
  session.save_checkpoint(good);
  // Every value the file holds now differs from the session's, so a partial load shows.
  session.train_step(batch());
  session.train_step(batch());
  session.set_learning_rate(0.5f);
  default_generator().seed(77);
  const Snapshot before(session);
  ASSERT_EQ(before.tensors.size(), 3u);  // w and its two AdamW moments

  using Edit = std::function<void(CheckpointFile&)>;
  const std::vector<std::tuple<std::string, Edit, std::vector<std::string>>> cases = {
      {"learning rate",
       [](CheckpointFile& f) { f.set_property(names::kLearningRate, "abc"); },
       {"property 'graft.lr'", "'abc'"}},
      {"generator",
       [](CheckpointFile& f) { f.set_property(names::kRngProperty, "not a generator state"); },
       {"property 'graft.rng'"}},
      {"world size",
       [](CheckpointFile& f) { f.set_property(names::kWorldSizeProperty, "two"); },
       {"'graft.world_size'", "'two'"}},
      {"element type",
       [](CheckpointFile& f) { f.tensor("w").set_data_type(onnx::TensorProto::INT32); },
       {"tensor 'w' is int32 [2, 3]", "holds float [2, 3]"}},
      {"shape",
       [](CheckpointFile& f) {
         f.tensor("w").set_dims(0, 3);
         f.tensor("w").set_dims(1, 2);
       },
       {"tensor 'w' is float [3, 2]", "holds float [2, 3]"}},
      {"optimizer state",
       [](CheckpointFile& f) { f.tensor("w.adamw.v").set_data_type(onnx::TensorProto::INT32); },
       {"tensor 'w.adamw.v' is int32"}},
      {"overflowing dims",
       [](CheckpointFile& f) {
         f.tensors.push_back(entry("extra", onnx::TensorProto::FLOAT, {3, 6148914691236517206}, 8));
       },
       {"tensor 'extra'", "overflows"}},
      {"missing tensor",
       [](CheckpointFile& f) {
         std::erase_if(f.tensors, [](const auto& t) { return t.name() == "w.adamw.m"; });
       },
       {"no tensor 'w.adamw.m'"}},
      {"negative step",
       [](CheckpointFile& f) { f.step = ~uint64_t{0} - 4; },
       {"step counter is -5"}},
  };
  for (const auto& [what, edit, mentions] : cases) {
    CheckpointFile file = CheckpointFile::read(good);
    edit(file);
    file.write(bad);
    const std::string message = refusal([&] { session.load_checkpoint(bad); });
    EXPECT_NE(message.find("bad.ckpt"), std::string::npos) << what << ": " << message;
    for (const auto& m : mentions)
      EXPECT_NE(message.find(m), std::string::npos) << what << ": " << message;
    EXPECT_TRUE(Snapshot(session) == before) << what;
  }
  const std::string bytes = CheckpointFile::read(good).bytes();
  for (size_t keep : {size_t{4}, size_t{30}, bytes.size() / 2, bytes.size() - 1}) {
    std::ofstream(bad, std::ios::binary) << bytes.substr(0, keep);
    const std::string message = refusal([&] { session.load_checkpoint(bad); });
    EXPECT_NE(message.find("bad.ckpt"), std::string::npos) << message;
    EXPECT_TRUE(Snapshot(session) == before) << "cut at " << keep;
  }
  // The session trains on, and the file the edits started from loads.
  session.train_step(batch());
  EXPECT_EQ(session.step(), 4);
  session.load_checkpoint(good);
  EXPECT_EQ(session.step(), 1);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace graft
