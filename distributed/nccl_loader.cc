// The NCCL backend lives in libgraft_nccl.so (built with -DGRAFT_USE_NCCL=ON) and is loaded on
// first use: importing graft never brings NCCL or the CUDA runtime into a process, where they
// could clash with the copies another framework (PyTorch) loads.
#include <dlfcn.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "distributed/backends.h"
#include "exec/error.h"

namespace graft::distributed {
namespace {

using Create = Communicator* (*)(Communicator*, int, void*, char*, size_t);

struct Library {
  Create create = nullptr;
  std::string error;
};

// GRAFT_NCCL_LIBRARY names the library; otherwise the one this build made, then the loader's
// search path.
const Library& library() {
  static const Library lib = [] {
    Library l;
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("GRAFT_NCCL_LIBRARY")) candidates.emplace_back(env);
#ifdef GRAFT_NCCL_LIBRARY_PATH
    candidates.emplace_back(GRAFT_NCCL_LIBRARY_PATH);
#endif
    candidates.emplace_back("libgraft_nccl.so");
    for (const auto& path : candidates) {
      void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!handle) {
        l.error += std::string(l.error.empty() ? "" : "; ") + dlerror();
        continue;
      }
      l.create = reinterpret_cast<Create>(dlsym(handle, "graft_nccl_create"));
      if (l.create) return l;
      l.error += "; " + path + " has no graft_nccl_create";
    }
    return l;
  }();
  return lib;
}

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, int device,
                                                     void* cuda_stream) {
  const Library& lib = library();
  if (!lib.create) {
    throw NotImplemented(
        "the NCCL backend (libgraft_nccl.so, built with -DGRAFT_USE_NCCL=ON) could not be "
        "loaded: " +
        lib.error);
  }
  char error[1024] = {0};
  Communicator* comm = lib.create(&bootstrap, device, cuda_stream, error, sizeof(error));
  if (!comm) throw Fail(std::string("NCCL communicator: ") + error);
  return std::unique_ptr<Communicator>(comm);
}

bool built_with_nccl() { return library().create != nullptr; }

}  // namespace graft::distributed
