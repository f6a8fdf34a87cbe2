#include "exec/generator.h"

#include <sstream>

#include "exec/error.h"

namespace graft {

Generator::Generator() {
  std::random_device device;
  engine_.seed((static_cast<uint64_t>(device()) << 32) | device());
}

void Generator::seed(uint64_t value) {
  std::lock_guard<std::mutex> lock(mutex_);
  engine_.seed(value);
}

std::string Generator::state() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::ostringstream out;
  out << engine_;
  return out.str();
}

void Generator::set_state(const std::string& text) {
  std::istringstream in(text);
  std::mt19937_64 engine;
  in >> engine;
  if (in.fail()) throw InvalidArgument("not a random generator state (graft.rng)");
  std::lock_guard<std::mutex> lock(mutex_);
  engine_ = engine;
}

Generator& default_generator() {
  static Generator generator;
  return generator;
}

}  // namespace graft
