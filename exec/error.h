#pragma once
// The error types are shared by every layer; they live with the lowest one.
#include "ir/error.h"
