#include "exec/memory_plan.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "exec/error.h"

namespace graft {

ArenaLayout plan_arenas(const std::vector<BufferLifetime>& buffers, size_t num_arenas,
                        size_t alignment) {
  if (alignment == 0) throw InvalidArgument("plan_arenas: alignment must be positive");
  auto rounded = [&](size_t bytes) { return (bytes + alignment - 1) / alignment * alignment; };
  for (size_t i = 0; i < buffers.size(); ++i) {
    const BufferLifetime& b = buffers[i];
    if (b.last < b.first || b.arena < 0 || static_cast<size_t>(b.arena) >= num_arenas) {
      throw InvalidArgument("plan_arenas: buffer " + std::to_string(i) + " (steps " +
                            std::to_string(b.first) + " to " + std::to_string(b.last) + ", arena " +
                            std::to_string(b.arena) + " of " + std::to_string(num_arenas) +
                            ") is not a valid lifetime");
    }
  }
  ArenaLayout layout;
  layout.offsets.assign(buffers.size(), 0);
  layout.arena_bytes.assign(num_arenas, 0);
  std::vector<size_t> order(buffers.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const size_t size_a = rounded(buffers[a].bytes), size_b = rounded(buffers[b].bytes);
    if (size_a != size_b) return size_a > size_b;
    if (buffers[a].first != buffers[b].first) return buffers[a].first < buffers[b].first;
    return a < b;
  });
  // Per arena, the buffers placed so far in the order of their offsets.
  std::vector<std::vector<size_t>> placed(num_arenas);
  for (size_t i : order) {
    const BufferLifetime& want = buffers[i];
    const size_t size = rounded(want.bytes);
    std::vector<size_t>& arena = placed[static_cast<size_t>(want.arena)];
    // `end`: the lowest offset above every buffer seen so far that is alive with this one.
    size_t end = 0;
    size_t best = std::numeric_limits<size_t>::max();
    size_t best_gap = std::numeric_limits<size_t>::max();
    for (size_t j : arena) {
      const BufferLifetime& other = buffers[j];
      if (other.last < want.first || want.last < other.first) continue;
      const size_t start = layout.offsets[j];
      if (start > end && start - end >= size && start - end < best_gap) {
        best = end;
        best_gap = start - end;
      }
      end = std::max(end, start + rounded(other.bytes));
    }
    const size_t offset = best_gap == std::numeric_limits<size_t>::max() ? end : best;
    layout.offsets[i] = offset;
    arena.insert(
        std::upper_bound(arena.begin(), arena.end(), offset,
                         [&](size_t value, size_t j) { return value < layout.offsets[j]; }),
        i);
    size_t& peak = layout.arena_bytes[static_cast<size_t>(want.arena)];
    peak = std::max(peak, offset + size);
  }
  return layout;
}

// A recorded pattern: the arenas, and per step the planned outputs in the order the step's
// kernel asked for them.
struct MemoryPatterns::Pattern {
  struct Buffer {
    int output;  // the output index the kernel passed to KernelContext::output
    int arena;
    size_t offset;
    size_t bytes;
  };
  std::vector<Allocator*> allocators;  // per arena
  std::vector<size_t> arena_bytes;     // per arena
  std::vector<Buffer> buffers;         // ordered by step
  std::vector<size_t> step_begin;      // step s planned buffers[step_begin[s], step_begin[s + 1])
  std::vector<std::vector<size_t>> ending;  // per step: the buffers dropped by its end
};

namespace {

constexpr size_t kMaxPatterns = 64;

void append_signature(const Value* v, std::vector<int64_t>& out) {
  if (v == nullptr) {
    out.push_back(-1);
    return;
  }
  out.push_back(static_cast<int64_t>(v->kind()));
  switch (v->kind()) {
    case Value::Kind::Tensor: {
      const Tensor& t = v->tensor();
      out.push_back(static_cast<int64_t>(t.dtype()));
      out.push_back(t.rank());
      out.insert(out.end(), t.shape().begin(), t.shape().end());
      break;
    }
    case Value::Kind::Map: {
      const Value keys(v->map_keys()), values(v->map_values());
      append_signature(&keys, out);
      append_signature(&values, out);
      break;
    }
    case Value::Kind::Sequence:
    case Value::Kind::Optional:
      out.push_back(static_cast<int64_t>(v->elements().size()));
      for (const auto& e : v->elements()) append_signature(&e, out);
      break;
    case Value::Kind::None:
      break;
  }
}

}  // namespace

// The first run of a signature: allocates as usual and watches when each buffer dies.
class MemoryPatterns::Recorder final : public RunMemory {
 public:
  Recorder(MemoryPatterns& owner, std::vector<int64_t> signature, int num_steps)
      : owner_(owner), signature_(std::move(signature)), num_steps_(num_steps) {}

  Tensor allocate(int output, DType dtype, const Shape& shape, Allocator& allocator) override {
    Tensor t = Tensor::empty(dtype, shape, allocator);
    if (step_ >= 0 && dtype != DType::String && t.nbytes() > 0) {
      live_.push_back(seen_.size());
      seen_.push_back({step_, output, &allocator, t.nbytes(), t.buffer(), -1});
    }
    return t;
  }

  void begin_step(int step) override { step_ = step; }

  // A buffer dies when the last value sharing it (its tensor, a view, an in-place output, a
  // sequence holding it) is dropped: watching the Buffer covers every kind of alias.
  void end_step(int step) override {
    auto dead = std::partition(live_.begin(), live_.end(),
                               [&](size_t i) { return !seen_[i].buffer.expired(); });
    for (auto it = dead; it != live_.end(); ++it) seen_[*it].last = step;
    live_.erase(dead, live_.end());
  }

  // Buffers still alive belong to the outputs (or to whoever kept them): never planned.
  void finish() override {
    auto pattern = std::make_shared<Pattern>();
    std::vector<BufferLifetime> lifetimes;
    std::vector<const Seen*> kept;
    for (const Seen& s : seen_) {
      if (s.last < 0) continue;
      auto found = std::find(pattern->allocators.begin(), pattern->allocators.end(), s.allocator);
      const auto arena = static_cast<int>(found - pattern->allocators.begin());
      if (found == pattern->allocators.end()) pattern->allocators.push_back(s.allocator);
      lifetimes.push_back({s.bytes, s.step, s.last, arena});
      kept.push_back(&s);
    }
    ArenaLayout layout = plan_arenas(lifetimes, pattern->allocators.size());
    pattern->arena_bytes = std::move(layout.arena_bytes);
    pattern->step_begin.assign(static_cast<size_t>(num_steps_) + 1, 0);
    pattern->ending.resize(static_cast<size_t>(num_steps_));
    for (size_t i = 0; i < kept.size(); ++i) {
      pattern->buffers.push_back(
          {kept[i]->output, lifetimes[i].arena, layout.offsets[i], kept[i]->bytes});
      ++pattern->step_begin[static_cast<size_t>(kept[i]->step) + 1];
      pattern->ending[static_cast<size_t>(kept[i]->last)].push_back(i);
    }
    std::partial_sum(pattern->step_begin.begin(), pattern->step_begin.end(),
                     pattern->step_begin.begin());
    owner_.store(signature_, std::move(pattern));
  }

 private:
  struct Seen {
    int step;
    int output;
    Allocator* allocator;
    size_t bytes;
    std::weak_ptr<graft::Buffer> buffer;
    int last;  // the step by whose end it was dropped; -1 while alive
  };
  MemoryPatterns& owner_;
  std::vector<int64_t> signature_;
  int num_steps_;
  int step_ = -1;
  std::vector<Seen> seen_;    // in the order of allocation, so by step
  std::vector<size_t> live_;  // indices into seen_ of the buffers still alive
};

// A later run of a known signature: views of the arenas where the pattern placed each output.
class MemoryPatterns::Planned final : public RunMemory {
 public:
  Planned(MemoryPatterns& owner, std::vector<int64_t> signature,
          std::shared_ptr<const Pattern> pattern)
      : owner_(owner),
        signature_(std::move(signature)),
        pattern_(std::move(pattern)),
        handed_(pattern_->buffers.size()),
        taken_(pattern_->buffers.size(), false) {
    for (size_t a = 0; a < pattern_->allocators.size(); ++a)
      arenas_.push_back(owner_.take_arena(*pattern_->allocators[a], pattern_->arena_bytes[a]));
  }

  // An arena no view of which outlived the run goes back for the next run of the graph.
  ~Planned() override {
    for (size_t a = 0; a < arenas_.size(); ++a) {
      if (arenas_[a].use_count() == 1)
        owner_.give_back_arena(*pattern_->allocators[a], pattern_->arena_bytes[a],
                               std::move(arenas_[a]));
    }
  }
  Planned(const Planned&) = delete;
  Planned& operator=(const Planned&) = delete;

  // The step's next planned buffer for `output`, when the tensor fits it; else the allocator's.
  // Sizes can differ from the recorded run's where they depend on data, not only on shapes.
  Tensor allocate(int output, DType dtype, const Shape& shape, Allocator& allocator) override {
    if (!gave_up_ && step_ >= 0) {
      for (size_t b = pattern_->step_begin[static_cast<size_t>(step_)];
           b < pattern_->step_begin[static_cast<size_t>(step_) + 1]; ++b) {
        const Pattern::Buffer& planned = pattern_->buffers[b];
        if (taken_[b] || planned.output != output) continue;
        taken_[b] = true;
        const size_t bytes = static_cast<size_t>(shape_size(shape)) * dtype_size(dtype);
        const auto arena = static_cast<size_t>(planned.arena);
        if (dtype == DType::String || bytes > planned.bytes ||
            &allocator != pattern_->allocators[arena])
          break;
        auto view = std::make_shared<graft::Buffer>(
            static_cast<char*>(arenas_[arena]->data()) + planned.offset, bytes, allocator,
            arenas_[arena]);
        handed_[b] = view;
        return Tensor(dtype, shape, std::move(view));
      }
    }
    return Tensor::empty(dtype, shape, allocator);
  }

  void begin_step(int step) override { step_ = step; }

  // A planned buffer alive past its planned lifetime would be overwritten by the next one
  // planned into its place: from then on this run allocates as usual, and so do later runs of
  // the signature.
  void end_step(int step) override {
    if (gave_up_) return;
    for (size_t b : pattern_->ending[static_cast<size_t>(step)]) {
      if (handed_[b].expired()) continue;
      gave_up_ = true;
      owner_.give_up(signature_);
      return;
    }
  }

  void finish() override {}

 private:
  MemoryPatterns& owner_;
  std::vector<int64_t> signature_;
  std::shared_ptr<const Pattern> pattern_;
  std::vector<std::shared_ptr<graft::Buffer>> arenas_;
  std::vector<std::weak_ptr<graft::Buffer>> handed_;  // per planned buffer, its view this run
  std::vector<bool> taken_;                           // per planned buffer: asked for this run
  int step_ = -1;
  bool gave_up_ = false;
};

MemoryPatterns::MemoryPatterns() = default;
MemoryPatterns::~MemoryPatterns() = default;

std::unique_ptr<RunMemory> MemoryPatterns::start_run(const std::vector<const Value*>& inputs,
                                                     int num_steps, int64_t variant) {
  std::vector<int64_t> signature = {variant};
  for (const Value* v : inputs)
    append_signature(v != nullptr && v->is_none() ? nullptr : v, signature);
  std::shared_ptr<const Pattern> pattern;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = patterns_.find(signature);
    if (it != patterns_.end()) {
      pattern = it->second;
      latest_ = pattern;
    } else if (patterns_.size() >= kMaxPatterns) {
      return nullptr;
    }
  }
  if (!pattern) return std::make_unique<Recorder>(*this, std::move(signature), num_steps);
  if (pattern->buffers.empty()) return nullptr;
  return std::make_unique<Planned>(*this, std::move(signature), std::move(pattern));
}

std::map<std::string, size_t> MemoryPatterns::planned_peak_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::map<std::string, size_t> peak;
  if (!latest_) return peak;
  for (size_t a = 0; a < latest_->allocators.size(); ++a)
    peak[latest_->allocators[a]->name()] += latest_->arena_bytes[a];
  return peak;
}

void MemoryPatterns::store(const std::vector<int64_t>& signature,
                           std::shared_ptr<const Pattern> pattern) {
  std::lock_guard<std::mutex> lock(mutex_);
  latest_ = patterns_.emplace(signature, std::move(pattern)).first->second;
}

std::shared_ptr<Buffer> MemoryPatterns::take_arena(Allocator& allocator, size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = spares_.begin(); it != spares_.end(); ++it) {
      if (it->allocator != &allocator || it->bytes < bytes) continue;
      std::shared_ptr<Buffer> arena = std::move(it->arena);
      spares_.erase(it);
      return arena;
    }
  }
  return std::make_shared<graft::Buffer>(DType::UInt8, static_cast<int64_t>(bytes), allocator,
                                         graft::Buffer::Init::Unspecified);
}

void MemoryPatterns::give_back_arena(Allocator& allocator, size_t bytes,
                                     std::shared_ptr<Buffer> arena) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (Spare& spare : spares_) {
    if (spare.allocator != &allocator) continue;
    if (spare.bytes < bytes) spare = {&allocator, bytes, std::move(arena)};
    return;
  }
  spares_.push_back({&allocator, bytes, std::move(arena)});
}

void MemoryPatterns::give_up(const std::vector<int64_t>& signature) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto empty = std::make_shared<const Pattern>();
  patterns_[signature] = empty;
  latest_ = empty;
}

}  // namespace graft
