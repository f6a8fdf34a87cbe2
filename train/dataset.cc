#include "train/dataset.h"

#include <cstring>
#include <fstream>

#include "exec/error.h"

namespace graft {

std::map<std::string, Tensor> read_dataset(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InvalidArgument("cannot open data file '" + path + "'");
  auto read = [&](void* dst, size_t n, const std::string& what) {
    if (!in.read(static_cast<char*>(dst), static_cast<std::streamsize>(n)))
      throw InvalidArgument("data file '" + path + "' is truncated (in " + what + ")");
  };
  char magic[8];
  read(magic, sizeof(magic), "the header");
  if (std::memcmp(magic, "GRAFTDS1", 8) != 0)
    throw InvalidArgument("'" + path + "' is not a GRAFTDS1 data file");
  uint32_t count = 0;
  read(&count, sizeof(count), "the header");
  std::map<std::string, Tensor> arrays;
  int64_t samples = -1;
  for (uint32_t a = 0; a < count; ++a) {
    uint32_t name_length = 0, dtype = 0, rank = 0;
    read(&name_length, sizeof(name_length), "an array name");
    if (name_length > 4096) {
      throw InvalidArgument("data file '" + path + "': array " + std::to_string(a) +
                            " has a name of " + std::to_string(name_length) + " bytes");
    }
    std::string name(name_length, '\0');
    read(name.data(), name_length, "an array name");
    const std::string what = "array '" + name + "'";
    read(&dtype, sizeof(dtype), what);
    read(&rank, sizeof(rank), what);
    if (rank == 0 || rank > 16) {
      throw InvalidArgument("data file '" + path + "': " + what + " has rank " +
                            std::to_string(rank) + " (1 to 16 allowed)");
    }
    Shape shape(rank);
    read(shape.data(), rank * sizeof(int64_t), what);
    const auto type = static_cast<DType>(dtype);
    if (dtype > 30 || dtype_size(type) == 0 || type == DType::String || dtype_is_sub_byte(type)) {
      throw InvalidArgument("data file '" + path + "': " + what + " has unsupported element type " +
                            std::to_string(dtype));
    }
    for (int64_t d : shape) {
      if (d < 0)
        throw InvalidArgument("data file '" + path + "': " + what + " has a negative dimension");
    }
    if (samples >= 0 && shape[0] != samples) {
      throw InvalidArgument("data file '" + path + "': " + what + " has " +
                            std::to_string(shape[0]) + " samples, the others " +
                            std::to_string(samples));
    }
    samples = shape[0];
    Tensor t(type, shape);
    read(t.raw(), t.nbytes(), what);
    if (arrays.count(name))
      throw InvalidArgument("data file '" + path + "': " + what + " appears twice");
    arrays[name] = t;
  }
  if (arrays.empty()) throw InvalidArgument("data file '" + path + "' holds no arrays");
  return arrays;
}

namespace {

size_t row_bytes(const Tensor& t) {
  return t.dim(0) == 0 ? 0 : t.nbytes() / static_cast<size_t>(t.dim(0));
}

}  // namespace

Tensor take_rows(const Tensor& t, const std::vector<int64_t>& indices) {
  Shape shape = t.shape();
  shape[0] = static_cast<int64_t>(indices.size());
  Tensor out(t.dtype(), shape);
  const size_t bytes = row_bytes(t);
  char* dst = static_cast<char*>(out.raw());
  const char* src = static_cast<const char*>(t.raw());
  for (size_t i = 0; i < indices.size(); ++i) {
    if (indices[i] < 0 || indices[i] >= t.dim(0)) {
      throw InvalidArgument("row " + std::to_string(indices[i]) + " is out of range for " +
                            std::to_string(t.dim(0)) + " rows");
    }
    std::memcpy(dst + i * bytes, src + static_cast<size_t>(indices[i]) * bytes, bytes);
  }
  return out;
}

Tensor slice_rows(const Tensor& t, int64_t begin, int64_t end) {
  if (begin < 0 || end < begin || end > t.dim(0)) {
    throw InvalidArgument("rows [" + std::to_string(begin) + ", " + std::to_string(end) +
                          ") are out of range for " + std::to_string(t.dim(0)) + " rows");
  }
  Shape shape = t.shape();
  shape[0] = end - begin;
  Tensor out(t.dtype(), shape);
  std::memcpy(out.raw(),
              static_cast<const char*>(t.raw()) + static_cast<size_t>(begin) * row_bytes(t),
              out.nbytes());
  return out;
}

}  // namespace graft
