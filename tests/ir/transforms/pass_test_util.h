// Shared by the tests of ir/transforms: models from ONNX text, their op lists, and the check
// that a rewritten model computes what the original one does (both run by graft, unoptimized).
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "exec/session.h"
#include "ir/model.h"
#include "ir/serialize.h"
#include "onnx/defs/parser.h"
#include "onnx/onnx_pb.h"

namespace graft::test_util {

inline ir::Model parse_model(const std::string& text) {
  onnx::ModelProto m;
  const auto status = onnx::OnnxParser::Parse(m, text.c_str());
  if (!status.IsOK()) throw std::runtime_error(status.ErrorMessage());
  return ir::load_model_from_bytes(m.SerializeAsString());
}

inline std::vector<std::string> op_types(const ir::Graph& g) {
  std::vector<std::string> ops;
  for (const auto& n : g.nodes) ops.push_back(n->op_type);
  return ops;
}

inline std::vector<Value> run_unoptimized(const ir::Model& model,
                                          const std::map<std::string, Value>& feeds) {
  SessionOptions options;
  options.graph_optimization_level = 0;
  InferenceSession session(model.clone(), options);
  return session.run({}, feeds);
}

// A float tensor of `shape` holding 0.5 * (i % 7) - 1 at element i.
inline Tensor float_input(const Shape& shape) {
  Tensor t(DType::Float, shape);
  for (int64_t i = 0; i < t.size(); ++i) t.data<float>()[i] = 0.5f * static_cast<float>(i % 7) - 1;
  return t;
}

// Runs both models without further rewrites and expects the same outputs (dtype, shape and
// elements within `tolerance`).
inline void expect_same_outputs(const ir::Model& before, const ir::Model& after,
                                const std::map<std::string, Value>& feeds,
                                float tolerance = 1e-6f) {
  const std::vector<Value> want = run_unoptimized(before, feeds);
  const std::vector<Value> got = run_unoptimized(after, feeds);
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k) {
    const Tensor& g = got[k].tensor();
    const Tensor& w = want[k].tensor();
    ASSERT_EQ(g.dtype(), w.dtype()) << "output " << k;
    ASSERT_EQ(g.shape(), w.shape()) << "output " << k;
    for (int64_t i = 0; i < g.size(); ++i) {
      if (g.dtype() == DType::Float) {
        EXPECT_NEAR(g.data<float>()[i], w.data<float>()[i], tolerance) << "output " << k;
      } else if (g.dtype() == DType::Int64) {
        EXPECT_EQ(g.data<int64_t>()[i], w.data<int64_t>()[i]) << "output " << k;
      }
    }
  }
}

}  // namespace graft::test_util
