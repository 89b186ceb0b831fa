// Recurrent layers: [rnn], [lstm], [gru] (stacks of connected layers) and
// [crnn], [conv_lstm] (stacks of convolutions), in darknet's sub-layer order.
#include "yolo_io/layers/layers.hpp"

namespace yolo_io {

Built build_recurrent_fc(Options& o, Ctx& ctx, LayerInfo& L) {
    i64 output = o.i("output", 1);
    need_positive(o, "output", output);
    if (ctx.inputs < 1) {
        o.fail("has no input: the layer before it outputs nothing");
    }
    i64 in = ctx.inputs;
    bool bn = false;
    if (ctx.kind == Kind::rnn) {
        i64 hidden = o.i("hidden", 1);
        L.activation = activation(o, ctx, "activation", "logistic");
        bn = o.i("batch_normalize", 0) != 0;
        o.mark({"logistic", "shortcut"});
        need_positive(o, "hidden", hidden);
        connected_block(o, L, "input_layer", in, hidden, bn);
        connected_block(o, L, "self_layer", hidden, hidden, bn);
        connected_block(o, L, "output_layer", hidden, output, bn);
        attr(ctx, "hidden", hidden);
    } else if (ctx.kind == Kind::lstm) {
        bn = o.i("batch_normalize", 0) != 0;
        for (const char* name : {"wf", "wi", "wg", "wo"}) {
            connected_block(o, L, name, output, output, bn);
        }
        for (const char* name : {"uf", "ui", "ug", "uo"}) {
            connected_block(o, L, name, in, output, bn);
        }
    } else {  // gru
        bn = o.i("batch_normalize", 0) != 0;
        for (const char* name : {"input_z_layer", "input_r_layer", "input_h_layer"}) {
            connected_block(o, L, name, in, output, bn);
        }
        for (const char* name : {"state_z_layer", "state_r_layer", "state_h_layer"}) {
            connected_block(o, L, name, output, output, bn);
        }
    }
    L.output_shape = {output, 1, 1};
    attr(ctx, "outputs", output);
    attr(ctx, "batch_normalize", bn);
    if (!L.activation.empty()) attr(ctx, "activation", L.activation);
    return {L.output_shape, output};
}

Built build_recurrent_conv(Options& o, Ctx& ctx, LayerInfo& L) {
    const bool crnn = ctx.kind == Kind::crnn;
    i64 size = o.i("size", 3);
    i64 stride = o.i("stride", 1);
    i64 dilation = o.i("dilation", 1);
    i64 pad = o.i("pad", 0);
    i64 padding = o.i("padding", 0);
    if (pad) padding = size / 2;
    i64 output = o.i("output", 1);
    i64 hidden = crnn ? o.i("hidden", 1) : output;
    i64 groups = o.i("groups", 1);
    L.activation = activation(o, ctx, "activation", crnn ? "logistic" : "linear");
    bool bn = o.i("batch_normalize", 0) != 0;
    i64 xnor = o.i("xnor", 0);
    i64 peephole = crnn ? 0 : o.i("peephole", 0);
    i64 bottleneck = crnn ? 0 : o.i("bottleneck", 0);
    o.mark({"shortcut", "state_constrain", "time_normalizer"});
    std::string_view lstm_activation;
    if (!crnn) {
        lstm_activation = activation(o, ctx, "lstm_activation", "tanh");
    }
    if (xnor) groups = 1;
    if (groups < 1) groups = 1;
    need_image(o, ctx, L.type);
    need_positive(o, "output", output);
    need_positive(o, "size", size);
    need_positive(o, "stride", stride);
    if (size != 1) need_positive(o, "dilation", dilation);
    if (!pad) need_at_least(o, "padding", padding, 0);
    i64 c = ctx.in.c;
    // Each inner convolution divides its channels and filters by groups, as
    // [convolutional] does (darknet would drop the remainder).
    for (i64 v : {c, hidden, output}) {
        if (v % groups != 0) {
            o.fail_at("groups", "has groups=" + std::to_string(groups) + ", which does not "
                                "divide " + std::to_string(v) + ", the channels or filters of "
                                "one of its convolutions (darknet would drop the remainder)");
        }
    }
    if (crnn) {
        need_positive(o, "hidden", hidden);
        conv_block(o, L, "input_layer", hidden, c, groups, size, bn, false);
        conv_block(o, L, "self_layer", hidden, hidden, groups, size, bn, false);
        conv_block(o, L, "output_layer", output, hidden, groups, size, bn, false);
    } else {
        if (peephole) {
            for (const char* name : {"vf", "vi", "vo"}) {
                conv_block(o, L, name, output, output, groups, size, bn, false);
            }
        }
        conv_block(o, L, "wf", output, bottleneck ? sat_mul(2, output) : output, groups, size, bn,
                   false);
        if (!bottleneck) {
            for (const char* name : {"wi", "wg", "wo"}) {
                conv_block(o, L, name, output, output, groups, size, bn, false);
            }
        }
        for (const char* name : {"uf", "ui", "ug", "uo"}) {
            conv_block(o, L, name, output, c, groups, size, bn, false);
        }
    }
    const i64 span_h = window_span(ctx.in.h, sat_mul(2, padding), size);
    const i64 span_w = window_span(ctx.in.w, sat_mul(2, padding), size);
    Shape3 out{output, window_out(span_h, stride), window_out(span_w, stride)};
    if (span_h < 0 || span_w < 0) {
        o.fail("has size=" + std::to_string(size) + " larger than its padded input " +
               shape_str(ctx.in) + " (padding " + std::to_string(padding) + ")");
    }
    L.output_shape = out;
    attr(ctx, "outputs", output);
    if (crnn) attr(ctx, "hidden", hidden);
    attr(ctx, "size", size);
    attr(ctx, "stride", stride);
    attr(ctx, "pad", padding);
    attr(ctx, "groups", groups);
    attr(ctx, "batch_normalize", bn);
    attr(ctx, "activation", L.activation);
    if (!crnn) {
        attr(ctx, "lstm_activation", lstm_activation);
        attr(ctx, "peephole", peephole != 0);
        attr(ctx, "bottleneck", bottleneck != 0);
    }
    return {out, out.size()};
}

}  // namespace yolo_io
