// Subcommands of the graft command line that live in files of their own.
#pragma once

namespace graft::cli {

// graft train MODEL --loss NAME --data FILE ...: returns the exit status (2: bad arguments).
int train_command(int argc, char** argv);

}  // namespace graft::cli
