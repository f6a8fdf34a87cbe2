// TfIdfVectorizer: counts pool n-grams (optionally with skips) in each row of a token tensor
// and weights the counts as TF, IDF or TF-IDF.
#include <algorithm>
#include <map>

#include "exec/kernel.h"

namespace graft {
namespace {

class TfIdfVectorizer : public Kernel {
 public:
  explicit TfIdfVectorizer(const KernelInfo& info)
      : min_gram_(info.required_int("min_gram_length")),
        max_gram_(info.required_int("max_gram_length")),
        max_skip_(info.required_int("max_skip_count")),
        indexes_(info.attr_ints("ngram_indexes")),
        weights_(info.attr_floats("weights")) {
    const std::string mode = info.attr_string("mode", "");
    if (mode == "TF") {
      mode_ = Mode::TF;
    } else if (mode == "IDF") {
      mode_ = Mode::IDF;
    } else if (mode == "TFIDF") {
      mode_ = Mode::TFIDF;
    } else {
      info.fail("mode must be TF, IDF or TFIDF, not '" + mode + "'");
    }
    if (min_gram_ < 1 || max_gram_ < min_gram_ || max_skip_ < 0)
      info.fail("invalid n-gram length or skip attributes");
    if (indexes_.empty()) info.fail("ngram_indexes is empty");
    for (int64_t i : indexes_) {
      if (i < 0) info.fail("ngram_indexes holds a negative index");
      output_size_ = std::max(output_size_, i + 1);
    }
    if (!weights_.empty() && static_cast<int64_t>(weights_.size()) < output_size_)
      info.fail("weights is shorter than the output");
    strings_ = info.has_attr("pool_strings");
    std::vector<int64_t> pool_ints = info.attr_ints("pool_int64s");
    std::vector<std::string> pool_strings = info.attr_strings("pool_strings");
    const auto total = static_cast<int64_t>(strings_ ? pool_strings.size() : pool_ints.size());
    std::vector<int64_t> counts = info.attr_ints("ngram_counts");
    // Pool entry k of length n is the n-gram with id `next_id`; ids index ngram_indexes.
    int64_t next_id = 0;
    for (size_t i = 0; i < counts.size(); ++i) {
      const int64_t n = static_cast<int64_t>(i) + 1;
      const int64_t begin = counts[i], end = i + 1 < counts.size() ? counts[i + 1] : total;
      if (begin < 0 || end > total || end < begin) info.fail("ngram_counts does not fit the pool");
      for (int64_t start = begin; start + n <= end; start += n, ++next_id) {
        if (n < min_gram_ || n > max_gram_) continue;
        if (next_id >= static_cast<int64_t>(indexes_.size()))
          info.fail("ngram_indexes is shorter than the pool");
        Gram g;
        for (int64_t k = 0; k < n; ++k) {
          g.push_back(strings_ ? pool_strings[static_cast<size_t>(start + k)]
                               : std::to_string(pool_ints[static_cast<size_t>(start + k)]));
        }
        grams_[g] = indexes_[static_cast<size_t>(next_id)];
      }
    }
  }

  void compute(KernelContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() > 2) ctx.fail("input must be 1-D or 2-D, got shape " + shape_to_string(x.shape()));
    const int64_t rows = x.rank() == 2 ? x.dim(0) : 1;
    const int64_t cols = x.rank() == 0 ? 1 : x.dim(x.rank() - 1);
    Shape out_shape = x.rank() == 2 ? Shape{rows, output_size_} : Shape{output_size_};
    Tensor& y = ctx.output_zeroed(0, DType::Float, out_shape);
    std::vector<std::string> tokens(static_cast<size_t>(x.size()));
    for (int64_t i = 0; i < x.size(); ++i) {
      if (x.dtype() == DType::String) {
        tokens[static_cast<size_t>(i)] = x.data<std::string>()[i];
      } else if (x.dtype() == DType::Int32 || x.dtype() == DType::Int64) {
        tokens[static_cast<size_t>(i)] = std::to_string(x.scalar_as_int(i));
      } else {
        ctx.fail(std::string("input type ") + dtype_name(x.dtype()) +
                 " is not string, int32 or int64");
      }
    }
    if ((x.dtype() == DType::String) != strings_)
      ctx.fail("input type does not match the pool (pool_strings vs pool_int64s)");
    float* out = y.data<float>();
    for (int64_t r = 0; r < rows; ++r) {
      const std::string* row = tokens.data() + r * cols;
      float* counts = out + r * output_size_;
      int64_t first_n = min_gram_;
      for (int64_t skip = 1; skip <= max_skip_ + 1; ++skip) {
        for (int64_t start = 0; start < cols; ++start) {
          if (start + skip * (first_n - 1) >= cols) break;
          Gram g;
          for (int64_t n = 1, pos = start; n <= max_gram_ && pos < cols; ++n, pos += skip) {
            g.push_back(row[pos]);
            if (n < first_n) continue;
            auto it = grams_.find(g);
            if (it != grams_.end()) counts[it->second] += 1.0f;
          }
        }
        // Unigrams do not depend on the skip: count them in the first pass only.
        if (first_n == 1) {
          first_n = 2;
          if (first_n > max_gram_) break;
        }
      }
      for (int64_t i = 0; i < output_size_; ++i) {
        float& v = counts[i];
        if (mode_ == Mode::IDF) {
          v = v > 0 ? (weights_.empty() ? 1.0f : weights_[static_cast<size_t>(i)]) : 0.0f;
        } else if (mode_ == Mode::TFIDF && !weights_.empty()) {
          v *= weights_[static_cast<size_t>(i)];
        }
      }
    }
  }

 private:
  using Gram = std::vector<std::string>;
  enum class Mode { TF, IDF, TFIDF };
  int64_t min_gram_, max_gram_, max_skip_;
  std::vector<int64_t> indexes_;
  std::vector<float> weights_;
  Mode mode_ = Mode::TF;
  int64_t output_size_ = 0;
  bool strings_ = false;
  std::map<Gram, int64_t> grams_;
};

}  // namespace

GRAFT_CPU_KERNELS(tfidf_vectorizer) {
  reg.add({"",
           "TfIdfVectorizer",
           9,
           1 << 30,
           {DType::String, DType::Int32, DType::Int64},
           0,
           make<TfIdfVectorizer>});
}

}  // namespace graft
