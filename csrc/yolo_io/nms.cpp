// darknet's NMS (see nms.hpp). Every expression follows box.c term by term
// in float (the core is built with -ffp-contract=off, so no multiply-add is
// fused where darknet's x86 build rounds twice); pow() is C's, in double,
// as darknet calls it.
#include "yolo_io/nms.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace yolo_io {

namespace {

struct NmsBox {
    float x, y, w, h;
};

// box.c overlap(): the length two intervals share (negative when apart).
float nms_overlap(float x1, float w1, float x2, float w2) {
    const float l1 = x1 - w1 / 2;
    const float l2 = x2 - w2 / 2;
    const float left = l1 > l2 ? l1 : l2;
    const float r1 = x1 + w1 / 2;
    const float r2 = x2 + w2 / 2;
    const float right = r1 < r2 ? r1 : r2;
    return right - left;
}

// box.c box_iou() (box_intersection, box_union).
float nms_iou(const NmsBox& a, const NmsBox& b) {
    const float w = nms_overlap(a.x, a.w, b.x, b.w);
    const float h = nms_overlap(a.y, a.h, b.y, b.h);
    const float inter = (w < 0 || h < 0) ? 0.0f : w * h;
    const float uni = a.w * a.h + b.w * b.h - inter;
    if (inter == 0 || uni == 0) return 0;
    return inter / uni;
}

// box.c box_diou() / box_diounms(): box_c()'s enclosing box, fmin/fmax in
// double of float values, stored as float.
float nms_diou(const NmsBox& a, const NmsBox& b, float iou, double exponent) {
    const auto top = static_cast<float>(std::fmin(a.y - a.h / 2, b.y - b.h / 2));
    const auto bot = static_cast<float>(std::fmax(a.y + a.h / 2, b.y + b.h / 2));
    const auto left = static_cast<float>(std::fmin(a.x - a.w / 2, b.x - b.w / 2));
    const auto right = static_cast<float>(std::fmax(a.x + a.w / 2, b.x + b.w / 2));
    const float w = right - left;
    const float h = bot - top;
    const float c = w * w + h * h;
    if (c == 0) return iou;
    const float d = (a.x - b.x) * (a.x - b.x) + (a.y - b.y) * (a.y - b.y);
    const auto u = static_cast<float>(std::pow(static_cast<double>(d / c), exponent));
    return iou - u;
}

// Whether `a` suppresses `b`. DIoU is IoU minus a term that is 0 or more
// (or NaN, which suppresses nothing), so a pair whose IoU is not above the
// threshold is decided without the power.
bool nms_suppresses(const NmsBox& a, const NmsBox& b, float thresh, Overlap overlap,
                    double exponent) {
    const float iou = nms_iou(a, b);
    if (!(iou > thresh)) return false;
    return overlap == Overlap::iou || nms_diou(a, b, iou, exponent) > thresh;
}

}  // namespace

void nms_per_class(const float* boxes, const float* probs, std::size_t n, std::size_t classes,
                   float thresh, Overlap overlap, double exponent, std::uint8_t* keep) {
    std::vector<NmsBox> all(n);
    for (std::size_t i = 0; i < n; ++i) {
        all[i] = NmsBox{boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3]};
    }
    std::fill(keep, keep + n * classes, std::uint8_t{0});
    std::vector<std::size_t> order;
    std::vector<NmsBox> ranked;
    std::vector<std::uint8_t> alive;
    for (std::size_t k = 0; k < classes; ++k) {
        order.clear();
        for (std::size_t i = 0; i < n; ++i) {
            if (probs[i * classes + k] > 0) order.push_back(i);
        }
        if (order.empty()) continue;
        std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
            return probs[a * classes + k] > probs[b * classes + k];
        });
        const std::size_t m = order.size();
        ranked.resize(m);
        for (std::size_t r = 0; r < m; ++r) ranked[r] = all[order[r]];
        alive.assign(m, 1);
        for (std::size_t r = 0; r < m; ++r) {
            if (!alive[r]) continue;
            keep[order[r] * classes + k] = 1;
            const NmsBox& a = ranked[r];
            for (std::size_t s = r + 1; s < m; ++s) {
                if (!alive[s]) continue;
                if (nms_suppresses(a, ranked[s], thresh, overlap, exponent)) alive[s] = 0;
            }
        }
    }
}

}  // namespace yolo_io
