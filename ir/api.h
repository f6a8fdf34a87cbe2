// GRAFT_API marks the symbols libgraft.so exports; everything else stays hidden.
#pragma once

#define GRAFT_API __attribute__((visibility("default")))
