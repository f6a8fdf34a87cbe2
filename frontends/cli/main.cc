// The graft command line:
//   graft info MODEL                      inputs, outputs, opsets, node counts by op
//   graft run MODEL [--repeat N]          runs with ones for every input, prints output shapes
//   graft optimize MODEL -o OUT [--level L]   saves the optimized model
//   graft grad MODEL --loss NAME [--wrt A,B,...] -o OUT   saves the gradient model
//   graft train MODEL --loss NAME --data FILE ...   trains (data-parallel under mpirun); see
//                                                   frontends/cli/train.cc
#include <chrono>
#include <iostream>
#include <map>

#include "autodiff/gradient.h"
#include "exec/session.h"
#include "frontends/cli/commands.h"
#include "ir/serialize.h"

namespace {

struct Args {
  std::string command, model, out, loss;
  std::vector<std::string> wrt;
  int level = 99;
  int repeat = 1;
};

int usage() {
  std::cerr << "usage: graft info MODEL\n"
               "       graft run MODEL [--repeat N]\n"
               "       graft optimize MODEL -o OUT [--level L]\n"
               "       graft grad MODEL --loss NAME [--wrt A,B,...] -o OUT\n"
               "       graft train MODEL --loss NAME --data FILE [options]   (graft train for "
               "the options)\n";
  return 2;
}

bool parse(int argc, char** argv, Args& a) {
  if (argc < 3) return false;
  a.command = argv[1];
  a.model = argv[2];
  for (int i = 3; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) return false;
    std::string value = argv[++i];
    if (flag == "-o") {
      a.out = value;
    } else if (flag == "--loss") {
      a.loss = value;
    } else if (flag == "--wrt") {
      a.wrt = graft::cli::split_commas(value);
    } else if (flag == "--level") {
      a.level = std::stoi(value);
    } else if (flag == "--repeat") {
      a.repeat = std::stoi(value);
    } else {
      return false;
    }
  }
  return true;
}

int info(const Args& a) {
  graft::ir::Model m = graft::ir::load_model(a.model);
  std::cout << "model " << a.model << ": IR version " << m.ir_version << ", producer '"
            << m.producer_name << "'\n";
  for (const auto& [domain, version] : m.opset_imports) {
    std::cout << "  opset " << (domain.empty() ? "ai.onnx" : domain) << " " << version << "\n";
  }
  graft::InferenceSession s(std::move(m));
  for (const auto& in : s.inputs()) std::cout << "  input  " << in.name << ": " << in.type << "\n";
  for (const auto& out : s.outputs())
    std::cout << "  output " << out.name << ": " << out.type << "\n";
  std::map<std::string, int> ops;
  for (const auto& n : s.model().graph.nodes) ops[n->op_type]++;
  std::cout << "  " << s.model().graph.nodes.size() << " nodes after optimization:";
  for (const auto& [op, count] : ops) std::cout << " " << op << "x" << count;
  std::cout << "\n";
  return 0;
}

int run(const Args& a) {
  graft::InferenceSession s = graft::InferenceSession::from_file(a.model);
  std::map<std::string, graft::Value> feeds;
  for (const auto& in : s.inputs()) {
    graft::Shape shape;
    for (int64_t d : in.dims) shape.push_back(d < 0 ? 1 : d);
    graft::Tensor t(in.dtype, shape);
    if (in.dtype == graft::DType::Float) {
      for (float& x : t.span<float>()) x = 1.0f;
    }
    feeds[in.name] = t;
  }
  std::vector<graft::Value> outs;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < a.repeat; ++i) outs = s.run({}, feeds);
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() /
      a.repeat;
  for (size_t i = 0; i < outs.size(); ++i) {
    std::cout << s.outputs()[i].name << ": " << s.outputs()[i].type;
    if (outs[i].is_tensor()) std::cout << " " << graft::shape_to_string(outs[i].tensor().shape());
    std::cout << "\n";
  }
  std::cout << "mean run time: " << ms << " ms over " << a.repeat << " run(s)\n";
  return 0;
}

int optimize(const Args& a) {
  if (a.out.empty()) return usage();
  graft::SessionOptions options;
  options.graph_optimization_level = a.level;
  options.optimized_model_filepath = a.out;
  graft::InferenceSession::from_file(a.model, options);
  std::cout << "wrote " << a.out << "\n";
  return 0;
}

int grad(const Args& a) {
  if (a.out.empty() || a.loss.empty()) return usage();
  graft::ir::Model m =
      graft::autodiff::build_gradient_graph(graft::ir::load_model(a.model), a.loss, a.wrt);
  graft::ir::save_model(m, a.out);
  std::cout << "wrote " << a.out << " with outputs:";
  for (const auto& o : m.graph.outputs) std::cout << " " << o.name;
  std::cout << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "train") {
    try {
      return graft::cli::train_command(argc, argv);
    } catch (const std::exception& e) {
      std::cerr << "graft train: " << e.what() << "\n";
      return 1;
    }
  }
  Args a;
  if (!parse(argc, argv, a)) return usage();
  try {
    if (a.command == "info") return info(a);
    if (a.command == "run") return run(a);
    if (a.command == "optimize") return optimize(a);
    if (a.command == "grad") return grad(a);
  } catch (const std::exception& e) {
    std::cerr << "graft " << a.command << ": " << e.what() << "\n";
    return 1;
  }
  return usage();
}
