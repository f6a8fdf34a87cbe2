// The process's default random generator: what Dropout and the Random* ops draw from when their
// node has no `seed` attribute (PyTorch's default generator, in effect). Seeded from the system
// at start; seed() makes runs reproducible, and state() / set_state() let a checkpoint carry
// it so a resumed run draws the same masks as an uninterrupted one.
#pragma once

#include <cstdint>
#include <mutex>
#include <random>
#include <string>

#include "ir/api.h"

namespace graft {

class GRAFT_API Generator {
 public:
  Generator();
  void seed(uint64_t value);
  // The engine's full state as text; set_state throws InvalidArgument for text state() did not
  // write.
  std::string state() const;
  void set_state(const std::string& text);
  // Runs fn(engine) with the generator locked (kernels of concurrent runs share it).
  template <typename F>
  void draw(F&& fn) {
    std::lock_guard<std::mutex> lock(mutex_);
    fn(engine_);
  }
  // The engine and its lock, for kernels that keep references: hold mutex() while drawing.
  std::mt19937_64& engine() { return engine_; }
  std::mutex& mutex() { return mutex_; }

 private:
  mutable std::mutex mutex_;
  std::mt19937_64 engine_;
};

GRAFT_API Generator& default_generator();

}  // namespace graft
