// graft train: trains a forward ONNX model with a loss output on a GRAFTDS1 data file
// (train/dataset.h). Launched by mpirun with several ranks it trains data-parallel: each rank
// takes its share of every global batch, gradients are averaged across ranks inside the training
// graph, only rank 0 prints and writes files.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "distributed/communicator.h"
#include "exec/error.h"
#include "frontends/cli/commands.h"
#include "ir/serialize.h"
#include "train/dataset.h"
#include "train/training_session.h"

namespace graft::cli {
namespace {

constexpr const char* kUsage =
    "usage: graft train MODEL --loss NAME --data FILE [--epochs N] [--batch B]\n"
    "         [--optimizer sgd|adam|adamw|adagrad|rmsprop|lamb] [--lr X] [--momentum M]\n"
    "         [--weight-decay W] [--max-grad-norm C] [--params A,B,...] [--shuffle on|off]\n"
    "         [--seed S] [--threads T] [--data-parallel auto|on|off] [--bucket-mb MB]\n"
    "         [--zero-stage 0|1] [--checkpoint PATH] [--resume PATH]\n"
    "         [-o OUT [--outputs A,B,...]]\n";

struct Options {
  std::string model, loss, data, checkpoint, resume, out;
  std::vector<std::string> params, outputs;
  int64_t epochs = 1;
  int64_t batch = 32;  // global: split across the ranks
  std::string optimizer = "adamw";
  float lr = 1e-3f;
  float momentum = 0.0f;
  std::optional<float> weight_decay;
  float max_grad_norm = 0.0f;
  bool shuffle = true;  // each epoch in an order drawn from seed + epoch, else in file order
  uint64_t seed = 0;
  int threads = 0;
  std::optional<bool> data_parallel;
  double bucket_mb = 25.0;
  int zero_stage = 0;
};

double number(const std::string& flag, const std::string& text, double min) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || !(v >= min)) {
    throw InvalidArgument(flag + " needs a number of at least " + std::to_string(min) + ", got '" +
                          text + "'");
  }
  return v;
}

int64_t integer(const std::string& flag, const std::string& text, int64_t min) {
  const double v = number(flag, text, static_cast<double>(min));
  if (v != static_cast<double>(static_cast<int64_t>(v)))
    throw InvalidArgument(flag + " needs an integer, got '" + text + "'");
  return static_cast<int64_t>(v);
}

Options parse(int argc, char** argv) {
  Options o;
  if (argc < 3) throw InvalidArgument("graft train needs a model");
  o.model = argv[2];
  for (int i = 3; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) throw InvalidArgument(flag + " needs a value");
    const std::string v = argv[++i];
    if (flag == "--loss") {
      o.loss = v;
    } else if (flag == "--data") {
      o.data = v;
    } else if (flag == "--epochs") {
      o.epochs = integer(flag, v, 1);
    } else if (flag == "--batch") {
      o.batch = integer(flag, v, 1);
    } else if (flag == "--optimizer") {
      o.optimizer = v;
    } else if (flag == "--lr") {
      o.lr = static_cast<float>(number(flag, v, 0));
    } else if (flag == "--momentum") {
      o.momentum = static_cast<float>(number(flag, v, 0));
    } else if (flag == "--weight-decay") {
      o.weight_decay = static_cast<float>(number(flag, v, 0));
    } else if (flag == "--max-grad-norm") {
      o.max_grad_norm = static_cast<float>(number(flag, v, 0));
    } else if (flag == "--params") {
      o.params = split_commas(v);
    } else if (flag == "--shuffle") {
      if (v != "on" && v != "off") throw InvalidArgument("--shuffle is on or off, got '" + v + "'");
      o.shuffle = v == "on";
    } else if (flag == "--seed") {
      o.seed = static_cast<uint64_t>(integer(flag, v, 0));
    } else if (flag == "--threads") {
      o.threads = static_cast<int>(integer(flag, v, 0));
    } else if (flag == "--data-parallel") {
      if (v == "on") {
        o.data_parallel = true;
      } else if (v == "off") {
        o.data_parallel = false;
      } else if (v != "auto") {
        throw InvalidArgument("--data-parallel is auto, on or off, got '" + v + "'");
      }
    } else if (flag == "--bucket-mb") {
      o.bucket_mb = number(flag, v, 1e-6);
    } else if (flag == "--zero-stage") {
      o.zero_stage = static_cast<int>(integer(flag, v, 0));
    } else if (flag == "--checkpoint") {
      o.checkpoint = v;
    } else if (flag == "--resume") {
      o.resume = v;
    } else if (flag == "-o") {
      o.out = v;
    } else if (flag == "--outputs") {
      o.outputs = split_commas(v);
    } else {
      throw InvalidArgument("unknown option '" + flag + "'");
    }
  }
  if (o.loss.empty()) throw InvalidArgument("--loss is required");
  if (o.data.empty()) throw InvalidArgument("--data is required");
  return o;
}

optim::OptimizerConfig optimizer_config(const Options& o) {
  optim::OptimizerConfig c;
  c.kind = optim::parse_kind(o.optimizer);
  c.momentum = o.momentum;
  c.weight_decay = o.weight_decay.value_or(c.kind == optim::Kind::AdamW ? 0.01f : 0.0f);
  if (c.kind == optim::Kind::Adagrad) c.epsilon = 1e-10f;
  c.max_grad_norm = o.max_grad_norm;
  return c;
}

// The sample order of `epoch`: with `shuffle`, a permutation of 0..samples-1 drawn from
// seed + epoch, the same on every rank; else file order.
std::vector<int64_t> epoch_order(int64_t samples, bool shuffle, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(samples));
  std::iota(order.begin(), order.end(), 0);
  if (!shuffle) return order;
  std::mt19937_64 rng(seed + static_cast<uint64_t>(epoch));
  for (size_t i = order.size(); i > 1; --i) {
    std::uniform_int_distribution<size_t> pick(0, i - 1);
    std::swap(order[i - 1], order[pick(rng)]);
  }
  return order;
}

int run(const Options& o) {
  ir::Model forward = ir::load_model(o.model);
  const std::map<std::string, Tensor> data = read_dataset(o.data);
  // Every forward input that is not an initializer must come from the data file.
  for (const auto& in : forward.graph.inputs) {
    if (forward.graph.find_initializer(in.name) == nullptr && !data.count(in.name)) {
      throw InvalidArgument("data file '" + o.data + "' has no array for the model input '" +
                            in.name + "'");
    }
  }
  std::vector<std::string> outputs = o.outputs;
  if (outputs.empty()) {
    for (const auto& out : forward.graph.outputs) {
      if (out.name != o.loss) outputs.push_back(out.name);
    }
  }

  TrainingOptions options;
  options.loss = o.loss;
  options.params = o.params;
  options.optimizer = optimizer_config(o);
  options.learning_rate = o.lr;
  options.session.intra_op_num_threads = o.threads;
  options.data_parallel = o.data_parallel;
  options.data_parallel_options.bucket_bytes =
      std::max<size_t>(1, static_cast<size_t>(o.bucket_mb * 1024 * 1024));
  options.zero_stage = o.zero_stage;
  TrainingSession session(forward, options);
  distributed::Communicator& world = distributed::world();
  const int ranks = session.data_parallel() ? session.world_size() : 1;
  const int rank = session.data_parallel() ? world.rank() : 0;
  const bool lead = world.rank() == 0;
  if (o.batch % ranks != 0) {
    throw InvalidArgument("the global batch of " + std::to_string(o.batch) +
                          " does not split across " + std::to_string(ranks) + " ranks");
  }
  const int64_t local = o.batch / ranks;
  const int64_t samples = data.begin()->second.dim(0);
  const int64_t steps = samples / o.batch;
  if (steps == 0) {
    throw InvalidArgument("data file '" + o.data + "' has " + std::to_string(samples) +
                          " samples, fewer than one batch of " + std::to_string(o.batch));
  }
  if (!o.resume.empty()) session.load_checkpoint(o.resume);
  const int64_t first_epoch = session.step() / steps;
  if (lead) {
    std::cout << "graft train: " << o.model << ", " << samples << " samples, " << steps
              << " steps per epoch of " << o.batch << " (" << ranks << " rank"
              << (ranks > 1 ? "s, " + std::to_string(local) + " samples each" : "")
              << "), optimizer " << o.optimizer << ", lr " << o.lr;
    if (first_epoch > 0) std::cout << ", resuming at step " << session.step();
    std::cout << std::endl;
  }
  for (int64_t epoch = first_epoch; epoch < o.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    const auto order = epoch_order(samples, o.shuffle, o.seed, epoch);
    double loss_sum = 0;
    for (int64_t s = session.step() % steps; s < steps; ++s) {
      const auto begin = order.begin() + s * o.batch + rank * local;
      const std::vector<int64_t> rows(begin, begin + local);
      std::map<std::string, Value> feeds;
      for (const auto& [name, t] : data) feeds[name] = take_rows(t, rows);
      loss_sum += session.train_step(feeds);
      if (lead && (s + 1) % std::max<int64_t>(1, steps / 10) == 0) {
        std::fprintf(stderr, "\r  epoch %lld: step %lld/%lld", static_cast<long long>(epoch + 1),
                     static_cast<long long>(s + 1), static_cast<long long>(steps));
      }
    }
    // Each rank's loss is over its own share; their mean is the global batches'.
    double mean = loss_sum / static_cast<double>(steps);
    if (ranks > 1) world.all_reduce(&mean, 1, DType::Double, distributed::ReduceOp::Average);
    if (!o.checkpoint.empty()) session.save_checkpoint(o.checkpoint);
    if (lead) {
      const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;
      std::fprintf(stderr, "\r");
      std::printf("epoch %lld/%lld: mean loss %.6f (%.2f s)%s\n", static_cast<long long>(epoch + 1),
                  static_cast<long long>(o.epochs), mean, seconds.count(),
                  o.checkpoint.empty() ? "" : ", checkpoint written");
      std::fflush(stdout);
    }
  }
  if (!o.out.empty() && lead) {
    session.export_model_for_inferencing(o.out, outputs);
    std::cout << "wrote " << o.out << " (outputs:";
    for (const auto& name : outputs) std::cout << " " << name;
    std::cout << ")" << std::endl;
  }
  return 0;
}

}  // namespace

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> parts;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, ',');) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

int train_command(int argc, char** argv) {
  Options o;
  try {
    o = parse(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "graft train: " << e.what() << "\n" << kUsage;
    return 2;
  }
  return run(o);
}

}  // namespace graft::cli
