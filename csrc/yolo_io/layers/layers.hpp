// Internal to the layer builders (csrc/yolo_io/layers/*.cpp) and the network
// driver (network.cpp): the option reader, the building context and the
// helpers every builder shares. Each builder follows the darknet parse_*()
// function of the same name ([A] src/parser.c, spec sections 2, 3 and 5).
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "yolo_io/errors.hpp"
#include "yolo_io/kinds.hpp"
#include "yolo_io/model.hpp"

namespace yolo_io {

using i64 = std::int64_t;

// Largest parameter or output count we address.
constexpr i64 kMaxFloats = i64{1} << 56;

// Option reader over one section with darknet's lookup rules: the first copy
// of a key wins (a copy without '=' reads as absent), every lookup marks it,
// and what is never looked up is reported as unused.
class Options {
  public:
    Options(const CfgSection& section, const std::string& path);

    // Defined here so that every builder inlines the lookups it makes by the
    // dozen (a cross-file call made parsing a third slower).
    const CfgOption* find(std::string_view key) {
        for (std::size_t k = 0; k < section_.options.size(); ++k) {
            const CfgOption& o = section_.options[k];
            // Length and first character first: most keys differ there.
            if (o.key.size() == key.size() && o.key[0] == key[0] && o.key == key) {
                set_used(k);
                return o.has_value ? &o : nullptr;
            }
        }
        return nullptr;
    }
    i64 i(std::string_view key, i64 def) {  // darknet's atoi() of the value
        const CfgOption* o = find(key);
        return o ? int_value(key, o->value) : def;
    }
    double f(std::string_view key, double def) {  // atof()
        const CfgOption* o = find(key);
        return o ? real_value(key, o->value) : def;
    }
    // atoi()/atof() of `text`, the value of `key` or one part of its list: a
    // CfgError at the key's line for an integer outside int32 (darknet's
    // atoi() wraps it to another number) or a float that is not finite as
    // the float32 darknet stores it in ("1e39", "1e999", "inf", "nan": no
    // layer means it).
    i64 int_value(std::string_view key, std::string_view text) const {
        const i64 v = c_atoi(text);
        if (v >= kInt32Max || v <= kInt32Min) check_int32(key, text);  // saturated?
        return v;
    }
    double real_value(std::string_view key, std::string_view text) const {
        const double v = c_atof(text);
        if (!std::isfinite(static_cast<float>(v))) not_finite(key, text, v);
        return v;
    }
    std::string_view s(std::string_view key, std::string_view def) {
        const CfgOption* o = find(key);
        return o ? o->value : def;
    }
    template <std::size_t N>
    void mark(const std::array<std::string_view, N>& keys) {
        for (auto k : keys) find(k);
    }
    void mark(std::initializer_list<std::string_view> keys) {
        for (auto k : keys) find(k);
    }
    // The line of `key`, or of the section when it is absent.
    int line_of(std::string_view key) const;

    // CfgError "path:line: [section] message" (the section's line by default).
    [[noreturn]] void fail(const std::string& message, int line = 0) const;
    [[noreturn]] void fail_at(std::string_view key, const std::string& message) const;

    // Unused options, reported as darknet's option_unused() does.
    void report_unused(std::vector<Diagnostic>& out) const;

    const CfgSection& section() const { return section_; }
    const std::string& path() const { return path_; }

  private:
    static constexpr i64 kInt32Max = 2147483647;
    static constexpr i64 kInt32Min = -kInt32Max - 1;
    void check_int32(std::string_view key, std::string_view text) const;
    [[noreturn]] void not_finite(std::string_view key, std::string_view text, double v) const;

    void set_used(std::size_t k) {
        if (overflow_.empty()) {
            used_[k] = true;
        } else {
            overflow_[k] = true;
        }
    }
    bool is_used(std::size_t k) const { return overflow_.empty() ? used_[k] : overflow_[k]; }

    const CfgSection& section_;
    const std::string& path_;
    std::array<bool, 64> used_{};
    std::vector<bool> overflow_;  // sections with more than 64 options
};

// What a builder sees: darknet's size_params plus the layers built so far.
struct Ctx {
    int index;
    Kind kind;
    Shape3 in;   // params.c/h/w: the previous layer's output
    i64 inputs;  // params.inputs
    const std::vector<LayerInfo>& layers;
    // darknet's l.out_* / l.outputs of earlier layers: what [route] and
    // [shortcut] see (differs from output_shape only for antialiasing).
    const std::vector<Shape3>& record_out;
    const std::vector<i64>& record_outputs;
    std::vector<Diagnostic>& diagnostics;
    AttrStore& attrs;  // Config::attrs: attr() appends this layer's
};

struct Built {
    Shape3 record_out;   // l.out_w/h/c
    i64 record_outputs;  // l.outputs
};

// Product of sizes; fails for a negative factor or a product past kMaxFloats.
i64 mul(const Options& o, std::initializer_list<i64> factors);

// Output sizes of a sliding window along one axis (conv, pool, local, blur),
// saturating (model.hpp): a hostile size then stays too large and is
// refused, never wraps. `window_span` is how far the window's start moves,
// in + pad_total - size (negative: the window does not fit the input);
// `window_out` the number of positions, span / stride + 1.
inline i64 window_span(i64 in, i64 pad_total, i64 size) {
    return sat_sub(sat_add(in, pad_total), size);
}
inline i64 window_out(i64 span, i64 stride) { return sat_add(span / stride, 1); }
// A transposed window (deconvolution): (in - 1) * stride + size - pad_total.
inline i64 window_out_transposed(i64 in, i64 stride, i64 size, i64 pad_total) {
    return sat_add(sat_mul(sat_sub(in, 1), stride), sat_sub(size, pad_total));
}

std::string shape_str(const Shape3& s);

// The parameter plan (load_*_weights() order).
void add_param(LayerInfo& L, std::string_view prefix, std::string_view base,
               std::initializer_list<i64> shape, i64 count,
               std::initializer_list<i64> strides = {}, bool legacy_transpose = false);
void bn_params(LayerInfo& L, std::string_view prefix, i64 n);
void conv_block(const Options& o, LayerInfo& L, std::string_view prefix, i64 n, i64 c,
                i64 groups, i64 size, bool bn, bool flipped);
void connected_block(const Options& o, LayerInfo& L, std::string_view prefix, i64 inputs,
                     i64 outputs, bool bn);

// activations.c:get_activation(): the name, or "relu" (with a warning) for an
// unknown one. The result points to a static string.
std::string_view activation(Options& o, Ctx& ctx, std::string_view key, std::string_view def);

void need_image(const Options& o, const Ctx& ctx, std::string_view what);
void need_positive(const Options& o, std::string_view key, i64 v);
// "has key=v; it must be at least `least`" unless v >= least.
void need_at_least(const Options& o, std::string_view key, i64 v, i64 least);
// An output with no channel, row or column (an option made it empty).
void need_output(const Options& o, const Ctx& ctx, const Shape3& out);
// A layer reference (negative: relative) as an absolute index before ctx.index.
i64 resolve_index(const Options& o, const Ctx& ctx, std::string_view key, i64 raw);
// The parts of a comma list as darknet reads them: 1 + the commas (before the
// first '#' when `hash_ends`, as parse_yolo_mask() counts) values, each the
// text from after the previous comma on, for atoi()/atof().
std::vector<std::string_view> comma_parts(std::string_view value, bool hash_ends);
// parse_route()/parse_shortcut() list rule: comma_parts() without '#', each
// atoi()'d and resolved as a layer index.
std::vector<int> index_list(const Options& o, const Ctx& ctx, std::string_view key,
                            std::string_view value);
// Output of the blur layer darknet appends to an antialiased conv/maxpool.
Shape3 blur_out(const Shape3& host, i64 mode, i64 stride_x, i64 stride_y);

// Typed hyperparameters (Config::attrs): add one to the layer being built,
// by the C++ type of its value (an empty optional is None); find one of an
// earlier layer (nullptr when it has none of that name).
void attr(Ctx& ctx, std::string_view name, bool value);
void attr(Ctx& ctx, std::string_view name, i64 value);
void attr(Ctx& ctx, std::string_view name, double value);
void attr(Ctx& ctx, std::string_view name, std::string_view value);  // a static string
void attr(Ctx& ctx, std::string_view name, const char* value) = delete;  // would be a bool
void attr(Ctx& ctx, std::string_view name, std::optional<i64> value);
void attr(Ctx& ctx, std::string_view name, const std::vector<i64>& values);
void attr(Ctx& ctx, std::string_view name, const std::vector<std::array<i64, 2>>& pairs);
void attr(Ctx& ctx, std::string_view name, const std::vector<std::array<double, 2>>& pairs);
const Attr* find_attr(const Ctx& ctx, const LayerInfo& L, std::string_view name);

// One builder per family (layers/*.cpp), named after darknet's parse_*().
Built build_convolutional(Options& o, Ctx& ctx, LayerInfo& L);
Built build_deconvolutional(Options& o, Ctx& ctx, LayerInfo& L);
Built build_connected(Options& o, Ctx& ctx, LayerInfo& L);
Built build_local(Options& o, Ctx& ctx, LayerInfo& L);
Built build_batchnorm(Options& o, Ctx& ctx, LayerInfo& L);
Built build_implicit(Options& o, Ctx& ctx, LayerInfo& L);
Built build_pool(Options& o, Ctx& ctx, LayerInfo& L);  // maxpool, local_avgpool
Built build_avgpool(Options& o, Ctx& ctx, LayerInfo& L);
Built build_route(Options& o, Ctx& ctx, LayerInfo& L);
Built build_shortcut(Options& o, Ctx& ctx, LayerInfo& L);
Built build_from_layer(Options& o, Ctx& ctx, LayerInfo& L);  // scale_channels, sam
Built build_upsample(Options& o, Ctx& ctx, LayerInfo& L);
Built build_reorg(Options& o, Ctx& ctx, LayerInfo& L);
Built build_yolo(Options& o, Ctx& ctx, LayerInfo& L);  // yolo, Gaussian_yolo
Built build_region(Options& o, Ctx& ctx, LayerInfo& L);
Built build_detection(Options& o, Ctx& ctx, LayerInfo& L);
Built build_contrastive(Options& o, Ctx& ctx, LayerInfo& L);
Built build_recurrent_fc(Options& o, Ctx& ctx, LayerInfo& L);    // rnn, lstm, gru
Built build_recurrent_conv(Options& o, Ctx& ctx, LayerInfo& L);  // crnn, conv_lstm
Built build_dropout(Options& o, Ctx& ctx, LayerInfo& L);
Built build_softmax(Options& o, Ctx& ctx, LayerInfo& L);
Built build_cost(Options& o, Ctx& ctx, LayerInfo& L);
Built build_normalization(Options& o, Ctx& ctx, LayerInfo& L);
Built build_activation(Options& o, Ctx& ctx, LayerInfo& L);
Built build_crop(Options& o, Ctx& ctx, LayerInfo& L);
Built build_history(Options& o, Ctx& ctx, LayerInfo& L);
Built build_iseg(Options& o, Ctx& ctx, LayerInfo& L);
Built build_passthrough(Options& o, Ctx& ctx, LayerInfo& L);  // empty, logistic, l2norm

}  // namespace yolo_io
