// A CUDA library the provider calls (cuBLASLt, cuDNN), loaded with dlopen on first use instead of
// linked: importing graft then never needs the library, and a machine without it fails only when
// a kernel first calls it, with an error that names the library and how to provide it.
//
// A library's functions are declared by its own header (included for the types only) and bound
// by name into a table of pointers once, so a call costs what a linked call costs:
//
//   #include <cublasLt.h>
//   struct CublasLtApi {
//     decltype(&cublasLtCreate) create;
//     decltype(&cublasLtMatmul) matmul;
//   };
//   const CublasLtApi& cublas_lt() {
//     static const CublasLtApi api = [] {
//       static const Library lib("libcublasLt.so.13", "cuBLASLt (MatMul, Gemm)",
//                                "GRAFT_CUBLASLT_LIBRARY");
//       CublasLtApi a;
//       lib.bind(a.create, "cublasLtCreate");
//       lib.bind(a.matmul, "cublasLtMatmul");
//       return a;
//     }();
//     return api;
//   }
#pragma once

#include <mutex>
#include <string>

namespace graft::cuda {

class Library {
 public:
  // `file`: the library's file name (its soname, found on the loader's search path: ldconfig's
  // cache, LD_LIBRARY_PATH). `purpose`: what graft uses it for, for error messages.
  // `env_var`: an environment variable that, when set, names the file to load instead (a path).
  // Loads nothing yet.
  Library(std::string file, std::string purpose, std::string env_var);
  ~Library();
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;

  // Loads the library on the first call (thread-safe; later calls return the first's answer).
  // Returns whether it is loaded; error() says why not.
  bool load() const;
  const std::string& error() const;

  // The address of the library's `symbol`. Throws NotImplemented
  //   "<purpose>: libcublasLt.so.13 could not be loaded (<dlerror>); install it or set <env_var>"
  // when the library cannot be loaded, Fail naming the library and the symbol when it lacks it.
  void* address(const char* symbol) const;

  // Points `fn` (a function pointer, typed by the library's header) at `symbol`; throws as
  // address() does.
  template <typename Fn>
  void bind(Fn& fn, const char* symbol) const {
    fn = reinterpret_cast<Fn>(address(symbol));
  }

 private:
  std::string file_, purpose_, env_var_;
  mutable std::once_flag once_;
  mutable void* handle_ = nullptr;
  mutable std::string error_;
};

}  // namespace graft::cuda
