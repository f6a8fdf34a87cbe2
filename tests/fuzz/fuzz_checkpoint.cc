// libFuzzer target: bytes -> checkpoint file -> training::CheckpointState::load (which reads it
// with load_checkpoint and then interprets graft's properties: optimizer state, learning rate,
// random-generator state). A damaged file must end in InvalidArgument naming it.
//
// Checkpoints carry a CRC-32 per tensor and one over the whole file, which random mutations
// almost never satisfy. The first byte of the input chooses what the reader gets: odd, the rest
// of the input as it is (the checksum and header checks); even, the rest with every checksum
// the structure lets us find recomputed, so mutations reach the parsing behind the checks.
#include <array>
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "train/training_api.h"

namespace graft::fuzz {
namespace {

constexpr size_t kMagicSize = 8;

uint32_t crc32(const char* data, size_t size) {
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
  for (size_t i = 0; i < size; ++i)
    c = table[(c ^ static_cast<unsigned char>(data[i])) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

void put_u64(std::string& out, size_t pos, uint64_t v) {
  for (int i = 0; i < 8; ++i) out[pos + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

// Walks the layout of train/checkpoint.cc: magic, step, property count and (key, value) pairs,
// tensor count and (bytes, crc) pairs, each byte string after its u64 length.
class Walker {
 public:
  explicit Walker(std::string& body) : body_(body) {}
  bool u64(uint64_t& v) {
    if (body_.size() - pos_ < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i)
      v |= static_cast<uint64_t>(static_cast<unsigned char>(body_[pos_ + i])) << (8 * i);
    pos_ += 8;
    return true;
  }
  bool bytes(size_t& start, uint64_t& size) {
    if (!u64(size) || size > body_.size() - pos_) return false;
    start = pos_;
    pos_ += size;
    return true;
  }
  size_t pos() const { return pos_; }
  void skip(size_t n) { pos_ += n; }

 private:
  std::string& body_;
  size_t pos_ = 0;
};

// `body` with the checksum of each tensor entry recomputed and the file's appended.
std::string with_checksums(std::string body) {
  Walker w(body);
  uint64_t value = 0, count = 0, size = 0;
  size_t start = 0;
  bool ok = body.size() >= kMagicSize;
  if (ok) w.skip(kMagicSize);
  ok = ok && w.u64(value) && w.u64(count);
  for (uint64_t i = 0; ok && i < count; ++i) ok = w.bytes(start, size) && w.bytes(start, size);
  ok = ok && w.u64(count);
  for (uint64_t i = 0; ok && i < count; ++i) {
    ok = w.bytes(start, size) && body.size() - w.pos() >= 8;
    if (ok) {
      put_u64(body, w.pos(), crc32(body.data() + start, size));
      w.skip(8);
    }
  }
  const uint32_t file_crc = crc32(body.data(), body.size());
  body.append(8, '\0');
  put_u64(body, body.size() - 8, file_crc);
  return body;
}

}  // namespace
}  // namespace graft::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string file(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) file = graft::fuzz::with_checksums(std::move(file));
  const std::string& path = graft::fuzz::write_temp_file(
      "fuzz_checkpoint", reinterpret_cast<const uint8_t*>(file.data()), file.size());
  graft::fuzz::guarded("fuzz_checkpoint", [&] {
    auto state = graft::training::CheckpointState::load(path);
    for (const auto& tensors : {state.parameters(), state.optimizer_state()}) {
      for (const auto& [name, tensor] : tensors) graft::fuzz::touch(tensor);
    }
  });
  return 0;
}
