#include "exec/device_exchange.h"

#include <map>
#include <mutex>

#include "exec/error.h"

namespace graft {
namespace {

struct Exchanges {
  std::mutex mutex;
  std::map<std::string, DeviceExchange*> by_type;
};

Exchanges& exchanges() {
  static Exchanges table;
  return table;
}

}  // namespace

void register_device_exchange(const std::string& type, DeviceExchange& exchange) {
  Exchanges& table = exchanges();
  std::lock_guard lock(table.mutex);
  table.by_type[type] = &exchange;
}

DeviceExchange& device_exchange(const std::string& type) {
  Exchanges& table = exchanges();
  std::lock_guard lock(table.mutex);
  if (auto it = table.by_type.find(type); it != table.by_type.end()) return *it->second;
  if (type == "cuda")
    throw NotImplemented("graft was built without CUDA: rebuild with -DGRAFT_USE_CUDA=ON");
  std::string known = "cpu";
  for (const auto& entry : table.by_type) known += ", " + entry.first;
  throw InvalidArgument("unknown device type '" + type + "' (known: " + known + ")");
}

}  // namespace graft
