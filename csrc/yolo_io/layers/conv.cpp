// Layers with weights: [convolutional], [deconvolutional], [connected],
// [local], [batchnorm], [implicit] ([A] parse_convolutional() and friends).
#include <algorithm>

#include "yolo_io/layers/layers.hpp"

namespace yolo_io {

Built build_convolutional(Options& o, Ctx& ctx, LayerInfo& L) {
    i64 n = o.i("filters", 1);
    i64 groups = o.i("groups", 1);
    i64 size = o.i("size", 1);
    i64 stride_x = o.i("stride_x", -1);
    i64 stride_y = o.i("stride_y", -1);
    if (stride_x < 1 || stride_y < 1) {
        i64 stride = o.i("stride", 1);
        if (stride_x < 1) stride_x = stride;
        if (stride_y < 1) stride_y = stride;
    } else {
        o.i("stride", 1);
    }
    i64 dilation = o.i("dilation", 1);
    if (size == 1) dilation = 1;
    i64 antialiasing = o.i("antialiasing", 0);
    i64 pad = o.i("pad", 0);
    i64 padding = o.i("padding", 0);
    if (pad) padding = size / 2;
    L.activation = activation(o, ctx, "activation", "logistic");
    o.mark({"assisted_excitation"});
    i64 share_raw = o.i("share_index", -1000000000);
    need_image(o, ctx, "convolutional");
    i64 bn = o.i("batch_normalize", 0);
    if (o.i("cbn", 0)) bn = 2;
    i64 binary = o.i("binary", 0);
    i64 xnor = o.i("xnor", 0);
    o.mark({"bin_output"});
    i64 deform = 0;
    for (auto k : {"sway", "rotate", "stretch", "stretch_sway"}) {
        deform += o.i(k, 0) != 0;
    }
    if (deform > 1) {
        o.fail("sets more than one of sway, rotate, stretch, stretch_sway (darknet: \"should be "
               "used only 1 param\")");
    }
    if (deform && size == 1) {
        o.fail("uses sway/rotate/stretch with size=1 (darknet requires size >= 3)");
    }
    i64 flipped = o.i("flipped", 0);
    o.mark({"dot", "angle", "grad_centr", "reverse", "coordconv", "stream", "wait_stream"});

    if (xnor) groups = 1;
    if (groups < 1) groups = 1;
    need_positive(o, "filters", n);
    // make_convolutional_layer() divides both by groups and drops the
    // remainder: some input channels would never be read, or some filters
    // never computed, and the weights' shape would not say so.
    if (ctx.in.c % groups != 0 || n % groups != 0) {
        o.fail_at("groups", "has groups=" + std::to_string(groups) + ", which does not divide " +
                                (ctx.in.c % groups != 0
                                     ? "its " + std::to_string(ctx.in.c) + " input channels"
                                     : "its filters=" + std::to_string(n)) +
                                " (darknet would drop the remainder)");
    }
    need_positive(o, "size", size);
    need_positive(o, stride_x == stride_y ? "stride" : "stride_x", std::min(stride_x, stride_y));
    // im2col_cpu_ext() steps by the dilation and pads by padding * dilation:
    // 0 reads one pixel size*size times, a negative one reads mirrored
    // taps; a negative padding crops, which no framework's conv does.
    need_positive(o, "dilation", dilation);
    if (!pad) need_at_least(o, "padding", padding, 0);
    i64 sx = antialiasing ? 1 : stride_x;
    i64 sy = antialiasing ? 1 : stride_y;
    const i64 span_h = window_span(ctx.in.h, sat_mul(2, padding), size);
    const i64 span_w = window_span(ctx.in.w, sat_mul(2, padding), size);
    Shape3 out{n, window_out(span_h, sy), window_out(span_w, sx)};
    if (span_h < 0 || span_w < 0) {
        o.fail("has size=" + std::to_string(size) + " larger than its padded input " +
               shape_str(ctx.in) + " (padding " + std::to_string(padding) + ")");
    }
    L.output_shape = antialiasing ? blur_out(out, antialiasing, stride_x, stride_y) : out;
    if (share_raw != -1000000000) {
        L.share_index = static_cast<int>(resolve_index(o, ctx, "share_index", share_raw));
    }

    attr(ctx, "filters", n);
    attr(ctx, "size", size);
    attr(ctx, "stride_x", stride_x);
    attr(ctx, "stride_y", stride_y);
    attr(ctx, "dilation", dilation);
    attr(ctx, "pad", padding);
    attr(ctx, "groups", groups);
    attr(ctx, "batch_normalize", bn != 0);
    attr(ctx, "activation", L.activation);
    attr(ctx, "share_index", L.share_index >= 0 ? std::optional<i64>(L.share_index) : std::nullopt);
    attr(ctx, "flipped", flipped != 0);
    attr(ctx, "antialiasing", antialiasing);
    attr(ctx, "binary", binary != 0);
    attr(ctx, "xnor", xnor != 0);

    if (L.share_index >= 0) {
        const LayerInfo& other = ctx.layers[static_cast<std::size_t>(L.share_index)];
        // make_convolutional_layer(): size, nweights, c and n must match.
        const ParamSpec* w = nullptr;
        for (const auto& p : other.params) {
            if (p.base == "weights" && p.prefix.empty()) w = &p;
        }
        const bool conv = other.kind == Kind::convolutional;
        bool ok = conv && w != nullptr && w->shape[2] == size && w->shape[0] == n &&
                  other.input_shape.c == ctx.in.c &&
                  w->count == sat_mul(sat_mul(ctx.in.c / groups, n), sat_mul(size, size));
        if (conv && other.share_index >= 0) {
            ok = other.input_shape.c == ctx.in.c && other.output_shape.c == n;
        }
        if (!ok) {
            o.fail_at("share_index", "shares the weights of layer " +
                                         std::to_string(L.share_index) + " (" +
                                         std::string(other.type) +
                                         "), whose size, filters or channels differ (darknet: "
                                         "\"Layer size, nweights, channels or filters don't "
                                         "match for the share_layer\")");
        }
        return {out, out.size()};
    }
    conv_block(o, L, "", n, ctx.in.c, groups, size, bn != 0, flipped != 0);
    return {out, out.size()};
}

Built build_deconvolutional(Options& o, Ctx& ctx, LayerInfo& L) {
    // [P] parse_deconvolutional(); stored like a conv with nweights = c*n*k*k
    // in the layout [c][n][k][k].
    i64 n = o.i("filters", 1);
    i64 size = o.i("size", 1);
    i64 stride = o.i("stride", 1);
    L.activation = activation(o, ctx, "activation", "logistic");
    need_image(o, ctx, "deconvolutional");
    i64 bn = o.i("batch_normalize", 0);
    i64 pad = o.i("pad", 0);
    i64 padding = o.i("padding", 0);
    if (pad) padding = size / 2;
    need_positive(o, "filters", n);
    need_positive(o, "size", size);
    need_positive(o, "stride", stride);
    if (!pad) need_at_least(o, "padding", padding, 0);
    Shape3 out{n, window_out_transposed(ctx.in.h, stride, size, sat_mul(2, padding)),
               window_out_transposed(ctx.in.w, stride, size, sat_mul(2, padding))};
    need_output(o, ctx, out);
    add_param(L, {}, "biases", {n}, n);
    if (bn) {
        bn_params(L, {}, n);
    }
    add_param(L, {}, "weights", {ctx.in.c, n, size, size}, mul(o, {ctx.in.c, n, size, size}));
    L.output_shape = out;
    attr(ctx, "filters", n);
    attr(ctx, "size", size);
    attr(ctx, "stride", stride);
    attr(ctx, "pad", padding);
    attr(ctx, "batch_normalize", bn != 0);
    attr(ctx, "activation", L.activation);
    return {out, out.size()};
}

Built build_connected(Options& o, Ctx& ctx, LayerInfo& L) {
    i64 output = o.i("output", 1);
    L.activation = activation(o, ctx, "activation", "logistic");
    i64 bn = o.i("batch_normalize", 0);
    need_positive(o, "output", output);
    if (ctx.inputs < 1) {
        o.fail("has no input: the layer before it outputs nothing");
    }
    connected_block(o, L, "", ctx.inputs, output, bn != 0);
    L.output_shape = {output, 1, 1};
    attr(ctx, "outputs", output);
    attr(ctx, "batch_normalize", bn != 0);
    attr(ctx, "activation", L.activation);
    return {L.output_shape, output};
}

Built build_local(Options& o, Ctx& ctx, LayerInfo& L) {
    i64 n = o.i("filters", 1);
    i64 size = o.i("size", 1);
    i64 stride = o.i("stride", 1);
    i64 pad = o.i("pad", 0);
    L.activation = activation(o, ctx, "activation", "logistic");
    need_image(o, ctx, "local");
    need_positive(o, "filters", n);
    need_positive(o, "size", size);
    need_positive(o, "stride", stride);
    // local_out_height(): h - (pad ? 1 : size), / stride, + 1.
    i64 oh = window_out(window_span(ctx.in.h, 0, pad ? 1 : size), stride);
    i64 ow = window_out(window_span(ctx.in.w, 0, pad ? 1 : size), stride);
    Shape3 out{n, oh, ow};
    if (oh < 1 || ow < 1) {
        o.fail("has an empty output " + shape_str(out) + " for input " + shape_str(ctx.in));
    }
    i64 locations = mul(o, {oh, ow});
    add_param(L, {}, "biases", {n, oh, ow}, mul(o, {n, oh, ow}));
    add_param(L, {}, "weights", {locations, n, ctx.in.c, size, size},
              mul(o, {locations, n, ctx.in.c, size, size}));
    L.output_shape = out;
    attr(ctx, "filters", n);
    attr(ctx, "size", size);
    attr(ctx, "stride", stride);
    attr(ctx, "pad", pad);
    attr(ctx, "activation", L.activation);
    return {out, out.size()};
}

Built build_batchnorm(Options&, Ctx& ctx, LayerInfo& L) {
    add_param(L, {}, "biases", {ctx.in.c}, ctx.in.c);
    bn_params(L, {}, ctx.in.c);
    L.output_shape = ctx.in;
    return {ctx.in, ctx.inputs};
}

Built build_implicit(Options& o, Ctx& ctx, LayerInfo& L) {
    o.f("mean", 0.0);
    o.f("std", 0.2);
    i64 filters = o.i("filters", 128);
    i64 atoms = o.i("atoms", 1);
    need_positive(o, "filters", filters);
    need_positive(o, "atoms", atoms);
    add_param(L, {}, "weights", {filters, atoms}, mul(o, {filters, atoms}));
    L.output_shape = {filters, atoms, 1};
    attr(ctx, "filters", filters);
    attr(ctx, "atoms", atoms);
    return {L.output_shape, L.output_shape.size()};
}

}  // namespace yolo_io
