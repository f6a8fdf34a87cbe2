#include "distributed/communicator.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "distributed/average.h"
#include "distributed/backends.h"
#include "exec/error.h"

namespace graft::distributed {
namespace {

thread_local const std::string* current_label = nullptr;

std::string format_seconds(double seconds) {
  std::ostringstream s;
  s << seconds;
  return s.str();
}

}  // namespace

ReduceOp parse_reduce_op(const std::string& name, const std::string& what) {
  if (name == "sum") return ReduceOp::Sum;
  if (name == "average") return ReduceOp::Average;
  throw InvalidArgument(what + ": reduction '" + name + "' is not one of 'sum', 'average'");
}

double default_timeout_seconds() {
  const char* text = std::getenv("GRAFT_COLLECTIVE_TIMEOUT_S");
  if (text == nullptr || *text == '\0') return 300.0;
  char* end = nullptr;
  const double seconds = std::strtod(text, &end);
  if (*end != '\0' || !(seconds > 0) || !std::isfinite(seconds)) {
    throw InvalidArgument(std::string("GRAFT_COLLECTIVE_TIMEOUT_S='") + text +
                          "' is not a positive number of seconds");
  }
  return seconds;
}

Communicator::Communicator() : timeout_seconds_(default_timeout_seconds()) {}

void Communicator::set_timeout(double seconds) {
  if (!(seconds > 0) || !std::isfinite(seconds)) {
    throw InvalidArgument("collective timeout must be a positive number of seconds, got " +
                          format_seconds(seconds));
  }
  timeout_seconds_.store(seconds);
}

std::string Communicator::describe(const char* collective, int64_t count, DType dtype) const {
  std::string s = collective;
  if (!CollectiveLabel::current().empty()) s += " (" + CollectiveLabel::current() + ")";
  if (count >= 0) s += " of " + std::to_string(count) + " " + dtype_name(dtype) + " elements";
  s += " on rank " + std::to_string(rank()) + " of " + std::to_string(size()) + " at step " +
       std::to_string(step());
  return s;
}

void Communicator::exit_on_timeout(const std::string& what, const std::string& peer) const {
  const std::string message = "graft.distributed: " + what + " timed out after " +
                              format_seconds(timeout()) + " s waiting for " + peer +
                              " (set GRAFT_COLLECTIVE_TIMEOUT_S to change the limit); exiting\n";
  // Straight to the file descriptor: the process leaves without flushing stdio or unwinding.
  size_t written = 0;
  while (written < message.size()) {
    const ssize_t n = ::write(2, message.data() + written, message.size() - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  std::fflush(stdout);
  ::_exit(1);
}

std::string Communicator::peers(int root) const {
  if (root >= 0 && root != rank()) return "root rank " + std::to_string(root);
  if (size() == 2) return "peer rank " + std::to_string(1 - rank());
  std::string s = "peer ranks ";
  for (int r = 0, first = 1; r < size(); ++r) {
    if (r == rank()) continue;
    s += (first ? "" : ", ") + std::to_string(r);
    first = 0;
  }
  return s;
}

void Communicator::check_args(const char* collective, int64_t count, DType dtype, int root) const {
  if (count < 0) {
    throw InvalidArgument(describe(collective, -1, dtype) + ": count " + std::to_string(count) +
                          " is negative");
  }
  if (dtype == DType::String || dtype == DType::Undefined || dtype_size(dtype) == 0) {
    throw InvalidArgument(describe(collective, -1, dtype) + ": elements of type " +
                          dtype_name(dtype) + " cannot be communicated");
  }
  if (root < 0 || root >= size()) {
    throw InvalidArgument(describe(collective, count, dtype) + ": root " + std::to_string(root) +
                          " is not a rank of " + std::to_string(size()));
  }
}

void Communicator::check_reduce_args(const char* collective, int64_t count, DType dtype) const {
  check_args(collective, count, dtype);
  if (!is_reducible(dtype)) {
    throw InvalidArgument(describe(collective, count, dtype) + ": cannot reduce elements of type " +
                          dtype_name(dtype));
  }
}

CollectiveLabel::CollectiveLabel(std::string label)
    : label_(std::move(label)), previous_(current_label) {
  current_label = &label_;
}

CollectiveLabel::~CollectiveLabel() { current_label = previous_; }

const std::string& CollectiveLabel::current() {
  static const std::string empty;
  return current_label ? *current_label : empty;
}

int launched_world_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    const char* text = std::getenv(name);
    if (text != nullptr && *text != '\0') return std::max(1, std::atoi(text));
  }
  return 1;
}

Communicator& world() {
  static const std::unique_ptr<Communicator> comm =
      launched_world_size() > 1 ? make_mpi_communicator() : make_single_process_communicator();
  return *comm;
}

}  // namespace graft::distributed
