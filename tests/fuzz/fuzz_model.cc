// libFuzzer target: bytes -> ONNX model -> checker and shape inference -> optimized, planned
// session -> one run with inputs made from the declared types and shapes. A hostile model must
// end in one of graft's exceptions (fuzz_support.h), never in a crash, a sanitizer report, a
// hang or unbounded memory.
//
// Each run is stopped through RunOptions::terminate after GRAFT_FUZZ_RUN_SECONDS (default 5):
// a model may legitimately loop for long, and libFuzzer's -timeout is for what cannot be stopped.
// The session's memory limit is GRAFT_FUZZ_MEMORY_LIMIT_MB (default 1024), below the
// -malloc_limit_mb and -rss_limit_mb that scripts/sanitize.sh gives libFuzzer: a tensor past it
// must be refused by graft, so what reaches libFuzzer's limits is memory graft did not account.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "exec/session.h"
#include "fuzz_support.h"
#include "ir/model.h"
#include "ir/serialize.h"

namespace graft::fuzz {
namespace {

// Synthesized inputs stay small: a model that declares a larger input is loaded and planned but
// not run.
constexpr int64_t kMaxElements = 4096;

// A dimension that is not a fixed number gets 1, 2 or 3, from its position.
int64_t free_dim(size_t input, size_t axis) {
  return 1 + static_cast<int64_t>((input * 7 + axis) % 3);
}

// The elements of a synthesized input: small values of both signs (and zero), so that indices,
// axes and divisors take their edge cases; or, for half of the models (by a hash of their
// bytes), small non-negative ones, so that more of them get past the checks into the kernels.
struct Elements {
  bool non_negative = false;
  int64_t operator()(int64_t i) const {
    return non_negative ? (i * 7 + 3) % 4 : (i * 7 + 3) % 11 - 5;
  }
};

template <typename T>
void fill_as(Tensor& t, const Elements& element) {
  T* data = t.data<T>();
  for (int64_t i = 0; i < t.size(); ++i) {
    const int64_t v = element(i);
    if constexpr (std::is_unsigned_v<T>) {
      data[i] = static_cast<T>(v < 0 ? -v : v);
    } else if constexpr (std::is_integral_v<T>) {
      data[i] = static_cast<T>(v);
    } else {
      data[i] = T(static_cast<float>(v));
    }
  }
}

void fill(Tensor& t, const Elements& element) {
  switch (t.dtype()) {
    case DType::Float:
      return fill_as<float>(t, element);
    case DType::Double:
      return fill_as<double>(t, element);
    case DType::Float16:
      return fill_as<Float16>(t, element);
    case DType::BFloat16:
      return fill_as<BFloat16>(t, element);
    case DType::Int8:
      return fill_as<int8_t>(t, element);
    case DType::Int16:
      return fill_as<int16_t>(t, element);
    case DType::Int32:
      return fill_as<int32_t>(t, element);
    case DType::Int64:
      return fill_as<int64_t>(t, element);
    case DType::UInt8:
      return fill_as<uint8_t>(t, element);
    case DType::UInt16:
      return fill_as<uint16_t>(t, element);
    case DType::UInt32:
      return fill_as<uint32_t>(t, element);
    case DType::UInt64:
      return fill_as<uint64_t>(t, element);
    case DType::Bool: {
      bool* data = t.data<bool>();
      for (int64_t i = 0; i < t.size(); ++i) data[i] = element(i) > 0;
      return;
    }
    case DType::String: {
      auto* data = t.data<std::string>();
      for (int64_t i = 0; i < t.size(); ++i) data[i] = std::string(static_cast<size_t>(i % 3), 'a');
      return;
    }
    default:
      // float8, sub-byte and complex types keep their zeros.
      return;
  }
}

// A feed for `info`, or a None value when its type is one this target does not make (maps).
Value synthesize(const IOInfo& info, size_t index, const Elements& element) {
  Shape shape;
  if (info.has_shape) {
    for (size_t axis = 0; axis < info.dims.size(); ++axis) {
      shape.push_back(info.dims[axis] >= 0 ? info.dims[axis] : free_dim(index, axis));
    }
  } else {
    shape = {2};
  }
  int64_t count = 1;
  for (int64_t d : shape) {
    if (d > kMaxElements) return {};
    count *= d;
    if (count > kMaxElements) return {};
  }
  if (info.dtype == DType::Undefined) return {};
  Tensor t(info.dtype, shape);
  fill(t, element);
  const std::string& type = info.type;
  if (type.rfind("tensor(", 0) == 0) return t;
  if (type.rfind("seq(tensor(", 0) == 0) return Value::sequence({t, t.clone()}, info.dtype);
  if (type.rfind("optional(tensor(", 0) == 0) {
    return Value::optional(t, Value::Kind::Tensor, info.dtype);
  }
  return {};
}

// Sets `flag` once `seconds` have passed, unless destroyed first.
class Watchdog {
 public:
  Watchdog(std::atomic<bool>& flag, double seconds)
      : thread_([this, &flag, seconds] {
          std::unique_lock<std::mutex> lock(mutex_);
          if (!done_cv_.wait_for(lock, std::chrono::duration<double>(seconds),
                                 [this] { return done_; })) {
            flag = true;
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    done_cv_.notify_one();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::thread thread_;
};

double env_number(const char* name, double fallback) {
  const char* env = std::getenv(name);
  return env != nullptr ? std::atof(env) : fallback;
}

void fuzz_one(const std::string& bytes) {
  ir::Model model = ir::load_model_from_bytes(bytes);
  SessionOptions options;
  options.intra_op_num_threads = 1;
  static const double limit_mb = env_number("GRAFT_FUZZ_MEMORY_LIMIT_MB", 1024);
  options.memory_limit_bytes = static_cast<size_t>(limit_mb * 1024 * 1024);
  InferenceSession session(std::move(model), options);
  std::map<std::string, Value> feeds;
  const Elements element{std::hash<std::string>{}(bytes) % 2 == 1};
  for (size_t i = 0; i < session.inputs().size(); ++i) {
    const IOInfo& info = session.inputs()[i];
    Value feed = synthesize(info, i, element);
    if (feed.is_none()) return;
    feeds.emplace(info.name, std::move(feed));
  }
  std::atomic<bool> terminate{false};
  RunOptions run_options;
  run_options.terminate = &terminate;
  std::vector<Value> outputs;
  {
    static const double seconds = env_number("GRAFT_FUZZ_RUN_SECONDS", 5);
    Watchdog watchdog(terminate, seconds);
    outputs = session.run({}, feeds, run_options);
  }
  for (const Value& output : outputs) touch(output);
}

}  // namespace
}  // namespace graft::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  graft::fuzz::guarded("fuzz_model", [&] { graft::fuzz::fuzz_one(bytes); });
  return 0;
}
