// Layer model: defaults, shapes and parameter plans of every darknet section.
// Reference: AlexeyAB/darknet src/parser.c and src/*_layer.c (spec sections
// 2, 3 and 5); each builder follows the parse_*() function of the same name.
#include "yolo_io/model.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <string_view>

#include "yolo_io/errors.hpp"

namespace yolo_io {

namespace {

using i64 = std::int64_t;

// Keys darknet reads for every layer (parse_network_cfg_custom).
constexpr std::array<std::string_view, 9> kCommonKeys = {
    "clip",          "onlyforward", "dont_update",    "burnin_update", "stopbackward",
    "train_only_bn", "dontload",    "dontloadscales", "learning_rate"};

// Training-only keys of [net] (parse_net_options); read so that they are not
// reported as unused.
constexpr std::array<std::string_view, 76> kNetKeys = {
    "max_batches", "batch", "learning_rate", "learning_rate_min", "sgdr_cycle", "sgdr_mult",
    "momentum", "decay", "subdivisions", "time_steps", "track", "augment_speed",
    "sequential_subdivisions", "try_fix_nan", "weights_reject_freq", "equidistant_point",
    "badlabels_rejection_percentage", "num_sigmas_reject_badlabels", "ema_alpha",
    "use_cuda_graph", "loss_scale", "dynamic_minibatch", "optimized_memory",
    "workspace_size_limit_MB", "adam", "B1", "B2", "eps", "height", "width", "channels",
    "inputs", "max_crop", "min_crop", "flip", "blur", "gaussian_noise", "mixup", "cutmix",
    "mosaic", "letter_box", "mosaic_bound", "contrastive", "contrastive_jit_flip",
    "contrastive_color", "unsupervised", "label_smooth_eps", "resize_step", "attention",
    "adversarial_lr", "max_chart_loss", "angle", "aspect", "saturation", "exposure", "hue",
    "power", "policy", "burn_in", "step", "scale", "steps", "scales", "seq_scales", "gamma",
    "show_receptive_field", "stopbackward", "clip", "onlyforward", "dont_update",
    "burnin_update", "train_only_bn", "dontload", "dontloadscales", "min_crop", "max_crop"};

// Training-only keys of the detection heads (parse_yolo(), parse_gaussian_yolo(),
// parse_region(), parse_detection()), read so they are not reported as unused.
constexpr std::array<std::string_view, 33> kYoloKeys = {
    "max", "show_details", "max_delta", "counters_per_class", "label_smooth_eps", "scale_x_y",
    "objectness_smooth", "new_coords", "iou_normalizer", "obj_normalizer", "cls_normalizer",
    "delta_normalizer", "iou_loss", "iou_thresh_kind", "beta_nms", "nms_kind", "jitter",
    "resize", "focal_loss", "ignore_thresh", "truth_thresh", "iou_thresh", "random",
    "track_history_size", "sim_thresh", "dets_for_track", "dets_for_show", "track_ciou_norm",
    "embedding_layer", "map", "anchors", "num", "classes"};
constexpr std::array<std::string_view, 25> kGaussianKeys = {
    "max", "max_delta", "counters_per_class", "label_smooth_eps", "scale_x_y",
    "objectness_smooth", "uc_normalizer", "iou_normalizer", "obj_normalizer", "cls_normalizer",
    "delta_normalizer", "iou_loss", "iou_thresh_kind", "beta_nms", "nms_kind", "yolo_point",
    "jitter", "resize", "ignore_thresh", "truth_thresh", "iou_thresh", "random", "map",
    "anchors", "num"};
constexpr std::array<std::string_view, 21> kRegionKeys = {
    "max", "log", "sqrt", "focal_loss", "jitter", "resize", "rescore", "thresh", "classfix",
    "absolute", "random", "coord_scale", "object_scale", "noobject_scale", "mask_scale",
    "class_scale", "bias_match", "tree", "map", "anchors", "softmax"};
constexpr std::array<std::string_view, 13> kDetectionKeys = {
    "rescore", "softmax", "sqrt", "max", "coord_scale", "forced", "object_scale",
    "noobject_scale", "class_scale", "jitter", "resize", "random", "reorg"};

// activations.c:get_activation(); anything else becomes relu.
constexpr std::array<std::string_view, 23> kActivations = {
    "logistic", "swish", "mish", "hard_mish", "normalize_channels",
    "normalize_channels_softmax", "normalize_channels_softmax_maxval", "loggy", "relu",
    "relu6", "elu", "selu", "gelu", "relie", "plse", "hardtan", "lhtan", "linear", "ramp",
    "revleaky", "leaky", "tanh", "stair"};

struct TypeName {
    std::string_view section;
    std::string_view canonical;
};

// parser.c:string_to_layer_type() of [A], plus the [P]-only sections
// ([deconvolutional], [logistic], [l2norm], [iseg]).
constexpr std::array<TypeName, 48> kTypes = {{
    {"[shortcut]", "shortcut"},
    {"[scale_channels]", "scale_channels"},
    {"[sam]", "sam"},
    {"[crop]", "crop"},
    {"[cost]", "cost"},
    {"[detection]", "detection"},
    {"[region]", "region"},
    {"[yolo]", "yolo"},
    {"[Gaussian_yolo]", "Gaussian_yolo"},
    {"[local]", "local"},
    {"[conv]", "convolutional"},
    {"[convolutional]", "convolutional"},
    {"[deconv]", "deconvolutional"},
    {"[deconvolutional]", "deconvolutional"},
    {"[activation]", "activation"},
    {"[net]", "net"},
    {"[network]", "net"},
    {"[crnn]", "crnn"},
    {"[gru]", "gru"},
    {"[lstm]", "lstm"},
    {"[conv_lstm]", "conv_lstm"},
    {"[history]", "history"},
    {"[rnn]", "rnn"},
    {"[conn]", "connected"},
    {"[connected]", "connected"},
    {"[max]", "maxpool"},
    {"[maxpool]", "maxpool"},
    {"[local_avg]", "local_avgpool"},
    {"[local_avgpool]", "local_avgpool"},
    {"[reorg3d]", "reorg3d"},
    {"[reorg]", "reorg"},
    {"[avg]", "avgpool"},
    {"[avgpool]", "avgpool"},
    {"[dropout]", "dropout"},
    {"[lrn]", "normalization"},
    {"[normalization]", "normalization"},
    {"[batchnorm]", "batchnorm"},
    {"[soft]", "softmax"},
    {"[softmax]", "softmax"},
    {"[contrastive]", "contrastive"},
    {"[route]", "route"},
    {"[upsample]", "upsample"},
    {"[empty]", "empty"},
    {"[silence]", "empty"},
    {"[implicit]", "implicit"},
    {"[logistic]", "logistic"},
    {"[l2norm]", "l2norm"},
    {"[iseg]", "iseg"},
}};

std::string_view lookup_type(std::string_view section) {
    for (const auto& t : kTypes) {
        // Compare the second character first: cheap, and rejects most entries.
        if (t.section.size() == section.size() && t.section[1] == section[1] &&
            t.section == section) {
            return t.canonical;
        }
    }
    return {};
}

constexpr i64 kMaxFloats = i64{1} << 56;

// Option reader over one section with darknet's lookup rules: the first copy
// of a key wins (a copy without '=' reads as absent), every lookup marks it.
class Options {
  public:
    Options(const CfgSection& section, const std::string& path, std::string_view type)
        : section_(section), path_(path), type_(type) {
        used_.fill(false);
        if (section.options.size() > used_.size()) {
            overflow_.assign(section.options.size(), false);
        }
    }

    const CfgOption* find(std::string_view key) {
        for (std::size_t i = 0; i < section_.options.size(); ++i) {
            if (section_.options[i].key == key) {
                set_used(i);
                return section_.options[i].has_value ? &section_.options[i] : nullptr;
            }
        }
        return nullptr;
    }
    i64 i(std::string_view key, i64 def) {
        const CfgOption* o = find(key);
        return o ? c_atoi(o->value) : def;
    }
    double f(std::string_view key, double def) {
        const CfgOption* o = find(key);
        return o ? c_atof(o->value) : def;
    }
    std::string s(std::string_view key, std::string_view def) {
        const CfgOption* o = find(key);
        return std::string(o ? o->value : def);
    }
    template <std::size_t N>
    void mark(const std::array<std::string_view, N>& keys) {
        for (auto k : keys) {
            find(k);
        }
    }
    void mark(std::initializer_list<std::string_view> keys) {
        for (auto k : keys) {
            find(k);
        }
    }
    int line_of(std::string_view key) const {
        for (const auto& o : section_.options) {
            if (o.key == key) {
                return o.line;
            }
        }
        return section_.line;
    }

    [[noreturn]] void fail(const std::string& message, int line = 0) const {
        int at = line ? line : section_.line;
        throw CfgError(path_ + ":" + std::to_string(at) + ": " + std::string(section_.name) +
                           " " + message,
                       path_, at);
    }
    [[noreturn]] void fail_at(std::string_view key, const std::string& message) const {
        fail(message, line_of(key));
    }

    // Unused options, reported as darknet's option_unused() does.
    void report_unused(std::vector<Diagnostic>& out) const {
        for (std::size_t i = 0; i < section_.options.size(); ++i) {
            if (!is_used(i)) {
                const auto& o = section_.options[i];
                out.push_back({o.line, "unused option '" + std::string(o.key) +
                                           (o.has_value ? "=" + std::string(o.value) : "") +
                                           "' in " + std::string(section_.name) +
                                           " (darknet ignores it)"});
            }
        }
    }

    std::string_view type() const { return type_; }
    const CfgSection& section() const { return section_; }

  private:
    void set_used(std::size_t i) {
        if (overflow_.empty()) {
            used_[i] = true;
        } else {
            overflow_[i] = true;
        }
    }
    bool is_used(std::size_t i) const { return overflow_.empty() ? used_[i] : overflow_[i]; }

    const CfgSection& section_;
    const std::string& path_;
    std::string_view type_;
    std::array<bool, 64> used_{};
    std::vector<bool> overflow_;  // sections with more than 64 options
};

i64 mul(const Options& o, std::initializer_list<i64> factors) {
    i64 r = 1;
    for (i64 f : factors) {
        if (f < 0) {
            o.fail("has a negative size (" + std::to_string(f) + ")");
        }
        if (f != 0 && r > kMaxFloats / f) {
            o.fail("is too large: its parameter or output count overflows");
        }
        r *= f;
    }
    return r;
}

std::string shape_str(const Shape3& s) {
    return std::to_string(s.c) + "x" + std::to_string(s.h) + "x" + std::to_string(s.w);
}

struct Ctx {
    int index;
    Shape3 in;       // params.c/h/w: the previous layer's output
    i64 inputs;      // params.inputs
    const std::vector<LayerInfo>& layers;
    // darknet's l.out_* / l.outputs of earlier layers: what [route] and
    // [shortcut] see (differs from output_shape only for antialiasing).
    const std::vector<Shape3>& record_out;
    const std::vector<i64>& record_outputs;
    std::vector<Diagnostic>& diagnostics;
};

struct Built {
    Shape3 record_out;   // l.out_w/h/c
    i64 record_outputs;  // l.outputs
};

void add_param(LayerInfo& L, std::string_view prefix, std::string_view base,
               std::initializer_list<i64> shape, i64 count,
               std::initializer_list<i64> strides = {}, bool legacy_transpose = false) {
    ParamSpec p;
    p.prefix = prefix;
    p.base = base;
    p.ndim = static_cast<int>(shape.size());
    std::copy(shape.begin(), shape.end(), p.shape.begin());
    p.strided = strides.size() != 0;
    std::copy(strides.begin(), strides.end(), p.strides.begin());
    p.offset = L.nfloats;
    p.count = count;
    p.legacy_transpose = legacy_transpose;
    L.nfloats += count;
    L.params.push_back(p);
}

// scales, rolling_mean, rolling_variance: n each.
void bn_params(LayerInfo& L, std::string_view prefix, i64 n) {
    add_param(L, prefix, "scales", {n}, n);
    add_param(L, prefix, "rolling_mean", {n}, n);
    add_param(L, prefix, "rolling_variance", {n}, n);
}

// load_convolutional_weights(): biases, [scales, rolling_mean,
// rolling_variance], weights (n, c/groups, size, size).
void conv_block(const Options& o, LayerInfo& L, std::string_view prefix, i64 n, i64 c,
                i64 groups, i64 size, bool bn, bool flipped) {
    i64 cg = c / groups;
    add_param(L, prefix, "biases", {n}, n);
    if (bn) {
        bn_params(L, prefix, n);
    }
    i64 count = mul(o, {cg, n, size, size});
    if (flipped) {
        // The file holds [K][n] (K = c/groups*size*size); view it as OIHW.
        add_param(L, prefix, "weights", {n, cg, size, size}, count,
                  {1, size * size * n, size * n, n});
    } else {
        add_param(L, prefix, "weights", {n, cg, size, size}, count);
    }
}

// load_connected_weights(): biases, weights (outputs, inputs), then BN.
void connected_block(const Options& o, LayerInfo& L, std::string_view prefix, i64 inputs,
                     i64 outputs, bool bn) {
    add_param(L, prefix, "biases", {outputs}, outputs);
    add_param(L, prefix, "weights", {outputs, inputs}, mul(o, {outputs, inputs}), {},
              true);
    if (bn) {
        bn_params(L, prefix, outputs);
    }
}

std::string_view activation(Options& o, Ctx& ctx, std::string_view key, std::string_view def) {
    std::string name = o.s(key, def);
    for (auto a : kActivations) {
        if (a == name) {
            return a;
        }
    }
    ctx.diagnostics.push_back({o.line_of(key), "activation '" + name + "' in " +
                                                   std::string(o.section().name) +
                                                   " is unknown to darknet, which uses relu"});
    return "relu";
}

void need_image(const Options& o, const Ctx& ctx, std::string_view what) {
    // darknet leaves out_w/h/c of [softmax], [cost] and [detection] at 0 (we
    // report their input shape, which is what they compute on).
    if (ctx.index > 0) {
        std::string_view prev = ctx.layers[static_cast<std::size_t>(ctx.index - 1)].type;
        if (prev == "softmax" || prev == "cost" || prev == "detection") {
            o.fail("needs an image input, but the layer before it is [" + std::string(prev) +
                   "], whose output darknet leaves without width, height and channels");
        }
    }
    if (!(ctx.in.c && ctx.in.h && ctx.in.w)) {
        o.fail("needs an image input, but the layer before it outputs " + shape_str(ctx.in) +
               " (darknet: \"Layer before " + std::string(what) +
               " layer must output image.\")");
    }
}

void need_positive(const Options& o, std::string_view key, i64 v) {
    if (v < 1) {
        o.fail_at(key, "has " + std::string(key) + "=" + std::to_string(v) +
                           "; it must be at least 1");
    }
}

i64 resolve_index(const Options& o, const Ctx& ctx, std::string_view key, i64 raw) {
    i64 idx = raw < 0 ? ctx.index + raw : raw;
    if (idx < 0 || idx >= ctx.index) {
        o.fail_at(key, "has " + std::string(key) + " referring to layer " + std::to_string(raw) +
                           " -> " + std::to_string(idx) + ", but only layers 0.." +
                           std::to_string(ctx.index - 1) + " come before layer " +
                           std::to_string(ctx.index));
    }
    return idx;
}

// parse_route()/parse_shortcut() list rule: 1 + number of commas elements,
// each atoi() of the text after the previous comma.
std::vector<int> index_list(const Options& o, const Ctx& ctx, std::string_view key,
                            std::string_view value) {
    std::vector<int> out;
    std::size_t pos = 0;
    while (true) {
        std::size_t comma = value.find(',', pos);
        std::string_view part =
            value.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
        out.push_back(static_cast<int>(resolve_index(o, ctx, key, c_atoi(part))));
        if (comma == std::string_view::npos) {
            break;
        }
        pos = comma + 1;
    }
    return out;
}

// [yolo]/[Gaussian_yolo] mask: commas counted up to the first '#'.
i64 mask_count(std::string_view value) {
    i64 n = 1;
    for (char ch : value) {
        if (ch == '#') {
            break;
        }
        if (ch == ',') {
            ++n;
        }
    }
    return n;
}

Shape3 blur_out(const Shape3& host, i64 mode, i64 stride_x, i64 stride_y) {
    i64 size = mode == 2 ? 2 : 3;
    i64 pad = mode == 2 ? 0 : 1;
    return {host.c, (host.h + 2 * pad - size) / stride_y + 1,
            (host.w + 2 * pad - size) / stride_x + 1};
}

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
    o.i("dilation", 1);
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
    o.i("binary", 0);
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
    need_positive(o, "size", size);
    need_positive(o, stride_x == stride_y ? "stride" : "stride_x", std::min(stride_x, stride_y));
    i64 sx = antialiasing ? 1 : stride_x;
    i64 sy = antialiasing ? 1 : stride_y;
    Shape3 out{n, (ctx.in.h + 2 * padding - size) / sy + 1, (ctx.in.w + 2 * padding - size) / sx + 1};
    if (ctx.in.h + 2 * padding - size < 0 || ctx.in.w + 2 * padding - size < 0) {
        o.fail("has size=" + std::to_string(size) + " larger than its padded input " +
               shape_str(ctx.in) + " (padding " + std::to_string(padding) + ")");
    }
    L.input_shape = ctx.in;
    L.output_shape = antialiasing ? blur_out(out, antialiasing, stride_x, stride_y) : out;

    if (share_raw != -1000000000) {
        i64 idx = resolve_index(o, ctx, "share_index", share_raw);
        const LayerInfo& other = ctx.layers[static_cast<std::size_t>(idx)];
        L.share_index = static_cast<int>(idx);
        // make_convolutional_layer(): size, nweights, c and n must match.
        const ParamSpec* w = nullptr;
        for (const auto& p : other.params) {
            if (p.base == "weights" && p.prefix.empty()) w = &p;
        }
        bool ok = other.type == "convolutional" && w != nullptr && w->shape[2] == size &&
                  w->shape[0] == n && other.input_shape.c == ctx.in.c &&
                  w->count == (ctx.in.c / groups) * n * size * size;
        if (other.type == "convolutional" && other.share_index >= 0) {
            ok = other.input_shape.c == ctx.in.c && other.output_shape.c == n;
        }
        if (!ok) {
            o.fail_at("share_index", "shares the weights of layer " + std::to_string(idx) + " (" +
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
    Shape3 out{n, sat_mul(ctx.in.h - 1, stride) + size - 2 * padding,
               sat_mul(ctx.in.w - 1, stride) + size - 2 * padding};
    add_param(L, {}, "biases", {n}, n);
    if (bn) {
        bn_params(L, {}, n);
    }
    add_param(L, {}, "weights", {ctx.in.c, n, size, size}, mul(o, {ctx.in.c, n, size, size}));
    L.output_shape = out;
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
    i64 oh = (ctx.in.h - (pad ? 1 : size)) / stride + 1;
    i64 ow = (ctx.in.w - (pad ? 1 : size)) / stride + 1;
    Shape3 out{n, oh, ow};
    if (oh < 1 || ow < 1) {
        o.fail("has an empty output " + shape_str(out) + " for input " + shape_str(ctx.in));
    }
    i64 locations = mul(o, {oh, ow});
    add_param(L, {}, "biases", {n, oh, ow}, mul(o, {n, oh, ow}));
    add_param(L, {}, "weights", {locations, n, ctx.in.c, size, size},
              mul(o, {locations, n, ctx.in.c, size, size}));
    L.output_shape = out;
    return {out, out.size()};
}

Built build_pool(Options& o, Ctx& ctx, LayerInfo& L, bool is_max) {
    i64 stride = o.i("stride", 1);
    i64 stride_x = o.i("stride_x", stride);
    i64 stride_y = o.i("stride_y", stride);
    i64 size = o.i("size", stride);
    i64 padding = o.i("padding", size - 1);
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
    Shape3 out;
    if (depth) {
        out = {out_channels, ctx.in.h, ctx.in.w};
    } else {
        i64 sx = antialiasing ? 1 : stride_x;
        i64 sy = antialiasing ? 1 : stride_y;
        out = {ctx.in.c, (ctx.in.h + padding - size) / sy + 1,
               (ctx.in.w + padding - size) / sx + 1};
    }
    L.output_shape = antialiasing ? blur_out(out, antialiasing, stride_x, stride_y) : out;
    return {out, out.size()};
}

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
    for (std::size_t k = 0; k < L.inputs.size(); ++k) {
        auto idx = static_cast<std::size_t>(L.inputs[k]);
        const Shape3& next = ctx.record_out[idx];
        outputs += ctx.record_outputs[idx];
        if (k == 0) continue;
        if (next.w != first.w || next.h != first.h) {
            o.fail_at("layers", "concatenates layer " + std::to_string(L.inputs[0]) + " (" +
                                    shape_str(first) + ") with layer " +
                                    std::to_string(L.inputs[k]) + " (" + shape_str(next) +
                                    "), whose width and height differ");
        }
        out.c += next.c;
    }
    out.c /= groups;
    L.output_shape = out;
    return {out, outputs / groups};
}

Built build_shortcut(Options& o, Ctx& ctx, LayerInfo& L) {
    L.activation = activation(o, ctx, "activation", "linear");
    std::string wt = o.s("weights_type", "none");
    i64 per = 0;  // 0 none, 1 per_feature, 2 per_channel
    if (wt == "per_feature" || wt == "per_layer") {
        per = 1;
    } else if (wt == "per_channel") {
        per = 2;
    } else if (wt != "none") {
        o.fail_at("weights_type", "has weights_type=" + wt +
                                      "; darknet accepts none, per_feature, per_channel");
    }
    std::string wn = o.s("weights_normalization", "none");
    if (!(wn == "relu" || wn == "avg_relu" || wn == "softmax") && wt != "none") {
        o.fail_at("weights_normalization",
                  "has weights_normalization=" + wn +
                      "; with weights_type set darknet accepts only relu, avg_relu or softmax");
    }
    const CfgOption* from = o.find("from");
    if (!from) {
        o.fail("has no from= (darknet crashes here)");
    }
    std::vector<int> froms = index_list(o, ctx, "from", from->value);
    for (int idx : froms) {
        const Shape3& f = ctx.record_out[static_cast<std::size_t>(idx)];
        if (f.w != ctx.in.w || f.h != ctx.in.h) {
            // [A] asserts; [P]'s shortcut_cpu() samples the larger input with
            // a stride (pjreddie's resnet50.cfg relies on it). Keep going.
            ctx.diagnostics.push_back(
                {o.line_of("from"), "[shortcut] adds layer " + std::to_string(idx) + " (" +
                                        shape_str(f) + ") to its input " + shape_str(ctx.in) +
                                        ": width and height differ, which AlexeyAB darknet "
                                        "rejects and pjreddie darknet samples with a stride"});
        }
    }
    L.inputs.clear();
    L.inputs.push_back(ctx.index - 1);
    L.inputs.insert(L.inputs.end(), froms.begin(), froms.end());
    i64 m = static_cast<i64>(froms.size());
    if (per == 1) {
        add_param(L, {}, "weights", {m + 1}, m + 1);
    } else if (per == 2) {
        add_param(L, {}, "weights", {m + 1, ctx.in.c}, mul(o, {m + 1, ctx.in.c}));
    }
    L.output_shape = ctx.in;
    return {ctx.in, ctx.in.size()};
}

Built build_from_layer(Options& o, Ctx& ctx, LayerInfo& L, bool sam) {
    const CfgOption* from = o.find("from");
    if (!from) {
        o.fail("has no from= (darknet crashes here)");
    }
    auto idx = static_cast<int>(resolve_index(o, ctx, "from", c_atoi(from->value)));
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
    L.output_shape = f;
    return {f, f.size()};
}

Built build_upsample(Options& o, Ctx& ctx, LayerInfo& L) {
    i64 stride = o.i("stride", 2);
    o.f("scale", 1);
    if (stride == 0) {
        o.fail_at("stride", "has stride=0");
    }
    Shape3 out = stride > 0 ? Shape3{ctx.in.c, sat_mul(ctx.in.h, stride), sat_mul(ctx.in.w, stride)}
                            : Shape3{ctx.in.c, ctx.in.h / -stride, ctx.in.w / -stride};
    L.output_shape = out;
    return {out, out.size()};
}

Built build_reorg(Options& o, Ctx& ctx, LayerInfo& L) {
    i64 stride = o.i("stride", 1);
    i64 reverse = o.i("reverse", 0);
    need_positive(o, "stride", stride);
    const i64 s2 = sat_mul(stride, stride);
    Shape3 out = reverse ? Shape3{ctx.in.c / s2, sat_mul(ctx.in.h, stride), sat_mul(ctx.in.w, stride)}
                         : Shape3{sat_mul(ctx.in.c, s2), ctx.in.h / stride, ctx.in.w / stride};
    L.output_shape = out;
    return {out, out.size()};
}

Built build_head(Options& o, Ctx& ctx, LayerInfo& L) {
    std::string_view t = o.type();
    i64 expected = 0;
    std::string why;
    if (t == "yolo" || t == "Gaussian_yolo") {
        i64 classes = o.i("classes", 20);
        i64 total = o.i("num", 1);
        i64 n = total;
        if (const CfgOption* mask = o.find("mask")) {
            n = mask_count(mask->value);
        }
        i64 per = t == "yolo" ? 5 : 9;
        expected = sat_mul(sat_mul(sat_mul(ctx.in.h, ctx.in.w), n), classes + per);
        why = std::to_string(n) + " anchors in mask x (classes=" + std::to_string(classes) + " + " +
              std::to_string(per) + ") = " + std::to_string(n * (classes + per)) + " channels";
    } else if (t == "region") {
        i64 coords = o.i("coords", 4);
        i64 classes = o.i("classes", 20);
        i64 num = o.i("num", 1);
        o.i("softmax", 0);
        expected = sat_mul(sat_mul(sat_mul(ctx.in.h, ctx.in.w), num), classes + coords + 1);
        why = "num=" + std::to_string(num) + " x (classes=" + std::to_string(classes) +
              " + coords=" + std::to_string(coords) + " + 1) = " +
              std::to_string(num * (classes + coords + 1)) + " channels";
    } else {  // detection
        i64 coords = o.i("coords", 1);
        i64 classes = o.i("classes", 1);
        i64 num = o.i("num", 1);
        i64 side = o.i("side", 7);
        expected = sat_mul(sat_mul(side, side), sat_mul(1 + coords, num) + classes);
        why = "side^2 x ((1 + coords) x num + classes) = " + std::to_string(expected) + " values";
    }
    if (t == "yolo") {
        o.mark(kYoloKeys);
    } else if (t == "Gaussian_yolo") {
        o.mark(kGaussianKeys);
    } else if (t == "region") {
        o.mark(kRegionKeys);
    } else {
        o.mark(kDetectionKeys);
    }
    if (expected != ctx.inputs) {
        std::string prev;
        if (ctx.index > 0) {
            const LayerInfo& p = ctx.layers[static_cast<std::size_t>(ctx.index - 1)];
            prev = "; its input, layer " + std::to_string(p.index) + " (" + std::string(p.type) +
                   ", line " +
                   std::to_string(p.line) + "), outputs " + shape_str(p.output_shape);
            if (p.type == "convolutional" && t != "detection") {
                i64 hw = sat_mul(ctx.in.h, ctx.in.w);
                prev += ": set filters=" + std::to_string(hw ? expected / hw : 0) + " there";
            }
        }
        o.fail("expects " + why + prev +
               " (darknet: \"filters= in the [convolutional]-layer doesn't correspond to "
               "classes= or mask=\")");
    }
    L.output_shape = ctx.in;
    return {ctx.in, ctx.inputs};
}

Built build_recurrent_fc(Options& o, Ctx& ctx, LayerInfo& L) {
    std::string_view t = o.type();
    i64 output = o.i("output", 1);
    need_positive(o, "output", output);
    if (ctx.inputs < 1) {
        o.fail("has no input: the layer before it outputs nothing");
    }
    i64 in = ctx.inputs;
    if (t == "rnn") {
        i64 hidden = o.i("hidden", 1);
        L.activation = activation(o, ctx, "activation", "logistic");
        bool bn = o.i("batch_normalize", 0) != 0;
        o.mark({"logistic", "shortcut"});
        need_positive(o, "hidden", hidden);
        connected_block(o, L, "input_layer", in, hidden, bn);
        connected_block(o, L, "self_layer", hidden, hidden, bn);
        connected_block(o, L, "output_layer", hidden, output, bn);
    } else if (t == "lstm") {
        bool bn = o.i("batch_normalize", 0) != 0;
        for (const char* name : {"wf", "wi", "wg", "wo"}) {
            connected_block(o, L, name, output, output, bn);
        }
        for (const char* name : {"uf", "ui", "ug", "uo"}) {
            connected_block(o, L, name, in, output, bn);
        }
    } else {  // gru
        bool bn = o.i("batch_normalize", 0) != 0;
        for (const char* name : {"input_z_layer", "input_r_layer", "input_h_layer"}) {
            connected_block(o, L, name, in, output, bn);
        }
        for (const char* name : {"state_z_layer", "state_r_layer", "state_h_layer"}) {
            connected_block(o, L, name, output, output, bn);
        }
    }
    L.output_shape = {output, 1, 1};
    return {L.output_shape, output};
}

Built build_recurrent_conv(Options& o, Ctx& ctx, LayerInfo& L) {
    const bool crnn = o.type() == "crnn";
    i64 size = o.i("size", 3);
    i64 stride = o.i("stride", 1);
    o.i("dilation", 1);
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
    if (!crnn) {
        o.s("lstm_activation", "tanh");
    }
    if (xnor) groups = 1;
    if (groups < 1) groups = 1;
    need_image(o, ctx, o.type());
    need_positive(o, "output", output);
    need_positive(o, "size", size);
    need_positive(o, "stride", stride);
    i64 c = ctx.in.c;
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
        conv_block(o, L, "wf", output, bottleneck ? 2 * output : output, groups, size, bn, false);
        if (!bottleneck) {
            for (const char* name : {"wi", "wg", "wo"}) {
                conv_block(o, L, name, output, output, groups, size, bn, false);
            }
        }
        for (const char* name : {"uf", "ui", "ug", "uo"}) {
            conv_block(o, L, name, output, c, groups, size, bn, false);
        }
    }
    Shape3 out{output, (ctx.in.h + 2 * padding - size) / stride + 1,
               (ctx.in.w + 2 * padding - size) / stride + 1};
    L.output_shape = out;
    return {out, out.size()};
}

Built build_simple(Options& o, Ctx& ctx, LayerInfo& L) {
    // Layers whose output has the input's shape and which store nothing.
    std::string_view t = o.type();
    Shape3 out = ctx.in;
    i64 outputs = ctx.inputs;
    if (t == "avgpool") {
        out = {ctx.in.c, 1, 1};
        outputs = ctx.in.c;
    } else if (t == "batchnorm") {
        add_param(L, {}, "biases", {ctx.in.c}, ctx.in.c);
        bn_params(L, {}, ctx.in.c);
    } else if (t == "dropout") {
        o.mark({"probability", "dropblock", "dropblock_size_rel", "dropblock_size_abs"});
    } else if (t == "softmax") {
        o.mark({"groups", "temperature", "tree", "spatial", "noloss"});
    } else if (t == "cost") {
        o.mark({"type", "scale", "ratio"});
    } else if (t == "normalization") {
        o.mark({"alpha", "beta", "kappa", "size"});
    } else if (t == "activation") {
        L.activation = activation(o, ctx, "activation", "linear");
    } else if (t == "contrastive") {
        o.i("classes", 1000);
        i64 yolo = o.i("yolo_layer", 0);
        if (yolo < 0) yolo = ctx.index + yolo;
        if (yolo != 0) {
            if (yolo < 0 || yolo >= ctx.index ||
                ctx.layers[static_cast<std::size_t>(yolo)].type != "yolo") {
                o.fail_at("yolo_layer", "has yolo_layer pointing at layer " +
                                            std::to_string(yolo) + ", which is not a [yolo] layer "
                                            "before it");
            }
        }
        o.mark({"temperature", "cls_normalizer", "max_delta", "contrastive_neg_max"});
    } else if (t == "crop") {
        i64 ch = o.i("crop_height", 1);
        i64 cw = o.i("crop_width", 1);
        o.mark({"flip", "angle", "saturation", "exposure", "noadjust", "shift"});
        need_image(o, ctx, "crop");
        out = {ctx.in.c, ch, cw};
        outputs = out.size();
    } else if (t == "history") {
        i64 hs = o.i("history_size", 4);
        out = {sat_mul(ctx.in.c, hs), ctx.in.h, ctx.in.w};
        outputs = out.size();
    } else if (t == "implicit") {
        o.f("mean", 0.0);
        o.f("std", 0.2);
        i64 filters = o.i("filters", 128);
        i64 atoms = o.i("atoms", 1);
        need_positive(o, "filters", filters);
        need_positive(o, "atoms", atoms);
        add_param(L, {}, "weights", {filters, atoms}, mul(o, {filters, atoms}));
        out = {filters, atoms, 1};
        outputs = out.size();
    } else if (t == "iseg") {
        i64 classes = o.i("classes", 20);
        i64 ids = o.i("ids", 32);
        out = {classes + ids, ctx.in.h, ctx.in.w};
        outputs = out.size();
    }
    L.output_shape = out;
    return {out, outputs};
}

Built build_layer(Options& o, Ctx& ctx, LayerInfo& L) {
    std::string_view t = o.type();
    if (t == "convolutional") return build_convolutional(o, ctx, L);
    if (t == "deconvolutional") return build_deconvolutional(o, ctx, L);
    if (t == "connected") return build_connected(o, ctx, L);
    if (t == "local") return build_local(o, ctx, L);
    if (t == "maxpool") return build_pool(o, ctx, L, true);
    if (t == "local_avgpool") return build_pool(o, ctx, L, false);
    if (t == "route") return build_route(o, ctx, L);
    if (t == "shortcut") return build_shortcut(o, ctx, L);
    if (t == "scale_channels") return build_from_layer(o, ctx, L, false);
    if (t == "sam") return build_from_layer(o, ctx, L, true);
    if (t == "upsample") return build_upsample(o, ctx, L);
    if (t == "reorg3d" || t == "reorg") return build_reorg(o, ctx, L);
    if (t == "yolo" || t == "Gaussian_yolo" || t == "region" || t == "detection") {
        return build_head(o, ctx, L);
    }
    if (t == "rnn" || t == "lstm" || t == "gru") return build_recurrent_fc(o, ctx, L);
    if (t == "crnn" || t == "conv_lstm") return build_recurrent_conv(o, ctx, L);
    return build_simple(o, ctx, L);
}

}  // namespace

std::int64_t sat_mul(std::int64_t a, std::int64_t b) {
    std::int64_t r = 0;
    if (__builtin_mul_overflow(a, b, &r)) {
        return (a < 0) != (b < 0) ? std::numeric_limits<std::int64_t>::min()
                                  : std::numeric_limits<std::int64_t>::max();
    }
    return r;
}

int checked_layer_index(const Config& config, std::int64_t i) {
    auto n = static_cast<std::int64_t>(config.layers.size());
    if (i < 0 || i >= n) {
        throw std::out_of_range("layer index " + std::to_string(i) + " out of range 0.." +
                                std::to_string(n - 1));
    }
    return static_cast<int>(i);
}

std::vector<std::string> layer_types() {
    std::vector<std::string> out;
    for (const auto& t : kTypes) {
        if (t.canonical != "net" &&
            std::find(out.begin(), out.end(), t.canonical) == out.end()) {
            out.emplace_back(t.canonical);
        }
    }
    return out;
}

std::shared_ptr<const Config> build_config(CfgText text_in) {
    auto cfg = std::make_shared<Config>();
    cfg->path = text_in.path;
    cfg->diagnostics = std::move(text_in.diagnostics);
    cfg->text = std::move(text_in);
    const CfgText& text = cfg->text;
    const std::string& path = cfg->path;
    if (text.sections.empty()) {
        throw CfgError(path + ": no [net] section: the file has no sections at all", path, 0);
    }
    const CfgSection& net = text.sections.front();
    if (lookup_type(net.name) != "net") {
        throw CfgError(path + ":" + std::to_string(net.line) + ": the first section is " +
                           std::string(net.name) + "; darknet requires [net] or [network] first",
                       path, net.line);
    }
    // Every section type must be known before anything else is reported, so
    // that the first unknown section is named even if a later check fails.
    for (std::size_t s = 1; s < text.sections.size(); ++s) {
        const CfgSection& sec = text.sections[s];
        std::string_view t = lookup_type(sec.name);
        if (t.empty() || t == "net") {
            throw CfgError(path + ":" + std::to_string(sec.line) + ": unknown section " +
                               std::string(sec.name) + " (layer " + std::to_string(s - 1) +
                               "); darknet does not know this layer type" +
                               (t == "net" ? " here: only the first section may be [net]" : ""),
                           path, sec.line);
        }
    }
    {
        Options o(net, path, "net");
        i64 h = o.i("height", 0);
        i64 w = o.i("width", 0);
        i64 c = o.i("channels", 0);
        i64 inputs = o.i("inputs", sat_mul(sat_mul(h, w), c));
        o.mark(kNetKeys);
        o.report_unused(cfg->diagnostics);
        if (inputs <= 0 && !(h > 0 && w > 0 && c > 0)) {
            throw CfgError(path + ":" + std::to_string(net.line) +
                               ": [net] sets no input size: give width, height and channels "
                               "(or inputs) (darknet: \"No input parameters supplied\")",
                           path, net.line);
        }
        if (sat_mul(sat_mul(h, w), c) > kMaxFloats) {
            throw CfgError(path + ":" + std::to_string(net.line) +
                               ": [net] width x height x channels is too large to address",
                           path, net.line);
        }
        if (h < 0 || w < 0 || c < 0) {
            throw CfgError(path + ":" + std::to_string(net.line) +
                               ": [net] has a negative width, height or channels",
                           path, net.line);
        }
        cfg->input_shape = {c, h, w};
        cfg->input_size = inputs;
    }
    if (text.sections.size() < 2) {
        throw CfgError(path + ": the cfg has a [net] section but no layers", path, net.line);
    }

    std::vector<Shape3> record_out;
    std::vector<i64> record_outputs;
    record_out.reserve(text.sections.size());
    record_outputs.reserve(text.sections.size());
    cfg->layers.reserve(text.sections.size());
    Shape3 in = cfg->input_shape;
    i64 inputs = cfg->input_size;
    for (std::size_t s = 1; s < text.sections.size(); ++s) {
        const CfgSection& sec = text.sections[s];
        LayerInfo L;
        L.index = static_cast<int>(s - 1);
        L.type = lookup_type(sec.name);
        L.section = sec.name;
        L.line = sec.line;
        L.params.reserve(5);
        if (L.index > 0) {
            L.inputs = {L.index - 1};
        }
        L.input_shape = in;
        L.input_size = inputs;
        Options o(sec, path, L.type);
        Ctx ctx{L.index, in, inputs, cfg->layers, record_out, record_outputs,
                cfg->diagnostics};
        Built b = build_layer(o, ctx, L);
        o.mark(kCommonKeys);
        L.dontload = o.i("dontload", 0) != 0;
        i64 dontloadscales = o.i("dontloadscales", 0);
        if (dontloadscales && (L.type == "convolutional" || L.type == "connected")) {
            // The BN arrays are not read: drop them from the plan.
            std::vector<ParamSpec> kept;
            i64 off = 0;
            for (auto p : L.params) {
                if (p.base == "scales" || p.base == "rolling_mean" ||
                    p.base == "rolling_variance") {
                    continue;
                }
                p.offset = off;
                off += p.count;
                kept.push_back(std::move(p));
            }
            L.params = std::move(kept);
            L.nfloats = off;
        }
        if (L.dontload) {
            L.params.clear();
            L.nfloats = 0;
        }
        o.report_unused(cfg->diagnostics);
        const Shape3& out = L.output_shape;
        bool flat = L.type == "connected" || L.type == "rnn" || L.type == "lstm" ||
                    L.type == "gru" || L.type == "softmax" || L.type == "cost" ||
                    L.type == "detection" || L.type == "dropout" || L.type == "activation" ||
                    L.type == "empty" || L.type == "contrastive" || L.type == "logistic" ||
                    L.type == "l2norm";
        if (out.size() > kMaxFloats || b.record_outputs > kMaxFloats) {
            o.fail("produces an output too large to address (" + shape_str(out) + ")");
        }
        if (!flat && (out.c < 1 || out.h < 1 || out.w < 1)) {
            o.fail("produces an empty output " + shape_str(out) + " from its input " +
                   shape_str(in));
        }
        L.output_size = b.record_outputs;
        cfg->total_floats += L.nfloats;
        if (cfg->total_floats > kMaxFloats) {
            o.fail("makes the network too large to address");
        }
        record_out.push_back(b.record_out);
        record_outputs.push_back(b.record_outputs);
        in = L.output_shape;
        inputs = L.output_shape.size() > 0 ? L.output_shape.size() : b.record_outputs;
        if (L.type == "connected" || L.type == "rnn" || L.type == "lstm" || L.type == "gru" ||
            L.type == "softmax" || L.type == "cost" || L.type == "detection" ||
            L.type == "contrastive" || L.type == "logistic" || L.type == "l2norm") {
            inputs = b.record_outputs;
        }
        cfg->layers.push_back(std::move(L));
    }
    std::stable_sort(cfg->diagnostics.begin(), cfg->diagnostics.end(),
                     [](const Diagnostic& a, const Diagnostic& b) { return a.line < b.line; });
    return cfg;
}

std::shared_ptr<const Config> parse_config(std::string_view text, const std::string& path) {
    return build_config(read_cfg_text(text, path));
}

std::shared_ptr<const Config> parse_config_file(const std::string& path) {
    return parse_config(read_text_file(path), path);
}

}  // namespace yolo_io
