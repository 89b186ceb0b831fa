// darknet's non-maximum suppression (box.c: do_nms_sort, diounms_sort), per
// class, in darknet's float arithmetic, for yolo_io.detect.
#pragma once

#include <cstddef>
#include <cstdint>

namespace yolo_io {

// How two boxes' overlap is measured: box_iou, or IoU minus
// (centre distance^2 / enclosing diagonal^2)^exponent (box_diou with 0.6,
// box_diounms with beta_nms).
enum class Overlap { iou, diou };

// For each of `classes` classes of `n` boxes (cx, cy, w, h as float32,
// n x 4) with probabilities `probs` (n x classes, those at or below the
// detection threshold already 0): boxes in order of decreasing probability
// (ties in index order), each box not yet suppressed suppresses every later
// one whose overlap with it is above `thresh`. keep[i * classes + k] is 1
// where box i survives for class k with a probability above 0, else 0.
void nms_per_class(const float* boxes, const float* probs, std::size_t n, std::size_t classes,
                   float thresh, Overlap overlap, double exponent, std::uint8_t* keep);

}  // namespace yolo_io
