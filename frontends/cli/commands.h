// Subcommands of the graft command line that live in files of their own.
#pragma once

#include <string>
#include <vector>

namespace graft::cli {

// "a,b,,c" -> {"a", "b", "c"}.
std::vector<std::string> split_commas(const std::string& s);

// graft train MODEL --loss NAME --data FILE ...: returns the exit status (2: bad arguments).
int train_command(int argc, char** argv);

}  // namespace graft::cli
