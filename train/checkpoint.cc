#include "train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "distributed/communicator.h"
#include "exec/checked.h"
#include "exec/tensor_proto.h"
#include "onnx/onnx_pb.h"

namespace graft {
namespace {

constexpr char kMagic[8] = {'G', 'R', 'A', 'F', 'T', 'C', 'K', '1'};

uint32_t crc32(const std::string& data) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char ch : data) c = table[(c ^ ch) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

void put_bytes(std::string& out, const std::string& s) {
  put_u64(out, s.size());
  out += s;
}

// Reads fields from the file's bytes; any read past the end means the file is truncated.
struct Reader {
  const std::string& data;
  const std::string& path;
  size_t pos = 0;
  uint64_t u64() {
    need(8);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
      v |= static_cast<uint64_t>(static_cast<unsigned char>(data[pos + i])) << (8 * i);
    pos += 8;
    return v;
  }
  std::string bytes() {
    uint64_t n = u64();
    need(n);
    std::string s = data.substr(pos, n);
    pos += n;
    return s;
  }
  void need(uint64_t n) {
    if (n > data.size() - pos) throw InvalidArgument("checkpoint '" + path + "' is truncated");
  }
};

// Throws InvalidArgument, naming the entry (`what`: "checkpoint 'p': tensor 't'"), unless
// `proto` holds a tensor graft can read: a known element type, dims that are not negative and
// whose product, and that product's size in bytes, fit in an int64 (multiplied with checks, so a
// crafted shape cannot wrap around to a small count), and stored data of exactly that size. It
// runs before tensor_from_proto allocates, so no entry makes the loader allocate more than the
// file holds.
void check_entry(const onnx::TensorProto& proto, const std::string& what) {
  const auto dtype = static_cast<DType>(proto.data_type());
  if (dtype == DType::Undefined || std::strcmp(dtype_name(dtype), "unknown") == 0) {
    throw InvalidArgument(what + " has element type " + std::to_string(proto.data_type()) +
                          ", which graft does not know");
  }
  const Shape dims(proto.dims().begin(), proto.dims().end());
  int64_t count = 1;
  for (int64_t d : dims) {
    if (d < 0) {
      throw InvalidArgument(what + " has dims " + shape_to_string(dims) + ", one of them negative");
    }
    count = checked_mul(count, d, what + " has dims " + shape_to_string(dims) + ": element count");
  }
  if (dtype == DType::String) {
    if (proto.string_data_size() != count) {
      throw InvalidArgument(what + " holds " + std::to_string(proto.string_data_size()) +
                            " strings, its dims " + shape_to_string(dims) + " need " +
                            std::to_string(count));
    }
    return;
  }
  if (!proto.has_raw_data()) {
    // ONNX's typed fields; tensor_from_proto checks their exact count, this only that the
    // entry holds at least one value per element before the tensor is allocated.
    const int64_t held = int64_t{proto.float_data_size()} + proto.int32_data_size() +
                         proto.int64_data_size() + proto.double_data_size() +
                         proto.uint64_data_size();
    if (held < count) {
      throw InvalidArgument(what + " holds " + std::to_string(held) + " values, its dims " +
                            shape_to_string(dims) + " need " + std::to_string(count));
    }
    return;
  }
  int64_t bytes = 0;
  if (dtype_is_sub_byte(dtype)) {
    const int64_t per_byte = (dtype == DType::Int2 || dtype == DType::UInt2) ? 4 : 2;
    bytes = count / per_byte + (count % per_byte != 0 ? 1 : 0);
  } else {
    bytes = checked_mul(count, static_cast<int64_t>(dtype_size(dtype)),
                        what + " has dims " + shape_to_string(dims) + " of " + dtype_name(dtype) +
                            ": size in bytes");
  }
  if (static_cast<uint64_t>(bytes) != proto.raw_data().size()) {
    throw InvalidArgument(what + " stores " + std::to_string(proto.raw_data().size()) +
                          " bytes, its dims " + shape_to_string(dims) + " of " + dtype_name(dtype) +
                          " need " + std::to_string(bytes));
  }
}

void write_fully(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n <= 0) throw InvalidArgument("writing checkpoint '" + path + "' failed");
    done += static_cast<size_t>(n);
  }
}

}  // namespace

void save_checkpoint(const Checkpoint& checkpoint, const std::string& path) {
  std::string out(kMagic, sizeof(kMagic));
  put_u64(out, static_cast<uint64_t>(checkpoint.step));
  put_u64(out, checkpoint.properties.size());
  for (const auto& [k, v] : checkpoint.properties) {
    put_bytes(out, k);
    put_bytes(out, v);
  }
  put_u64(out, checkpoint.tensors.size());
  for (const auto& [name, tensor] : checkpoint.tensors) {
    onnx::TensorProto proto;
    tensor_to_proto(tensor, name, &proto);
    std::string bytes = proto.SerializeAsString();
    put_bytes(out, bytes);
    put_u64(out, crc32(bytes));
  }
  put_u64(out, crc32(out));  // the whole file, so a cut at an entry boundary is caught too
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw InvalidArgument("cannot write checkpoint '" + path + "'");
  try {
    write_fully(fd, out, path);
    if (::fsync(fd) != 0) throw InvalidArgument("syncing checkpoint '" + path + "' failed");
  } catch (...) {
    ::close(fd);
    std::remove(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw InvalidArgument("cannot replace checkpoint '" + path + "'");
  }
  // Make the rename itself durable.
  std::string dir = std::filesystem::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

Checkpoint load_checkpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InvalidArgument("cannot open checkpoint '" + path + "'");
  std::ostringstream buf;
  buf << in.rdbuf();
  const std::string data = buf.str();
  if (data.size() < sizeof(kMagic) + 8 ||
      data.compare(0, sizeof(kMagic), std::string(kMagic, sizeof(kMagic))) != 0) {
    throw InvalidArgument("'" + path + "' is not a graft checkpoint (bad header)");
  }
  const std::string body = data.substr(0, data.size() - 8);
  Reader tail{data, path, data.size() - 8};
  if (tail.u64() != crc32(body)) {
    // Find the first damaged part for the message, when the structure still parses.
    try {
      Reader r{body, path, sizeof(kMagic)};
      r.u64();
      for (uint64_t n = r.u64(); n > 0; --n) {
        r.bytes();
        r.bytes();
      }
      for (uint64_t n = r.u64(); n > 0; --n) {
        std::string bytes = r.bytes();
        uint64_t crc = r.u64();
        if (crc != crc32(bytes)) {
          onnx::TensorProto proto;
          std::string name = proto.ParseFromString(bytes) ? proto.name() : std::string("?");
          throw InvalidArgument("checkpoint '" + path + "': tensor '" + name +
                                "' fails its checksum");
        }
      }
    } catch (const InvalidArgument& e) {
      if (std::string(e.what()).find("checksum") != std::string::npos) throw;
    }
    throw InvalidArgument("checkpoint '" + path + "' is damaged or truncated (checksum mismatch)");
  }
  Reader r{body, path, sizeof(kMagic)};
  Checkpoint ckpt;
  ckpt.step = static_cast<int64_t>(r.u64());
  for (uint64_t n = r.u64(); n > 0; --n) {
    std::string k = r.bytes();
    ckpt.properties[k] = r.bytes();
  }
  for (uint64_t n = r.u64(); n > 0; --n) {
    std::string bytes = r.bytes();
    uint64_t crc = r.u64();
    onnx::TensorProto proto;
    if (crc != crc32(bytes) || !proto.ParseFromString(bytes)) {
      throw InvalidArgument("checkpoint '" + path + "': a tensor entry is damaged");
    }
    const std::string what = "checkpoint '" + path + "': tensor '" + proto.name() + "'";
    if (ckpt.tensors.count(proto.name())) throw InvalidArgument(what + " appears twice");
    check_entry(proto, what);
    try {
      ckpt.tensors[proto.name()] = tensor_from_proto(proto);
    } catch (const InvalidArgument& e) {
      throw InvalidArgument("checkpoint '" + path + "': " + e.what());
    }
  }
  if (r.pos != body.size()) throw InvalidArgument("checkpoint '" + path + "' has trailing bytes");
  return ckpt;
}

void save_checkpoint_on_rank0(const Checkpoint& checkpoint, const std::string& path,
                              int world_size) {
  if (world_size <= 1) {
    save_checkpoint(checkpoint, path);
    return;
  }
  distributed::Communicator& world = distributed::world();
  std::string error;
  if (world.rank() == 0) {
    try {
      save_checkpoint(checkpoint, path);
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "rank 0 could not write the checkpoint '" + path + "'";
    }
  }
  // Rank 0's message (empty: written) reaches every rank: its length, then its bytes. A rank that
  // dies meanwhile is reported as the checkpoint's.
  const distributed::CollectiveLabel label("checkpoint '" + path + "' written by rank 0");
  int64_t length = static_cast<int64_t>(error.size());
  world.broadcast(&length, 1, DType::Int64, 0);
  if (length == 0) return;
  error.resize(static_cast<size_t>(length));
  world.broadcast(error.data(), length, DType::UInt8, 0);
  throw InvalidArgument(error);
}

std::string format_float(float value) {
  char text[64];
  auto [end, ec] = std::to_chars(text, text + sizeof(text), value);
  return std::string(text, end);
}

float parse_float(const std::string& text, const std::string& what) {
  float value = 0;
  const char* end = text.data() + text.size();
  auto [stop, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || stop != end || ec != std::errc()) {
    throw InvalidArgument(what + " holds '" + text + "', which is not a float");
  }
  return value;
}

}  // namespace graft
