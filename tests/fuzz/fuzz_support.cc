#include "fuzz_support.h"

#include <cxxabi.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <typeinfo>

#include "exec/error.h"

namespace graft::fuzz {
namespace {

// Where touch() leaves what it read, so that the reads are not optimized away.
volatile size_t sink = 0;

// The temporary file of write_temp_file, removed at exit.
std::string path_for_cleanup;

// Whether the environment variable `name` is "1".
bool env_flag(const char* name) {
  const char* env = std::getenv(name);
  return env != nullptr && std::string(env) == "1";
}

std::string type_name(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> name(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), &std::free);
  return status == 0 && name ? name.get() : type.name();
}

void escaped(const char* target, const std::string& type, const std::string& what) {
  static const bool strict = env_flag("GRAFT_FUZZ_STRICT");
  if (strict) {
    std::fprintf(stderr, "[%s] %s escaped graft: %s\n", target, type.c_str(), what.c_str());
    std::abort();
  }
  static std::mutex mutex;
  static std::set<std::string> seen;
  const std::string key = type + ": " + what.substr(0, 120);
  std::lock_guard<std::mutex> lock(mutex);
  if (seen.insert(key).second) std::fprintf(stderr, "[%s] escaped %s\n", target, key.c_str());
}

bool verbose() {
  static const bool value = env_flag("GRAFT_FUZZ_VERBOSE");
  return value;
}

void refused(const char* target, const std::exception& e) {
  if (verbose()) std::fprintf(stderr, "[%s] refused: %s\n", target, e.what());
}

}  // namespace

void guarded(const char* target, const std::function<void()>& body) {
  try {
    body();
    if (verbose()) std::fprintf(stderr, "[%s] ran\n", target);
  } catch (const InvalidArgument& e) {
    refused(target, e);
  } catch (const NotImplemented& e) {
    refused(target, e);
  } catch (const Fail& e) {
    refused(target, e);
  } catch (const std::exception& e) {
    escaped(target, type_name(typeid(e)), e.what());
  } catch (...) {
    escaped(target, "an exception of unknown type", "");
  }
}

void touch(const Value& value) {
  if (value.kind() == Value::Kind::Tensor || value.kind() == Value::Kind::Map) {
    for (const Tensor* t : {&value.map_keys(), &value.map_values()}) {
      if (!t->defined() || !t->on_host() || t->size() == 0) continue;
      size_t sum = 0;
      if (t->dtype() == DType::String) {
        for (const std::string& s : t->span<std::string>()) sum += s.size();
      } else {
        const auto* bytes = static_cast<const unsigned char*>(t->raw());
        for (size_t i = 0; i < t->nbytes(); ++i) sum += bytes[i];
      }
      sink = sum;
    }
  }
  for (const Value& element : value.elements()) touch(element);
}

const std::string& write_temp_file(const char* target, const uint8_t* data, size_t size) {
  static const std::string path = [target] {
    const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : std::getenv("TMPDIR");
    std::string name = std::string(dir != nullptr ? dir : "/tmp") + "/graft-" + target + "-" +
                       std::to_string(getpid());
    std::atexit([] { std::remove(path_for_cleanup.c_str()); });
    path_for_cleanup = name;
    return name;
  }();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) {
    std::fprintf(stderr, "[%s] cannot write %s\n", target, path.c_str());
    std::abort();
  }
  return path;
}

}  // namespace graft::fuzz
