// Layers without parameters whose output is their input's shape or a simple
// function of it: [dropout], [softmax], [cost], [normalization],
// [activation], [crop], [history], [iseg], [empty]/[silence], [logistic],
// [l2norm].
#include "yolo_io/layers/layers.hpp"

namespace yolo_io {

namespace {

Built same_shape(const Ctx& ctx, LayerInfo& L) {
    L.output_shape = ctx.in;
    return {ctx.in, ctx.inputs};
}

}  // namespace

Built build_dropout(Options& o, Ctx& ctx, LayerInfo& L) {
    double probability = o.f("probability", 0.2);
    bool dropblock = o.i("dropblock", 0) != 0;
    o.mark({"dropblock_size_rel", "dropblock_size_abs"});
    attr(ctx, "probability", probability);
    attr(ctx, "dropblock", dropblock);
    return same_shape(ctx, L);
}

Built build_softmax(Options& o, Ctx& ctx, LayerInfo& L) {
    i64 groups = o.i("groups", 1);
    // softmax_cpu() splits the inputs into groups of inputs/groups values:
    // 0 divides by zero, and a remainder is never computed.
    need_positive(o, "groups", groups);
    if (ctx.inputs % groups != 0) {
        o.fail_at("groups", "has groups=" + std::to_string(groups) + ", which does not divide its " +
                                std::to_string(ctx.inputs) + " inputs (darknet would leave the "
                                "remainder uncomputed)");
    }
    double temperature = o.f("temperature", 1);
    // parse_softmax() stores the float option in an int member.
    auto spatial = static_cast<i64>(o.f("spatial", 0));
    const bool tree = o.find("tree") != nullptr;  // option_find_str(): any value
    o.mark({"noloss"});
    attr(ctx, "groups", groups);
    attr(ctx, "temperature", temperature);
    attr(ctx, "spatial", spatial != 0);
    attr(ctx, "tree", tree);
    return same_shape(ctx, L);
}

Built build_cost(Options& o, Ctx& ctx, LayerInfo& L) {
    o.mark({"type", "scale", "ratio"});
    return same_shape(ctx, L);
}

Built build_normalization(Options& o, Ctx& ctx, LayerInfo& L) {
    double alpha = o.f("alpha", .0001);
    double beta = o.f("beta", .75);
    double kappa = o.f("kappa", 1);
    i64 size = o.i("size", 5);
    need_positive(o, "size", size);
    attr(ctx, "size", size);
    attr(ctx, "alpha", alpha);
    attr(ctx, "beta", beta);
    attr(ctx, "kappa", kappa);
    return same_shape(ctx, L);
}

Built build_activation(Options& o, Ctx& ctx, LayerInfo& L) {
    L.activation = activation(o, ctx, "activation", "linear");
    attr(ctx, "activation", L.activation);
    return same_shape(ctx, L);
}

Built build_crop(Options& o, Ctx& ctx, LayerInfo& L) {
    i64 ch = o.i("crop_height", 1);
    i64 cw = o.i("crop_width", 1);
    o.mark({"flip", "angle", "saturation", "exposure", "noadjust", "shift"});
    need_image(o, ctx, "crop");
    need_positive(o, "crop_height", ch);
    need_positive(o, "crop_width", cw);
    L.output_shape = {ctx.in.c, ch, cw};
    attr(ctx, "crop_height", ch);
    attr(ctx, "crop_width", cw);
    return {L.output_shape, L.output_shape.size()};
}

Built build_history(Options& o, Ctx& ctx, LayerInfo& L) {
    i64 hs = o.i("history_size", 4);
    need_positive(o, "history_size", hs);
    L.output_shape = {sat_mul(ctx.in.c, hs), ctx.in.h, ctx.in.w};
    attr(ctx, "history_size", hs);
    return {L.output_shape, L.output_shape.size()};
}

Built build_iseg(Options& o, Ctx& ctx, LayerInfo& L) {
    i64 classes = o.i("classes", 20);
    i64 ids = o.i("ids", 32);
    need_at_least(o, "classes", classes, 0);
    need_at_least(o, "ids", ids, 0);
    L.output_shape = {sat_add(classes, ids), ctx.in.h, ctx.in.w};
    need_output(o, ctx, L.output_shape);
    attr(ctx, "classes", classes);
    attr(ctx, "ids", ids);
    return {L.output_shape, L.output_shape.size()};
}

Built build_passthrough(Options&, Ctx& ctx, LayerInfo& L) { return same_shape(ctx, L); }

}  // namespace yolo_io
