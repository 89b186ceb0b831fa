// Layers that combine or rearrange others: [route], [shortcut],
// [scale_channels], [sam], [upsample], [reorg], [reorg3d].
#include "yolo_io/layers/layers.hpp"

namespace yolo_io {

Built build_route(Options& o, Ctx& ctx, LayerInfo& L) {
    const CfgOption* layers = o.find("layers");
    if (!layers) {
        o.fail("has no layers= (darknet: \"Route Layer must specify input layers\")");
    }
    L.inputs = index_list(o, ctx, "layers", layers->value);
    i64 groups = o.i("groups", 1);
    i64 group_id = o.i("group_id", 0);
    o.mark({"stream", "wait_stream"});
    if (groups < 1) {
        o.fail_at("groups", "has groups=" + std::to_string(groups) + "; it must be at least 1");
    }
    if (group_id < 0 || group_id >= groups) {
        o.fail_at("group_id", "has group_id=" + std::to_string(group_id) + " outside 0.." +
                                  std::to_string(groups - 1));
    }
    const Shape3& first = ctx.record_out[static_cast<std::size_t>(L.inputs[0])];
    Shape3 out = first;
    i64 outputs = 0;
    std::vector<i64> input_layers;
    std::vector<std::array<i64, 2>> slices;
    L.input_shapes.clear();
    for (std::size_t k = 0; k < L.inputs.size(); ++k) {
        auto idx = static_cast<std::size_t>(L.inputs[k]);
        const Shape3& next = ctx.record_out[idx];
        outputs = sat_add(outputs, ctx.record_outputs[idx]);
        L.input_shapes.push_back(next);
        input_layers.push_back(L.inputs[k]);
        const i64 part = next.c / groups;
        slices.push_back({part * group_id, part * (group_id + 1)});
        if (k == 0) continue;
        if (next.w != first.w || next.h != first.h) {
            o.fail_at("layers", "concatenates layer " + std::to_string(L.inputs[0]) + " (" +
                                    shape_str(first) + ") with layer " +
                                    std::to_string(L.inputs[k]) + " (" + shape_str(next) +
                                    "), whose width and height differ");
        }
        out.c = sat_add(out.c, next.c);
    }
    // Each input holds at most kMaxFloats values, but a list of them can
    // add up past what int64 holds: refused before the division by groups
    // could bring a saturated sum back into range.
    if (outputs > kMaxFloats || out.c > kMaxFloats) {
        o.fail_at("layers", "concatenates " + std::to_string(L.inputs.size()) +
                                " layers whose outputs add up to more values than yolo_io "
                                "addresses (2^56)");
    }
    for (std::size_t k = 0; k < L.inputs.size(); ++k) {
        const Shape3& in = L.input_shapes[k];
        if (in.c % groups != 0) {
            // forward_route_layer() copies outputs/groups values from offset
            // outputs/groups*group_id: not a whole number of channels here.
            o.fail_at("groups", "has groups=" + std::to_string(groups) + ", which does not divide "
                                "the " + std::to_string(in.c) + " channels of layer " +
                                std::to_string(L.inputs[k]) + " (" + shape_str(in) + ")");
        }
    }
    out.c /= groups;
    L.output_shape = out;
    attr(ctx, "input_layers", std::move(input_layers));
    attr(ctx, "groups", groups);
    attr(ctx, "group_id", group_id);
    attr(ctx, "channel_slices", std::move(slices));
    return {out, outputs / groups};
}

Built build_shortcut(Options& o, Ctx& ctx, LayerInfo& L) {
    L.activation = activation(o, ctx, "activation", "linear");
    std::string_view wt = o.s("weights_type", "none");
    std::string_view weights_type = "none";
    if (wt == "per_feature" || wt == "per_layer") {
        weights_type = "per_feature";
    } else if (wt == "per_channel") {
        weights_type = "per_channel";
    } else if (wt != "none") {
        o.fail_at("weights_type", "has weights_type=" + printable(wt) +
                                      "; darknet accepts none, per_feature, per_channel");
    }
    std::string_view wn = o.s("weights_normalization", "none");
    std::string_view weights_normalization = "none";
    if (wn == "relu" || wn == "avg_relu") {
        weights_normalization = "relu";
    } else if (wn == "softmax") {
        weights_normalization = "softmax";
    } else if (wt != "none") {
        o.fail_at("weights_normalization",
                  "has weights_normalization=" + printable(wn) +
                      "; with weights_type set darknet accepts only relu, avg_relu or softmax");
    }
    const CfgOption* from = o.find("from");
    if (!from) {
        o.fail("has no from= (darknet crashes here)");
    }
    std::vector<int> froms = index_list(o, ctx, "from", from->value);
    L.input_shapes = {ctx.in};
    for (int idx : froms) {
        const Shape3& f = ctx.record_out[static_cast<std::size_t>(idx)];
        L.input_shapes.push_back(f);
        if (f.w != ctx.in.w || f.h != ctx.in.h) {
            // [A] asserts; [P]'s shortcut_cpu() samples the larger input with
            // a stride (pjreddie's resnet50.cfg relies on it). Keep going.
            add_diagnostic(ctx.diagnostics, o.line_of("from"),
                           "[shortcut] adds layer " + std::to_string(idx) + " (" + shape_str(f) +
                               ") to its input " + shape_str(ctx.in) +
                               ": width and height differ, which AlexeyAB darknet rejects and "
                               "pjreddie darknet samples with a stride");
        }
    }
    L.inputs.clear();
    L.inputs.push_back(ctx.index - 1);
    L.inputs.insert(L.inputs.end(), froms.begin(), froms.end());
    i64 m = static_cast<i64>(froms.size());
    if (weights_type == "per_feature") {
        add_param(L, {}, "weights", {m + 1}, m + 1);
    } else if (weights_type == "per_channel") {
        add_param(L, {}, "weights", {m + 1, ctx.in.c}, mul(o, {m + 1, ctx.in.c}));
    }
    L.output_shape = ctx.in;
    attr(ctx, "input_layers", std::vector<i64>(froms.begin(), froms.end()));
    attr(ctx, "weights_type", weights_type);
    attr(ctx, "weights_normalization", weights_normalization);
    attr(ctx, "activation", L.activation);
    return {ctx.in, ctx.in.size()};
}

Built build_from_layer(Options& o, Ctx& ctx, LayerInfo& L) {
    const bool sam = ctx.kind == Kind::sam;
    const CfgOption* from = o.find("from");
    if (!from) {
        o.fail("has no from= (darknet crashes here)");
    }
    auto idx = static_cast<int>(resolve_index(o, ctx, "from", o.int_value("from", from->value)));
    i64 scale_wh = sam ? 0 : o.i("scale_wh", 0);
    L.activation = activation(o, ctx, "activation", "linear");
    const Shape3& f = ctx.record_out[static_cast<std::size_t>(idx)];
    const Shape3& p = ctx.in;
    bool ok = true;
    if (sam) {
        ok = f.c == p.c;
    } else if (!scale_wh) {
        ok = p.w == 1 && p.h == 1 && f.c == p.c;
    } else {
        ok = p.c == 1 && f.w == p.w && f.h == p.h;
    }
    if (!ok) {
        o.fail_at("from", "combines its input " + shape_str(p) + " with layer " +
                              std::to_string(idx) + " (" + shape_str(f) +
                              "), whose shapes do not fit (darknet asserts)");
    }
    L.inputs = {ctx.index - 1, idx};
    L.input_shapes = {ctx.in, f};
    L.output_shape = f;
    attr(ctx, "from_layer", i64{idx});
    if (!sam) {
        attr(ctx, "scale_wh", scale_wh != 0);
    }
    attr(ctx, "activation", L.activation);
    return {f, f.size()};
}

Built build_upsample(Options& o, Ctx& ctx, LayerInfo& L) {
    i64 stride = o.i("stride", 2);
    double scale = o.f("scale", 1);
    if (stride == 0) {
        o.fail_at("stride", "has stride=0");
    }
    Shape3 out = stride > 0 ? Shape3{ctx.in.c, sat_mul(ctx.in.h, stride), sat_mul(ctx.in.w, stride)}
                            : Shape3{ctx.in.c, ctx.in.h / -stride, ctx.in.w / -stride};
    need_output(o, ctx, out);
    L.output_shape = out;
    // make_upsample_layer(): a negative stride downsamples (l.reverse).
    attr(ctx, "stride", stride > 0 ? stride : -stride);
    attr(ctx, "reverse", stride < 0);
    attr(ctx, "scale", scale);
    return {out, out.size()};
}

Built build_reorg(Options& o, Ctx& ctx, LayerInfo& L) {
    i64 stride = o.i("stride", 1);
    i64 reverse = o.i("reverse", 0);
    need_positive(o, "stride", stride);
    const i64 s2 = sat_mul(stride, stride);
    Shape3 out = reverse ? Shape3{ctx.in.c / s2, sat_mul(ctx.in.h, stride), sat_mul(ctx.in.w, stride)}
                         : Shape3{sat_mul(ctx.in.c, s2), ctx.in.h / stride, ctx.in.w / stride};
    need_output(o, ctx, out);
    L.output_shape = out;
    attr(ctx, "stride", stride);
    attr(ctx, "reverse", reverse != 0);
    return {out, out.size()};
}

}  // namespace yolo_io
