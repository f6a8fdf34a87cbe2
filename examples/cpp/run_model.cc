// C++ quick start: load an ONNX model, feed ones to every float input, print output shapes.
//   graft_run_example model.onnx
#include <iostream>

#include "exec/session.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " model.onnx\n";
    return 2;
  }
  try {
    graft::InferenceSession session = graft::InferenceSession::from_file(argv[1]);
    std::map<std::string, graft::Value> feeds;
    for (const auto& in : session.inputs()) {
      graft::Shape shape;
      for (int64_t d : in.dims) shape.push_back(d < 0 ? 1 : d);
      graft::Tensor t(in.dtype, shape);
      if (in.dtype == graft::DType::Float) {
        for (float& x : t.span<float>()) x = 1.0f;
      }
      feeds[in.name] = t;
    }
    std::vector<graft::Value> outputs = session.run({}, feeds);
    for (size_t i = 0; i < outputs.size(); ++i) {
      std::cout << session.outputs()[i].name << ": " << session.outputs()[i].type;
      if (outputs[i].is_tensor())
        std::cout << " " << graft::shape_to_string(outputs[i].tensor().shape());
      std::cout << "\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
