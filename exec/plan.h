// Execution plan of one graph: values resolved to integer slots, one kernel per node, and the
// slots each node frees, all decided when the session is created. A run only walks the plan.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "exec/kernel.h"

namespace graft {

namespace ir {
class Graph;
class Model;
}  // namespace ir

struct Profiler;

class ExecutionProvider;

// Everything a plan needs from the session while it is built.
struct PlanContext {
  const ir::Model& model;
  std::vector<const ExecutionProvider*> providers;  // preference order
};

class GraphPlan {
 public:
  // Builds the plan of `graph`. `outer_names` are values of enclosing graphs that nested nodes
  // may read; they become the first slots and are supplied per run. Throws NotImplemented when
  // a node has no kernel, naming its op, domain and opset.
  GraphPlan(const ir::Graph& graph, const PlanContext& ctx, std::vector<std::string> outer_names);
  ~GraphPlan();

  // Runs the graph. `inputs` are the graph's formal inputs in order (None values allowed for
  // inputs the caller leaves out, which then keep their initializer); `outer` the outer-scope
  // values in the order of outer_names. Returns the graph outputs in order.
  std::vector<Value> run(const std::vector<Value>& inputs, const std::vector<const Value*>& outer,
                         Profiler* profiler = nullptr) const;

  const std::vector<std::string>& input_names() const { return input_names_; }
  const std::vector<std::string>& output_names() const { return output_names_; }
  size_t num_slots() const { return num_slots_; }

 private:
  struct Step;
  std::vector<std::string> input_names_;
  std::vector<std::string> output_names_;
  std::vector<int> input_slots_;
  std::vector<int> output_slots_;
  std::vector<int> outer_slots_;
  std::vector<std::pair<int, Value>> constants_;  // initializers
  std::vector<std::unique_ptr<Step>> steps_;
  std::map<std::string, int> slot_of_;
  size_t num_slots_ = 0;
};

// Per-node timings collected while profiling is on.
struct Profiler {
  struct Event {
    std::string name;
    std::string op_type;
    int64_t start_us;
    int64_t duration_us;
  };
  std::vector<Event> events;
  int64_t origin_us = 0;
};

}  // namespace graft
