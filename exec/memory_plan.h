// The memory planner. plan_arenas places buffers of known lifetimes in arenas so that buffers
// alive at the same step never share memory. MemoryPatterns applies it to a graph whose sizes
// are known only when it runs (onnxruntime's memory pattern): the first run with a given set of
// input shapes records, for every tensor a kernel allocates through KernelContext::output, its
// size, the step that made it and the step after which nothing held it any more; later runs with
// those shapes take one arena per allocator and hand out views of it at the planned offsets. A
// finished run gives its arenas back for the next run, so runs of known shapes allocate nothing
// but their outputs.
#pragma once

#include "ir/api.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "exec/kernel.h"

namespace graft {

// A buffer to place: `bytes` in arena `arena`, alive from step `first` to step `last`, both
// included (a kernel reads its inputs while it writes its outputs, so a buffer last read at step
// s and one made at step s overlap).
struct BufferLifetime {
  size_t bytes = 0;
  int first = 0;
  int last = 0;
  int arena = 0;
};

struct ArenaLayout {
  std::vector<size_t> offsets;      // per buffer, from the start of its arena
  std::vector<size_t> arena_bytes;  // per arena: its size, the planned peak
};

// Places `buffers` in `num_arenas` arenas, each buffer rounded up to a multiple of `alignment`
// bytes and at an offset that is one. Greedy by size with best fit (the planners of TFLite and
// onnxruntime): the largest buffers go first, each into the smallest gap that holds it between
// the buffers already placed that are alive at the same time, or above all of them. Throws
// InvalidArgument for a buffer with last < first, an arena out of range or a zero alignment.
GRAFT_API ArenaLayout plan_arenas(const std::vector<BufferLifetime>& buffers, size_t num_arenas,
                                  size_t alignment = 64);

// The memory of one run of a plan: it records the run's pattern or hands out planned memory.
// The executor calls begin_step before each step's kernel, end_step once the values the step
// read last are dropped, and finish when the run has succeeded and holds only its outputs.
class RunMemory : public OutputMemory {
 public:
  virtual void begin_step(int step) = 0;
  virtual void end_step(int step) = 0;
  virtual void finish() = 0;
};

// The memory patterns of one graph, one per signature of its input values (kinds, dtypes and
// shapes). Runs on several threads may share it: the patterns are guarded, arenas are per run.
class GRAFT_API MemoryPatterns {
 public:
  MemoryPatterns();
  ~MemoryPatterns();
  // The memory of a run of a plan of `num_steps` steps whose inputs are `inputs` (nullptr or
  // None for an absent one) and whose other settings that change what it allocates come as
  // `variant` (part of the signature): a recorder for a new signature, the planned arenas
  // (allocated here) for a known one, or nullptr when nothing is planned for it or too many
  // signatures have been seen to keep another.
  std::unique_ptr<RunMemory> start_run(const std::vector<const Value*>& inputs, int num_steps,
                                       int64_t variant = 0);
  // The arena bytes of the pattern the latest run recorded or used, summed per allocator name;
  // empty before the first run.
  std::map<std::string, size_t> planned_peak_bytes() const;

 private:
  struct Pattern;
  class Recorder;
  class Planned;
  // Keeps `pattern` for `signature` unless a pattern is known for it already.
  void store(const std::vector<int64_t>& signature, std::shared_ptr<const Pattern> pattern);
  // Replaces the pattern of `signature` with an empty one: a run held a planned buffer past its
  // planned lifetime, so the runs with these shapes allocate as if there were no pattern.
  void give_up(const std::vector<int64_t>& signature);
  // An arena of at least `bytes` from `allocator`: the one a finished run gave back when it is
  // large enough, else a new one. Runs of the same shapes then allocate nothing.
  std::shared_ptr<Buffer> take_arena(Allocator& allocator, size_t bytes);
  // Keeps `arena` (of `bytes` from `allocator`, no view of it alive) for the next run; one spare
  // per allocator, the larger.
  void give_back_arena(Allocator& allocator, size_t bytes, std::shared_ptr<Buffer> arena);

  mutable std::mutex mutex_;
  std::map<std::vector<int64_t>, std::shared_ptr<const Pattern>> patterns_;
  std::shared_ptr<const Pattern> latest_;
  struct Spare {
    Allocator* allocator;
    size_t bytes;
    std::shared_ptr<Buffer> arena;
  };
  std::vector<Spare> spares_;  // arenas of finished runs, for the next ones
};

}  // namespace graft
