// On-device fine-tuning in C++: loads the artifacts of graft.training.generate_artifacts, trains
// on a data file, then saves a checkpoint and a forward-only model for inference.
//
//   graft_finetune <artifact_dir> <data_file> <out_dir> [--epochs N] [--lr X] [--batch B]
//
// <artifact_dir> holds training_model.onnx, eval_model.onnx, optimizer_model.onnx and checkpoint.
// Batches of B samples (the last one may be smaller) are taken in file order, each followed by one
// optimizer step; one line per epoch reports the mean loss. Written to <out_dir>: checkpoint (the
// parameters and optimizer state, so training can resume from it) and inference.onnx (the eval
// model's outputs other than "loss", with the trained weights; runs in any ONNX runtime).
// Launched by `mpirun -np N` it trains data-parallel: each batch is split across the ranks
// (B must be a multiple of N; a last, incomplete batch is left out) and rank 0 prints and writes.
//
// The data file (GRAFTDS1, train/dataset.h; graft.training.write_dataset writes it) holds one array
// per training-model input other than the parameters (for example "input" and "labels").
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "distributed/communicator.h"
#include "train/dataset.h"
#include "train/training_api.h"

namespace {

struct Options {
  std::string artifact_dir, data_file, out_dir;
  int64_t epochs = 5;
  int64_t batch = 32;
  std::optional<float> lr;  // unset: the checkpoint's learning rate, else 1e-3
};

int64_t positive_integer(const std::string& flag, const std::string& text) {
  size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || v <= 0)
    throw graft::InvalidArgument(flag + " needs a positive integer, got '" + text + "'");
  return v;
}

float learning_rate(const std::string& text) {
  size_t used = 0;
  float v = -1.0f;
  try {
    v = std::stof(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || !(v >= 0.0f))
    throw graft::InvalidArgument("--lr needs a number of at least 0, got '" + text + "'");
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--epochs" || arg == "--lr" || arg == "--batch") {
      if (i + 1 == argc) throw graft::InvalidArgument(arg + " needs a value");
      const std::string value = argv[++i];
      if (arg == "--epochs") o.epochs = positive_integer(arg, value);
      if (arg == "--batch") o.batch = positive_integer(arg, value);
      if (arg == "--lr") o.lr = learning_rate(value);
    } else if (arg.rfind("--", 0) == 0) {
      throw graft::InvalidArgument("unknown option '" + arg + "'");
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.size() != 3) throw graft::InvalidArgument("expected three paths");
  o.artifact_dir = positional[0];
  o.data_file = positional[1];
  o.out_dir = positional[2];
  return o;
}

int run(const Options& o) {
  namespace training = graft::training;
  const auto paths = training::ArtifactPaths::in_directory(o.artifact_dir);
  training::CheckpointState state = training::CheckpointState::load(paths.checkpoint);
  training::Module module(state, paths.training_model, paths.eval_model);
  training::Optimizer optimizer(module, paths.optimizer_model);
  if (o.lr) optimizer.set_learning_rate(*o.lr);

  const std::map<std::string, graft::Tensor> data = graft::read_dataset(o.data_file);
  for (const auto& name : module.input_names(true)) {
    if (!data.count(name))
      throw graft::InvalidArgument("data file '" + o.data_file + "' has no array '" + name + "'");
  }
  const int64_t samples = data.begin()->second.dim(0);
  const auto outputs = module.output_names(true);
  size_t loss_index = outputs.size() - 1;
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (outputs[i] == "loss") loss_index = i;
  }
  // Launched by mpirun with several ranks the Module trains data-parallel: every batch of B is
  // split across the ranks (B must divide evenly; a last, incomplete batch is left out), and
  // rank 0 alone prints and writes.
  graft::distributed::Communicator& world = graft::distributed::world();
  const int ranks = module.data_parallel() ? world.size() : 1;
  const int rank = module.data_parallel() ? world.rank() : 0;
  const bool lead = world.rank() == 0;
  if (o.batch % ranks != 0) {
    throw graft::InvalidArgument("the batch of " + std::to_string(o.batch) +
                                 " does not split across " + std::to_string(ranks) + " ranks");
  }
  const int64_t usable = ranks > 1 ? samples / o.batch * o.batch : samples;
  if (lead) {
    std::cout << samples << " samples, batches of " << o.batch;
    if (ranks > 1) std::cout << " (" << o.batch / ranks << " on each of " << ranks << " ranks)";
    std::cout << ", learning rate " << optimizer.learning_rate() << "\n";
  }
  for (int64_t epoch = 1; epoch <= o.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    double loss_sum = 0;
    int64_t batches = 0;
    for (int64_t begin = 0; begin < usable; begin += o.batch) {
      const int64_t end = std::min(usable, begin + o.batch);
      const int64_t share = (end - begin) / ranks;
      std::map<std::string, graft::Value> feeds;
      for (const auto& [name, t] : data)
        feeds[name] = graft::slice_rows(t, begin + rank * share, begin + (rank + 1) * share);
      const auto outs = module.train_step(feeds);
      optimizer.step();
      module.lazy_reset_grad();
      loss_sum += outs[loss_index].tensor().scalar_as_double(0) * static_cast<double>(end - begin);
      ++batches;
    }
    double mean = loss_sum / static_cast<double>(usable);
    if (ranks > 1)
      world.all_reduce(&mean, 1, graft::DType::Double, graft::distributed::ReduceOp::Average);
    const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;
    if (lead) {
      std::cout << "epoch " << epoch << "/" << o.epochs << "  loss " << std::setprecision(6) << mean
                << "  (" << batches << " steps, " << std::setprecision(3) << seconds.count()
                << " s)" << std::endl;
    }
  }

  std::filesystem::create_directories(o.out_dir);
  const std::string checkpoint = (std::filesystem::path(o.out_dir) / "checkpoint").string();
  state.save(checkpoint, /*include_optimizer_state=*/true);
  if (!lead) return 0;
  std::vector<std::string> inference_outputs;
  for (const auto& name : module.output_names(false)) {
    if (name != "loss") inference_outputs.push_back(name);
  }
  const std::string model = (std::filesystem::path(o.out_dir) / "inference.onnx").string();
  module.export_model_for_inferencing(model, inference_outputs);
  std::cout << "wrote " << checkpoint << " (step " << state.step() << ") and " << model << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  try {
    options = parse(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\nusage: " << argv[0]
              << " <artifact_dir> <data_file> <out_dir> [--epochs N] [--lr X] [--batch B]\n";
    return 2;
  }
  try {
    return run(options);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
