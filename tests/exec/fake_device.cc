#include "tests/exec/fake_device.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "exec/provider.h"
#include "ir/model.h"
#include "ir/names.h"
#include "onnx/onnx_pb.h"

namespace graft::test_util {
namespace {

// Added to every address the fake device hands out: the result is not a canonical x86-64 address,
// so a host load or store through it faults.
constexpr uintptr_t kHidden = uintptr_t{1} << 62;

void* hide(void* p) { return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(p) + kHidden); }
void* reveal(const void* p) {
  return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(p) - kHidden);
}

class FakeDeviceMemory final : public Allocator {
 public:
  const char* name() const override { return "FakeDevice"; }
  void* allocate(size_t bytes) override {
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
    if (p == nullptr) throw std::bad_alloc();
    note_allocate(bytes);
    return hide(p);
  }
  void release(void* ptr, size_t bytes) override {
    note_release(bytes);
    std::free(reveal(ptr));
  }
  bool on_host() const override { return false; }
  void fill(void* ptr, int byte, size_t bytes) override { std::memset(reveal(ptr), byte, bytes); }
  void copy_from_host(void* dst, const void* src, size_t bytes) override {
    if (bytes > 0) std::memcpy(reveal(dst), src, bytes);
  }
  void copy_to_host(void* dst, const void* src, size_t bytes) override {
    if (bytes > 0) std::memcpy(dst, reveal(src), bytes);
  }
};

void ran(const std::string& op) { ++fake_device_log().ran[op]; }

// Input `i`, which must be in fake device memory.
const Tensor& device_input(const KernelContext& ctx, int i) {
  const Tensor& x = ctx.input(i);
  if (!on_fake_device(x)) ctx.fail("input " + std::to_string(i) + " is not in device memory");
  return x;
}

class Relu final : public Kernel {
 public:
  explicit Relu(const KernelInfo& info) {
    const Tensor* constant = info.constant_input(0);
    if (constant && !on_fake_device(*constant)) info.fail("was handed a host constant");
  }
  void compute(KernelContext& ctx) override {
    const Tensor& x = device_input(ctx, 0);
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    const float* in = device_elements<float>(x);
    float* out = device_elements<float>(y);
    for (int64_t i = 0; i < x.size(); ++i) out[i] = std::max(0.0f, in[i]);
    ran("Relu");
  }
};

// Reads its shape (input 1) on the host, as a device Reshape does.
class Reshape final : public Kernel {
 public:
  explicit Reshape(const KernelInfo&) {}
  void compute(KernelContext& ctx) override {
    const Tensor& x = device_input(ctx, 0);
    if (!ctx.input(1).on_host()) ctx.fail("the shape is not in host memory");
    Shape shape = ctx.input(1).to_int_vector();
    int64_t known = 1;
    int64_t inferred = -1;
    for (size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] == 0) shape[d] = x.dim(static_cast<int64_t>(d));
      if (shape[d] == -1) {
        inferred = static_cast<int64_t>(d);
      } else {
        known *= shape[d];
      }
    }
    if (inferred >= 0) shape[static_cast<size_t>(inferred)] = x.size() / known;
    ctx.set_output(0, Value(x.reshaped(shape)));
    ran("Reshape");
  }
};

// Gather along axis 0 only (its KernelDef declines other axes).
class Gather final : public Kernel {
 public:
  explicit Gather(const KernelInfo&) {}
  void compute(KernelContext& ctx) override {
    const Tensor& data = device_input(ctx, 0);
    const Tensor& indices = device_input(ctx, 1);
    Shape shape = indices.shape();
    shape.insert(shape.end(), data.shape().begin() + 1, data.shape().end());
    Tensor& y = ctx.output(0, data.dtype(), shape);
    const size_t row =
        data.rank() == 0 || data.dim(0) == 0 ? 0 : data.nbytes() / static_cast<size_t>(data.dim(0));
    const char* in = device_elements<char>(data);
    char* out = device_elements<char>(y);
    for (int64_t j = 0; j < indices.size(); ++j) {
      int64_t k = indices.dtype() == DType::Int64 ? device_elements<int64_t>(indices)[j]
                                                  : device_elements<int32_t>(indices)[j];
      if (k < 0) k += data.dim(0);
      std::memcpy(out + static_cast<size_t>(j) * row, in + static_cast<size_t>(k) * row, row);
    }
    ran("Gather");
  }
};

class Concat final : public Kernel {
 public:
  explicit Concat(const KernelInfo& info) : axis_(info.required_int("axis")) {}
  void compute(KernelContext& ctx) override {
    const Tensor& first = device_input(ctx, 0);
    const int64_t axis = axis_ < 0 ? axis_ + first.rank() : axis_;
    Shape shape = first.shape();
    shape[static_cast<size_t>(axis)] = 0;
    for (int i = 0; i < ctx.num_inputs(); ++i)
      shape[static_cast<size_t>(axis)] += device_input(ctx, i).dim(axis);
    Tensor& y = ctx.output(0, first.dtype(), shape);
    const int64_t outer = shape_size(Shape(shape.begin(), shape.begin() + axis));
    char* out = device_elements<char>(y);
    for (int64_t o = 0; o < outer; ++o) {
      for (int i = 0; i < ctx.num_inputs(); ++i) {
        const Tensor& x = ctx.input(i);
        const size_t chunk = outer == 0 ? 0 : x.nbytes() / static_cast<size_t>(outer);
        std::memcpy(out, device_elements<char>(x) + static_cast<size_t>(o) * chunk, chunk);
        out += chunk;
      }
    }
    ran("Concat");
  }

 private:
  int64_t axis_;
};

// Between float, double, int32 and int64 (its KernelDef declines any other target type).
class Cast final : public Kernel {
 public:
  explicit Cast(const KernelInfo& info) : to_(static_cast<DType>(info.required_int("to"))) {}
  void compute(KernelContext& ctx) override {
    const Tensor& x = device_input(ctx, 0);
    Tensor& y = ctx.output(0, to_, x.shape());
    for (int64_t i = 0; i < x.size(); ++i) write(y, i, read(x, i));
    ran("Cast");
  }

 private:
  static double read(const Tensor& t, int64_t i) {
    switch (t.dtype()) {
      case DType::Float:
        return device_elements<float>(t)[i];
      case DType::Double:
        return device_elements<double>(t)[i];
      case DType::Int32:
        return device_elements<int32_t>(t)[i];
      default:
        return static_cast<double>(device_elements<int64_t>(t)[i]);
    }
  }
  static void write(const Tensor& t, int64_t i, double v) {
    switch (t.dtype()) {
      case DType::Float:
        device_elements<float>(t)[i] = static_cast<float>(v);
        break;
      case DType::Double:
        device_elements<double>(t)[i] = v;
        break;
      case DType::Int32:
        device_elements<int32_t>(t)[i] = static_cast<int32_t>(v);
        break;
      default:
        device_elements<int64_t>(t)[i] = static_cast<int64_t>(v);
    }
  }
  DType to_;
};

const std::vector<DType> kCastTypes = {DType::Float, DType::Double, DType::Int32, DType::Int64};

bool casts_to_a_number(const ir::Node& node) {
  const ir::Attribute* to = node.find_attr("to");
  if (to == nullptr) return false;
  const auto dtype = static_cast<DType>(to->proto->i());
  return std::find(kCastTypes.begin(), kCastTypes.end(), dtype) != kCastTypes.end();
}

bool gathers_axis_0(const ir::Node& node) {
  const ir::Attribute* axis = node.find_attr("axis");
  return axis == nullptr || axis->proto->i() == 0;
}

// A host value comes in; one already in device memory passes through.
class FromHost final : public Kernel {
 public:
  explicit FromHost(const KernelInfo&) {}
  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (!on_fake_device(x)) ++fake_device_log().copies_in;
    ctx.set_output(0, Value(x.to(fake_device_memory())));
  }
};

class ToHost final : public Kernel {
 public:
  explicit ToHost(const KernelInfo&) {}
  void compute(KernelContext& ctx) override {
    const Tensor& x = device_input(ctx, 0);
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    if (!y.on_host()) ctx.fail("was given device memory for its host output");
    fake_device_memory().copy_to_host(y.raw(), x.raw(), x.nbytes());
    ++fake_device_log().copies_out;
  }
};

const KernelRegistry& fake_registry() {
  static const KernelRegistry registry = [] {
    KernelRegistry reg;
    reg.add({"", "Relu", 14, 1 << 30, {DType::Float}, 0, make<Relu>});
    reg.add({"", "Reshape", 5, 1 << 30, {}, 0, make<Reshape>, {1}});
    reg.add({"", "Gather", 13, 1 << 30, {}, 0, make<Gather>, {}, {}, gathers_axis_0});
    reg.add({"", "Concat", 13, 1 << 30, {}, 0, make<Concat>});
    reg.add({"", "Cast", 13, 1 << 30, kCastTypes, 0, make<Cast>, {}, {}, casts_to_a_number});
    reg.add({names::kDomain, "MemcpyFromHost", 1, 1 << 30, {}, 0, make<FromHost>});
    reg.add({names::kDomain, "MemcpyToHost", 1, 1 << 30, {}, 0, make<ToHost>});
    return reg;
  }();
  return registry;
}

class FakeDeviceProvider final : public ExecutionProvider {
 public:
  const char* name() const override { return kFakeDevice; }
  std::vector<size_t> capability(const ir::Model& model, const ir::Graph& graph) const override {
    return supported_nodes(registry(), model, graph);
  }
  const KernelRegistry& registry() const override { return fake_registry(); }
  Allocator& allocator() const override { return fake_device_memory(); }
};

std::unique_ptr<ExecutionProvider> make_fake(const ProviderOptions&) {
  return std::make_unique<FakeDeviceProvider>();
}

struct Registrar {
  Registrar() { register_provider(kFakeDevice, 200, &make_fake, /*by_default=*/false); }
} registrar;

}  // namespace

Allocator& fake_device_memory() {
  static auto* memory = new FakeDeviceMemory();
  return *memory;
}

bool on_fake_device(const Tensor& t) {
  return t.buffer() && t.buffer()->allocator() == &fake_device_memory();
}

void* device_address(const Tensor& t) {
  if (!on_fake_device(t)) throw InvalidArgument("not a fake device tensor");
  return reveal(t.raw());
}

FakeDeviceLog& fake_device_log() {
  static FakeDeviceLog log;
  return log;
}

void reset_fake_device() { fake_device_log() = FakeDeviceLog{}; }

}  // namespace graft::test_util
