// NonMaxSuppression: per batch and class, greedily keeps the highest-scoring boxes whose IoU
// with every box already kept is at most iou_threshold. Output rows are
// [batch_index, class_index, box_index].
#include <algorithm>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "exec/kernel.h"

namespace graft {
namespace {

struct Box {
  float x_min, y_min, x_max, y_max;
};

Box corners(const float* b, bool center_point) {
  if (center_point) {
    const float half_w = b[2] / 2, half_h = b[3] / 2;
    return {b[0] - half_w, b[1] - half_h, b[0] + half_w, b[1] + half_h};
  }
  return {std::min(b[1], b[3]), std::min(b[0], b[2]), std::max(b[1], b[3]), std::max(b[0], b[2])};
}

bool suppresses(const Box& a, const Box& b, float iou_threshold) {
  const float ix_min = std::max(a.x_min, b.x_min), ix_max = std::min(a.x_max, b.x_max);
  if (ix_max <= ix_min) return false;
  const float iy_min = std::max(a.y_min, b.y_min), iy_max = std::min(a.y_max, b.y_max);
  if (iy_max <= iy_min) return false;
  const float inter = (ix_max - ix_min) * (iy_max - iy_min);
  const float area_a = (a.x_max - a.x_min) * (a.y_max - a.y_min);
  const float area_b = (b.x_max - b.x_min) * (b.y_max - b.y_min);
  const float uni = area_a + area_b - inter;
  if (inter <= 0 || area_a <= 0 || area_b <= 0 || uni <= 0) return false;
  return inter / uni > iou_threshold;
}

class NonMaxSuppression final : public Kernel {
 public:
  explicit NonMaxSuppression(const KernelInfo& info)
      : center_point_(info.attr_int("center_point_box", 0) != 0) {}

  void compute(KernelContext& ctx) override {
    const Tensor& boxes = ctx.input(0);
    const Tensor& scores = ctx.input(1);
    if (boxes.dtype() != DType::Float || scores.dtype() != DType::Float) {
      ctx.fail("boxes and scores must be float tensors");
    }
    if (boxes.rank() != 3 || boxes.dim(2) != 4) {
      ctx.fail("boxes must have shape [batch, boxes, 4], got " + shape_to_string(boxes.shape()));
    }
    if (scores.rank() != 3 || scores.dim(0) != boxes.dim(0) || scores.dim(2) != boxes.dim(1)) {
      ctx.fail("scores shape " + shape_to_string(scores.shape()) +
               " does not match boxes; expected [batch, classes, boxes]");
    }
    int64_t max_per_class = 0;
    if (ctx.has_input(2) && ctx.input(2).size() > 0) {
      max_per_class = std::max<int64_t>(ctx.input(2).scalar_as_int(), 0);
    }
    float iou_threshold = 0;
    if (ctx.has_input(3) && ctx.input(3).size() > 0) {
      iou_threshold = static_cast<float>(ctx.input(3).scalar_as_double());
    }
    const bool has_score_threshold = ctx.has_input(4) && ctx.input(4).size() > 0;
    const float score_threshold =
        has_score_threshold ? static_cast<float>(ctx.input(4).scalar_as_double()) : 0.0f;

    const int64_t batches = boxes.dim(0), num_boxes = boxes.dim(1), classes = scores.dim(1);
    const float* box_data = boxes.data<float>();
    const float* score_data = scores.data<float>();
    std::vector<int64_t> selected;
    std::vector<Box> batch_boxes(static_cast<size_t>(num_boxes));
    std::vector<int64_t> order;
    std::vector<int64_t> kept;
    for (int64_t b = 0; b < batches; ++b) {
      for (int64_t i = 0; i < num_boxes; ++i) {
        batch_boxes[static_cast<size_t>(i)] =
            corners(box_data + (b * num_boxes + i) * 4, center_point_);
      }
      for (int64_t c = 0; c < classes; ++c) {
        const float* s = score_data + (b * classes + c) * num_boxes;
        order.clear();
        for (int64_t i = 0; i < num_boxes; ++i) {
          if (!has_score_threshold || s[i] > score_threshold) order.push_back(i);
        }
        std::stable_sort(order.begin(), order.end(),
                         [&](int64_t l, int64_t r) { return s[l] > s[r]; });
        kept.clear();
        for (int64_t i : order) {
          if (static_cast<int64_t>(kept.size()) >= max_per_class) break;
          const Box& candidate = batch_boxes[static_cast<size_t>(i)];
          bool keep = true;
          for (int64_t k : kept) {
            if (suppresses(candidate, batch_boxes[static_cast<size_t>(k)], iou_threshold)) {
              keep = false;
              break;
            }
          }
          if (!keep) continue;
          kept.push_back(i);
          selected.insert(selected.end(), {b, c, i});
        }
      }
    }
    const auto rows = static_cast<int64_t>(selected.size() / 3);
    Tensor& y = ctx.output(0, DType::Int64, {rows, 3});
    std::copy(selected.begin(), selected.end(), y.data<int64_t>());
  }

 private:
  bool center_point_;
};

}  // namespace

GRAFT_CPU_KERNELS(misc_non_max_suppression) {
  reg.add({"", "NonMaxSuppression", 10, 1 << 30, {}, 0, make<NonMaxSuppression>});
}

}  // namespace graft
