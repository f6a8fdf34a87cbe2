#include "exec/checked.h"

#include <sstream>

#include "exec/error.h"

namespace graft {

void throw_size_overflow(const std::string& what, const char* op, const std::string& a,
                         const std::string& b) {
  throw InvalidArgument(what + ": " + a + " " + op + " " + b + " overflows");
}

void throw_size_not_int64(const std::string& what, double value) {
  std::ostringstream text;
  text << what << ": " << value << " does not fit in a 64-bit size";
  throw InvalidArgument(text.str());
}

}  // namespace graft
