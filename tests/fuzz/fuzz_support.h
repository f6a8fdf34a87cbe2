// What the fuzz targets share: how an exception that escapes graft is judged, and reading every
// byte of what a run returned.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "exec/value.h"

namespace graft::fuzz {

// Runs `body`. graft's own exceptions (InvalidArgument, NotImplemented, Fail) are what a hostile
// input should cause and are swallowed. Any other exception (std::bad_alloc, std::length_error,
// std::out_of_range, a protobuf or ONNX error) escaped without naming the model element at
// fault: with GRAFT_FUZZ_STRICT=1 in the environment it aborts, so libFuzzer records the input
// as a crash; otherwise it is printed once per distinct type and message, and swallowed. With
// GRAFT_FUZZ_VERBOSE=1 every input's outcome is printed (ran, or graft's message).
void guarded(const char* target, const std::function<void()>& body);

// Reads every element of the value's tensors (nested ones included), so a tensor whose shape
// claims more than its buffer holds shows up as an AddressSanitizer report.
void touch(const Value& value);

// The input as a file of its own under /dev/shm (or TMPDIR when there is none), rewritten on
// every call; for readers that take a path.
const std::string& write_temp_file(const char* target, const uint8_t* data, size_t size);

}  // namespace graft::fuzz
