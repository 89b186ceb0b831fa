// The option reader and the helpers every layer builder shares.
#include <algorithm>

#include "yolo_io/layers/layers.hpp"

namespace yolo_io {

namespace {

// activations.c:get_activation(); anything else becomes relu.
constexpr std::array<std::string_view, 23> kActivations = {
    "logistic", "swish", "mish", "hard_mish", "normalize_channels",
    "normalize_channels_softmax", "normalize_channels_softmax_maxval", "loggy", "relu",
    "relu6", "elu", "selu", "gelu", "relie", "plse", "hardtan", "lhtan", "linear", "ramp",
    "revleaky", "leaky", "tanh", "stair"};

}  // namespace

Options::Options(const CfgSection& section, const std::string& path)
    : section_(section), path_(path) {
    if (section.options.size() > used_.size()) {
        overflow_.assign(section.options.size(), false);
    }
}

int Options::line_of(std::string_view key) const {
    for (const auto& o : section_.options) {
        if (o.key == key) return o.line;
    }
    return section_.line;
}

void Options::fail(const std::string& message, int line) const {
    throw cfg_error(path_, line ? line : section_.line, printable(section_.name) + " " + message);
}

void Options::fail_at(std::string_view key, const std::string& message) const {
    fail(message, line_of(key));
}

void Options::check_int32(std::string_view key, std::string_view text) const {
    std::int64_t wrapped = 0;
    if (!atoi_out_of_range(text, wrapped)) return;
    std::size_t n = text.size() > 0 && (text[0] == '+' || text[0] == '-') ? 1 : 0;
    while (n < text.size() && text[n] >= '0' && text[n] <= '9') ++n;
    fail_at(key, "has " + std::string(key) + "=" + printable(text.substr(0, n)) +
                     ", outside the 32-bit int darknet reads it into (its atoi() would give " +
                     std::to_string(wrapped) + ")");
}

void Options::not_finite(std::string_view key, std::string_view text, double v) const {
    std::size_t n = std::min(text.find(','), text.size());
    fail_at(key, "has " + std::string(key) + "=" + printable(text.substr(0, n)) +
                     ", which is not a finite float32 (darknet reads " +
                     (std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf") + ")");
}

void Options::report_unused(std::vector<Diagnostic>& out) const {
    for (std::size_t i = 0; i < section_.options.size(); ++i) {
        if (!is_used(i)) {
            const auto& o = section_.options[i];
            add_diagnostic(out, o.line,
                           "unused option '" + printable(o.key) +
                               (o.has_value ? "=" + printable(o.value) : "") + "' in " +
                               printable(section_.name) + " (darknet ignores it)");
        }
    }
}

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

void add_param(LayerInfo& L, std::string_view prefix, std::string_view base,
               std::initializer_list<i64> shape, i64 count, std::initializer_list<i64> strides,
               bool legacy_transpose) {
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
    L.nfloats = sat_add(L.nfloats, count);  // saturated: refused with the network's total
    L.params.push_back(p);
}

// scales, rolling_mean, rolling_variance: n each.
void bn_params(LayerInfo& L, std::string_view prefix, i64 n) {
    for (std::string_view base : {"scales", "rolling_mean", "rolling_variance"}) {
        add_param(L, prefix, base, {n}, n);
        L.params.back().bn_stat = true;
    }
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
                  {1, sat_mul(sat_mul(size, size), n), sat_mul(size, n), n});
    } else {
        add_param(L, prefix, "weights", {n, cg, size, size}, count);
    }
}

// load_connected_weights(): biases, weights (outputs, inputs), then BN.
void connected_block(const Options& o, LayerInfo& L, std::string_view prefix, i64 inputs,
                     i64 outputs, bool bn) {
    add_param(L, prefix, "biases", {outputs}, outputs);
    add_param(L, prefix, "weights", {outputs, inputs}, mul(o, {outputs, inputs}), {}, true);
    if (bn) {
        bn_params(L, prefix, outputs);
    }
}

std::string_view activation(Options& o, Ctx& ctx, std::string_view key, std::string_view def) {
    std::string_view name = o.s(key, def);
    for (auto a : kActivations) {
        if (a == name) return a;
    }
    add_diagnostic(ctx.diagnostics, o.line_of(key),
                   "activation '" + printable(name) + "' in " + printable(o.section().name) +
                       " is unknown to darknet, which uses relu");
    return "relu";
}

void need_image(const Options& o, const Ctx& ctx, std::string_view what) {
    // darknet leaves out_w/h/c of the kNoImageOut kinds at 0 (we report
    // their input shape, which is what they compute on).
    if (ctx.index > 0) {
        const LayerInfo& prev = ctx.layers[static_cast<std::size_t>(ctx.index - 1)];
        if (prev.kind_info().has(kNoImageOut)) {
            o.fail("needs an image input, but the layer before it is [" + std::string(prev.type) +
                   "], whose output darknet leaves without width, height and channels");
        }
    }
    if (!(ctx.in.c && ctx.in.h && ctx.in.w)) {
        o.fail("needs an image input, but the layer before it outputs " + shape_str(ctx.in) +
               " (darknet: \"Layer before " + std::string(what) +
               " layer must output image.\")");
    }
}

void need_positive(const Options& o, std::string_view key, i64 v) { need_at_least(o, key, v, 1); }

void need_at_least(const Options& o, std::string_view key, i64 v, i64 least) {
    if (v < least) {
        o.fail_at(key, "has " + std::string(key) + "=" + std::to_string(v) +
                           "; it must be at least " + std::to_string(least));
    }
}

void need_output(const Options& o, const Ctx& ctx, const Shape3& out) {
    if (out.c < 1 || out.h < 1 || out.w < 1) {
        o.fail("has an empty output " + shape_str(out) + " for its input " + shape_str(ctx.in) +
               " (darknet would compute nothing, or allocate a negative size)");
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

// Values of a comma list: 1 + the commas before the first '#' (when
// `hash_ends` is set, as parse_yolo_mask() counts) or in the whole value;
// each is atoi()/atof() of the text after the previous comma.
std::vector<std::string_view> comma_parts(std::string_view value, bool hash_ends) {
    std::size_t n = 1;
    for (char ch : value) {
        if (hash_ends && ch == '#') break;
        if (ch == ',') ++n;
    }
    std::vector<std::string_view> out;
    std::size_t pos = 0;
    for (std::size_t k = 0; k < n; ++k) {
        out.push_back(value.substr(pos));
        pos = value.find(',', pos);
        if (pos == std::string_view::npos) break;
        ++pos;
    }
    return out;
}

std::vector<int> index_list(const Options& o, const Ctx& ctx, std::string_view key,
                            std::string_view value) {
    std::vector<int> out;
    for (std::string_view part : comma_parts(value, false)) {
        out.push_back(static_cast<int>(resolve_index(o, ctx, key, o.int_value(key, part))));
    }
    return out;
}

Shape3 blur_out(const Shape3& host, i64 mode, i64 stride_x, i64 stride_y) {
    i64 size = mode == 2 ? 2 : 3;
    i64 pad = mode == 2 ? 0 : 1;
    return {host.c, window_out(window_span(host.h, 2 * pad, size), stride_y),
            window_out(window_span(host.w, 2 * pad, size), stride_x)};
}

namespace {

Attr& new_attr(Ctx& ctx, std::string_view name, Attr::Type type) {
    Attr& a = ctx.attrs.attrs.emplace_back();
    a.name = name;
    a.type = type;
    return a;
}

template <class T>
void add_list(Ctx& ctx, std::string_view name, Attr::Type type, std::vector<T>& store,
              const T* values, std::size_t count) {
    Attr& a = new_attr(ctx, name, type);
    a.offset = static_cast<std::uint32_t>(store.size());
    a.count = static_cast<std::uint32_t>(count);
    store.insert(store.end(), values, values + count);
}

}  // namespace

void attr(Ctx& ctx, std::string_view name, bool value) {
    new_attr(ctx, name, Attr::Type::flag).integer = value ? 1 : 0;
}

void attr(Ctx& ctx, std::string_view name, i64 value) {
    new_attr(ctx, name, Attr::Type::integer).integer = value;
}

void attr(Ctx& ctx, std::string_view name, double value) {
    new_attr(ctx, name, Attr::Type::real).real = value;
}

void attr(Ctx& ctx, std::string_view name, std::string_view value) {
    new_attr(ctx, name, Attr::Type::name).text = value;
}

void attr(Ctx& ctx, std::string_view name, std::optional<i64> value) {
    if (value) {
        attr(ctx, name, *value);
    } else {
        new_attr(ctx, name, Attr::Type::none);
    }
}

void attr(Ctx& ctx, std::string_view name, const std::vector<i64>& values) {
    add_list(ctx, name, Attr::Type::ints, ctx.attrs.ints, values.data(), values.size());
}

void attr(Ctx& ctx, std::string_view name, const std::vector<std::array<i64, 2>>& pairs) {
    add_list(ctx, name, Attr::Type::int_pairs, ctx.attrs.ints,
             pairs.empty() ? nullptr : pairs.front().data(), 2 * pairs.size());
}

void attr(Ctx& ctx, std::string_view name, const std::vector<std::array<double, 2>>& pairs) {
    add_list(ctx, name, Attr::Type::real_pairs, ctx.attrs.reals,
             pairs.empty() ? nullptr : pairs.front().data(), 2 * pairs.size());
}

const Attr* find_attr(const Ctx& ctx, const LayerInfo& L, std::string_view name) {
    for (std::size_t k = L.attrs_begin; k < L.attrs_end; ++k) {
        if (ctx.attrs.attrs[k].name == name) return &ctx.attrs.attrs[k];
    }
    return nullptr;
}

}  // namespace yolo_io
