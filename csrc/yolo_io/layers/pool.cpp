// Pooling: [maxpool], [local_avgpool] ([A] parse_maxpool(),
// parse_local_avgpool()) and the global [avgpool].
#include <algorithm>

#include "yolo_io/layers/layers.hpp"

namespace yolo_io {

Built build_pool(Options& o, Ctx& ctx, LayerInfo& L) {
    const bool is_max = ctx.kind == Kind::maxpool;
    i64 stride = o.i("stride", 1);
    i64 stride_x = o.i("stride_x", stride);
    i64 stride_y = o.i("stride_y", stride);
    i64 size = o.i("size", stride);
    i64 padding = o.i("padding", sat_sub(size, 1));
    i64 depth = 0, out_channels = 1, antialiasing = 0;
    if (is_max) {
        depth = o.i("maxpool_depth", 0);
        out_channels = o.i("out_channels", 1);
        antialiasing = o.i("antialiasing", 0);
        o.mark({"maxpool_zero_nonmax"});
    }
    need_image(o, ctx, is_max ? "maxpool" : "local_avgpool");
    need_positive(o, "stride", std::min(stride_x, stride_y));
    need_positive(o, "size", size);
    // forward_maxpool_layer() starts its windows at -padding/2: a negative
    // padding crops the input, which no framework's pooling does.
    need_at_least(o, "padding", padding, 0);
    if (depth) need_positive(o, "out_channels", out_channels);
    Shape3 out;
    if (depth) {
        out = {out_channels, ctx.in.h, ctx.in.w};
    } else {
        i64 sx = antialiasing ? 1 : stride_x;
        i64 sy = antialiasing ? 1 : stride_y;
        const i64 span_h = window_span(ctx.in.h, padding, size);
        const i64 span_w = window_span(ctx.in.w, padding, size);
        out = {ctx.in.c, window_out(span_h, sy), window_out(span_w, sx)};
        if (span_h < 0 || span_w < 0) {
            o.fail("has size=" + std::to_string(size) + " larger than its padded input " +
                   shape_str(ctx.in) + " (padding " + std::to_string(padding) + ")");
        }
    }
    L.output_shape = antialiasing ? blur_out(out, antialiasing, stride_x, stride_y) : out;
    attr(ctx, "size", size);
    attr(ctx, "stride_x", stride_x);
    attr(ctx, "stride_y", stride_y);
    // l.pad is the total padding of each axis; forward_maxpool_layer() starts
    // its windows at -pad/2, so pad/2 goes before and the rest after.
    attr(ctx, "pad", padding);
    attr(ctx, "pad_before", padding / 2);
    attr(ctx, "pad_after", padding - padding / 2);
    attr(ctx, "maxpool_depth", depth != 0);
    attr(ctx, "out_channels", out_channels);
    attr(ctx, "antialiasing", antialiasing);
    return {out, out.size()};
}

Built build_avgpool(Options&, Ctx& ctx, LayerInfo& L) {
    L.output_shape = {ctx.in.c, 1, 1};
    return {L.output_shape, ctx.in.c};
}

}  // namespace yolo_io
