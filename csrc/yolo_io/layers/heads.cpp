// Detection heads: [yolo], [Gaussian_yolo], [region], [detection], and the
// [contrastive] layer that points at a [yolo] head ([A] parse_yolo() and
// friends). Their settings are what decoding the head's output needs.
#include <algorithm>

#include "yolo_io/layers/layers.hpp"

namespace yolo_io {

namespace {

// Training-only keys of the heads, read so they are not reported as unused.
constexpr std::array<std::string_view, 26> kYoloKeys = {
    "max", "show_details", "max_delta", "counters_per_class", "label_smooth_eps",
    "objectness_smooth", "iou_normalizer", "obj_normalizer", "cls_normalizer",
    "delta_normalizer", "iou_loss", "iou_thresh_kind", "jitter", "resize", "focal_loss",
    "ignore_thresh", "truth_thresh", "iou_thresh", "random", "track_history_size", "sim_thresh",
    "dets_for_track", "dets_for_show", "track_ciou_norm", "embedding_layer", "map"};
constexpr std::array<std::string_view, 19> kGaussianKeys = {
    "max", "max_delta", "counters_per_class", "label_smooth_eps", "objectness_smooth",
    "uc_normalizer", "iou_normalizer", "obj_normalizer", "cls_normalizer", "delta_normalizer",
    "iou_loss", "iou_thresh_kind", "jitter", "resize", "ignore_thresh", "truth_thresh",
    "iou_thresh", "random", "map"};
constexpr std::array<std::string_view, 20> kRegionKeys = {
    "max", "log", "sqrt", "focal_loss", "jitter", "resize", "rescore", "thresh", "classfix",
    "absolute", "random", "coord_scale", "object_scale", "noobject_scale", "mask_scale",
    "class_scale", "bias_match", "tree", "map", "softmax"};
constexpr std::array<std::string_view, 10> kDetectionKeys = {
    "max", "coord_scale", "forced", "object_scale", "noobject_scale", "class_scale", "jitter",
    "resize", "random", "reorg"};

// l.biases: `count` floats, .5 unless the anchors= option gives them; as
// (w, h) pairs. parse_yolo() and parse_region() read at most `count` values;
// parse_gaussian_yolo() (`capped` false) writes every listed value into the
// buffer of `count`, so a longer list, which overruns it, is refused.
std::vector<std::array<double, 2>> anchors(Options& o, i64 count, bool hash_ends, bool capped) {
    std::vector<double> biases(static_cast<std::size_t>(std::max<i64>(count, 0)), 0.5);
    if (const CfgOption* a = o.find("anchors")) {
        const auto parts = comma_parts(a->value, hash_ends);
        if (!capped && static_cast<i64>(parts.size()) > count) {
            o.fail_at("anchors", "lists " + std::to_string(parts.size()) + " anchor values, more "
                                 "than the " + std::to_string(count) + " it holds (darknet "
                                 "writes past its buffer)");
        }
        for (std::size_t k = 0; k < parts.size() && k < biases.size(); ++k) {
            biases[k] = o.real_value("anchors", parts[k]);
        }
    }
    std::vector<std::array<double, 2>> pairs;
    for (std::size_t k = 0; k + 1 < biases.size(); k += 2) {
        pairs.push_back({biases[k], biases[k + 1]});
    }
    return pairs;
}

// More anchors than any real head has: refused before anything is sized by it.
constexpr i64 kMaxAnchors = i64{1} << 20;

void check_anchor_count(const Options& o, i64 num) {
    if (num > kMaxAnchors) {
        o.fail_at("num", "has num=" + std::to_string(num) + " anchors, more than the " +
                             std::to_string(kMaxAnchors) + " yolo_io accepts");
    }
}

// The head's input must hold exactly what it decodes.
void check_head_input(Options& o, Ctx& ctx, i64 expected, const std::string& why) {
    if (expected == ctx.inputs) return;
    std::string prev;
    if (ctx.index > 0) {
        const LayerInfo& p = ctx.layers[static_cast<std::size_t>(ctx.index - 1)];
        prev = "; its input, layer " + std::to_string(p.index) + " (" + std::string(p.type) +
               ", line " + std::to_string(p.line) + "), outputs " + shape_str(p.output_shape);
        if (p.kind == Kind::convolutional && kind_info(ctx.kind).has(kGridHead)) {
            i64 hw = sat_mul(ctx.in.h, ctx.in.w);
            prev += ": set filters=" + std::to_string(hw ? expected / hw : 0) + " there";
        }
    }
    o.fail("expects " + why + prev +
           " (darknet: \"filters= in the [convolutional]-layer doesn't correspond to "
           "classes= or mask=\")");
}

}  // namespace

Built build_yolo(Options& o, Ctx& ctx, LayerInfo& L) {
    const bool gaussian = ctx.kind == Kind::gaussian_yolo;
    i64 classes = o.i("classes", 20);
    i64 total = o.i("num", 1);
    std::vector<i64> mask;
    if (const CfgOption* m = o.find("mask")) {
        for (std::string_view part : comma_parts(m->value, true)) {
            mask.push_back(o.int_value("mask", part));
        }
    }
    const i64 n = mask.empty() ? total : static_cast<i64>(mask.size());
    need_at_least(o, "classes", classes, 0);
    if (mask.empty()) need_at_least(o, "num", total, 1);  // a mask has at least one index
    i64 per = gaussian ? 9 : 5;
    const i64 channels = sat_mul(n, sat_add(classes, per));
    i64 expected = sat_mul(sat_mul(ctx.in.h, ctx.in.w), channels);
    check_head_input(o, ctx, expected,
                     std::to_string(n) + " anchors in mask x (classes=" + std::to_string(classes) +
                         " + " + std::to_string(per) + ") = " + std::to_string(channels) +
                         " channels");
    check_anchor_count(o, total);
    if (mask.empty()) {
        for (i64 k = 0; k < total; ++k) mask.push_back(k);  // make_yolo_layer()'s default
    }
    for (i64 m : mask) {
        if (m < 0 || m >= total) {
            o.fail_at("mask", "has mask index " + std::to_string(m) + " outside the num=" +
                                  std::to_string(total) + " anchors 0.." +
                                  std::to_string(total - 1) + " (darknet reads past them)");
        }
    }
    const auto all = anchors(o, sat_mul(total, 2), !gaussian, !gaussian);
    std::vector<std::array<double, 2>> used;
    for (i64 m : mask) used.push_back(all[static_cast<std::size_t>(m)]);
    double scale_x_y = o.f("scale_x_y", 1);
    bool new_coords = !gaussian && o.i("new_coords", 0) != 0;
    double beta_nms = o.f("beta_nms", 0.6);
    std::string_view nms = o.s("nms_kind", "default");
    std::string_view nms_kind = "default";
    for (std::string_view k : {"greedynms", "diounms", "cornersnms"}) {
        if (nms == k && (gaussian || k != "cornersnms")) nms_kind = k;
    }
    std::string_view yolo_point = "center";
    if (gaussian) {
        std::string_view p = o.s("yolo_point", "center");
        if (p == "left_top") yolo_point = "left_top";
        if (p == "right_bottom") yolo_point = "right_bottom";
    }
    if (gaussian) {
        o.mark(kGaussianKeys);
    } else {
        o.mark(kYoloKeys);
    }
    L.output_shape = ctx.in;
    attr(ctx, "classes", classes);
    attr(ctx, "num", n);
    attr(ctx, "total", total);
    attr(ctx, "mask", std::move(mask));
    attr(ctx, "anchors", std::move(used));
    attr(ctx, "all_anchors", all);
    attr(ctx, "scale_x_y", scale_x_y);
    attr(ctx, "new_coords", new_coords);
    attr(ctx, "nms_kind", nms_kind);
    attr(ctx, "beta_nms", beta_nms);
    if (gaussian) attr(ctx, "yolo_point", yolo_point);
    return {ctx.in, ctx.inputs};
}

Built build_region(Options& o, Ctx& ctx, LayerInfo& L) {
    i64 coords = o.i("coords", 4);
    i64 classes = o.i("classes", 20);
    i64 num = o.i("num", 1);
    bool softmax = o.i("softmax", 0) != 0;
    need_at_least(o, "classes", classes, 0);
    need_at_least(o, "coords", coords, 0);
    need_at_least(o, "num", num, 1);
    const i64 channels = sat_mul(num, sat_add(sat_add(classes, coords), 1));
    i64 expected = sat_mul(sat_mul(ctx.in.h, ctx.in.w), channels);
    check_head_input(o, ctx, expected,
                     "num=" + std::to_string(num) + " x (classes=" + std::to_string(classes) +
                         " + coords=" + std::to_string(coords) + " + 1) = " +
                         std::to_string(channels) + " channels");
    check_anchor_count(o, num);
    auto pairs = anchors(o, sat_mul(num, 2), false, true);
    // get_region_detections(): a softmax tree (tree=, any value) or
    // classfix= change how the output is decoded.
    const bool tree = o.find("tree") != nullptr;
    const i64 classfix = o.i("classfix", 0);
    o.mark(kRegionKeys);
    L.output_shape = ctx.in;
    attr(ctx, "classes", classes);
    attr(ctx, "coords", coords);
    attr(ctx, "num", num);
    attr(ctx, "anchors", std::move(pairs));
    attr(ctx, "softmax", softmax);
    attr(ctx, "tree", tree);
    attr(ctx, "classfix", classfix);
    return {ctx.in, ctx.inputs};
}

Built build_detection(Options& o, Ctx& ctx, LayerInfo& L) {
    i64 coords = o.i("coords", 1);
    i64 classes = o.i("classes", 1);
    bool rescore = o.i("rescore", 0) != 0;
    i64 num = o.i("num", 1);
    i64 side = o.i("side", 7);
    bool softmax = o.i("softmax", 0) != 0;
    bool sqrt = o.i("sqrt", 0) != 0;
    need_at_least(o, "classes", classes, 0);
    need_at_least(o, "coords", coords, 0);
    need_at_least(o, "num", num, 1);
    need_at_least(o, "side", side, 1);
    i64 expected =
        sat_mul(sat_mul(side, side), sat_add(sat_mul(sat_add(coords, 1), num), classes));
    check_head_input(o, ctx, expected,
                     "side^2 x ((1 + coords) x num + classes) = " + std::to_string(expected) +
                         " values");
    o.mark(kDetectionKeys);
    L.output_shape = ctx.in;
    attr(ctx, "classes", classes);
    attr(ctx, "coords", coords);
    attr(ctx, "num", num);
    attr(ctx, "side", side);
    attr(ctx, "softmax", softmax);
    attr(ctx, "sqrt", sqrt);
    attr(ctx, "rescore", rescore);
    return {ctx.in, ctx.inputs};
}

Built build_contrastive(Options& o, Ctx& ctx, LayerInfo& L) {
    i64 classes = o.i("classes", 1000);
    i64 yolo = o.i("yolo_layer", 0);
    if (yolo < 0) yolo = ctx.index + yolo;
    if (yolo != 0) {
        if (yolo < 0 || yolo >= ctx.index ||
            ctx.layers[static_cast<std::size_t>(yolo)].kind != Kind::yolo) {
            o.fail_at("yolo_layer", "has yolo_layer pointing at layer " + std::to_string(yolo) +
                                        ", which is not a [yolo] layer before it");
        }
    }
    if (yolo != 0) {
        // make_contrastive_layer(): the head's classes replace the option.
        classes = find_attr(ctx, ctx.layers[static_cast<std::size_t>(yolo)], "classes")->integer;
    }
    double temperature = o.f("temperature", 1);
    o.mark({"cls_normalizer", "max_delta", "contrastive_neg_max"});
    L.output_shape = ctx.in;
    attr(ctx, "classes", classes);
    attr(ctx, "yolo_layer", yolo != 0 ? std::optional<i64>(yolo) : std::nullopt);
    attr(ctx, "temperature", temperature);
    return {ctx.in, ctx.inputs};
}

}  // namespace yolo_io
