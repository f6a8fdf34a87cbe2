// Proves that the sanitizers are live in the build that scripts/sanitize.sh runs: each mode makes
// one deliberate fault that the sanitizer must report and abort on. A build where it exits 0 has
// lost its instrumentation and its clean runs prove nothing.
//
//   sanitizer_canary heap-overflow      AddressSanitizer: heap-buffer-overflow
//   sanitizer_canary signed-overflow    UndefinedBehaviorSanitizer: signed integer overflow
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>

namespace {

// The operands come from the command line so that the compiler cannot fold the faults away.
int heap_overflow(int index) {
  auto buffer = std::make_unique<int[]>(4);
  buffer[index] = 1;
  return buffer[index];
}

int signed_overflow(int base) { return base + INT_MAX; }

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "heap-overflow") == 0) {
    std::printf("%d\n", heap_overflow(argc + 2));
  } else if (argc == 2 && std::strcmp(argv[1], "signed-overflow") == 0) {
    std::printf("%d\n", signed_overflow(argc - 1));
  } else {
    std::fprintf(stderr, "usage: sanitizer_canary heap-overflow|signed-overflow\n");
    return 2;
  }
  std::printf("no sanitizer report: the build is not instrumented\n");
  return 0;
}
