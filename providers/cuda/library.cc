#include "providers/cuda/library.h"

#include <dlfcn.h>

#include <cstdlib>
#include <utility>

#include "exec/error.h"

namespace graft::cuda {

Library::Library(std::string file, std::string purpose, std::string env_var)
    : file_(std::move(file)), purpose_(std::move(purpose)), env_var_(std::move(env_var)) {}

// Never unloaded: the library may still run work enqueued on the device when the process exits.
Library::~Library() = default;

bool Library::load() const {
  std::call_once(once_, [this] {
    const char* env = env_var_.empty() ? nullptr : std::getenv(env_var_.c_str());
    const std::string path = env != nullptr && *env != '\0' ? env : file_;
    handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle_ == nullptr) {
      const char* why = dlerror();
      error_ = purpose_ + ": " + path + " could not be loaded (" + (why ? why : "unknown error") +
               "); install it where the dynamic loader finds it" +
               (env_var_.empty() ? "" : ", or set " + env_var_ + " to its path");
    }
  });
  return handle_ != nullptr;
}

const std::string& Library::error() const {
  load();
  return error_;
}

void* Library::address(const char* symbol) const {
  if (!load()) throw NotImplemented(error_);
  void* fn = dlsym(handle_, symbol);
  if (fn == nullptr)
    throw Fail(purpose_ + ": " + file_ + " has no function " + symbol + " (a different version?)");
  return fn;
}

}  // namespace graft::cuda
