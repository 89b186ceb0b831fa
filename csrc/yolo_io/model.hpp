// The layer model: every section type darknet accepts, its defaults, output
// shape (spec section 3), inputs and the parameter plan of what it stores in a
// .weights file (spec section 5). Pure data; no file access.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <string_view>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "yolo_io/cfg.hpp"
#include "yolo_io/kinds.hpp"

namespace yolo_io {

// Sum, difference and product that saturate at INT64_MAX (or INT64_MIN)
// instead of overflowing (undefined behaviour): cfg values are
// attacker-controlled, and a saturated size is then refused as too large.
// GCC and Clang check with their overflow built-ins; other compilers (or
// YOLO_IO_PORTABLE_ARITHMETIC) compare against the bounds by division first.
#if (defined(__GNUC__) || defined(__clang__)) && !defined(YOLO_IO_PORTABLE_ARITHMETIC)
#define YOLO_IO_OVERFLOW_BUILTINS 1
#else
#define YOLO_IO_OVERFLOW_BUILTINS 0
#endif

inline std::int64_t sat_add(std::int64_t a, std::int64_t b) {
    constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
    constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
#if YOLO_IO_OVERFLOW_BUILTINS
    std::int64_t r = 0;
    if (__builtin_add_overflow(a, b, &r)) return b > 0 ? kMax : kMin;
    return r;
#else
    if (b > 0 && a > kMax - b) return kMax;
    if (b < 0 && a < kMin - b) return kMin;
    return a + b;
#endif
}

inline std::int64_t sat_sub(std::int64_t a, std::int64_t b) {
    constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
    constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
#if YOLO_IO_OVERFLOW_BUILTINS
    std::int64_t r = 0;
    if (__builtin_sub_overflow(a, b, &r)) return b < 0 ? kMax : kMin;
    return r;
#else
    if (b < 0 && a > kMax + b) return kMax;
    if (b > 0 && a < kMin + b) return kMin;
    return a - b;
#endif
}

inline std::int64_t sat_mul(std::int64_t a, std::int64_t b) {
    constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
    constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
#if YOLO_IO_OVERFLOW_BUILTINS
    std::int64_t r = 0;
    if (__builtin_mul_overflow(a, b, &r)) return (a < 0) != (b < 0) ? kMin : kMax;
    return r;
#else
    // The quotients truncate toward zero, which makes each comparison exact
    // (CERT INT32-C).
    if (a > 0) {
        if (b > 0 ? a > kMax / b : b < kMin / a) return b > 0 ? kMax : kMin;
    } else if (a < 0) {
        if (b > 0 ? a < kMin / b : b < 0 && a < kMax / b) return b > 0 ? kMin : kMax;
    }
    return a * b;
#endif
}

struct Shape3 {
    std::int64_t c = 0;
    std::int64_t h = 0;
    std::int64_t w = 0;
    std::int64_t size() const { return sat_mul(sat_mul(c, h), w); }
};

// One array a layer stores. Offsets and counts are in float32 elements and
// relative to the start of the layer's data.
struct ParamSpec {
    static constexpr int kMaxDims = 6;
    // The name is `prefix.base` (sub-layers of rnn/lstm/...) or just `base`;
    // both point to string literals.
    std::string_view prefix;
    std::string_view base;
    int ndim = 0;
    std::array<std::int64_t, kMaxDims> shape{};
    // Element strides of the view when `strided`; otherwise C-contiguous.
    bool strided = false;
    std::array<std::int64_t, kMaxDims> strides{};
    std::int64_t offset = 0;
    std::int64_t count = 0;
    // A connected-layer weight matrix (outputs, inputs): a legacy header
    // (major or minor > 1000) means the file holds it as [inputs][outputs].
    bool legacy_transpose = false;
    // One of a batch-norm's scales, rolling_mean, rolling_variance (bn_params()).
    bool bn_stat = false;

    std::string name() const {
        return prefix.empty() ? std::string(base) : std::string(prefix) + "." + std::string(base);
    }
};

// One typed hyperparameter as darknet holds it after parsing (defaults
// applied), named after darknet's `layer` struct member where one exists.
// Plain data, so that a Config's thousands of them cost one allocation; lists
// live in the Config's AttrStore.
struct Attr {
    enum class Type : std::uint8_t { none, flag, integer, real, name, ints, int_pairs, real_pairs };
    std::string_view name;      // a string literal
    Type type = Type::none;     // none: Python's None
    std::int64_t integer = 0;   // flag (0 or 1), integer
    double real = 0;            // real
    std::string_view text;      // name: a static string (an activation, an enum's name)
    std::uint32_t offset = 0;   // lists: the first value in AttrStore::ints or ::reals
    std::uint32_t count = 0;    // lists: the number of values (two per pair)
};

// Every layer's attributes, and the values of their lists.
struct AttrStore {
    std::vector<Attr> attrs;
    std::vector<std::int64_t> ints;  // ints, int_pairs
    std::vector<double> reals;       // real_pairs
};

struct LayerInfo {
    int index = 0;
    Kind kind = Kind::empty;
    std::string_view type;     // canonical darknet name, e.g. "convolutional"
    std::string_view section;  // the header line as written, e.g. "[conv]"
    int line = 0;              // line of the [section]
    std::vector<int> inputs;   // absolute indices; empty = the network input
    // (C, H, W) of each input of a layer that reads several (route,
    // shortcut, sam, scale_channels), in the order of `inputs`; empty for the
    // others, whose one input is `input_shape` (see all_input_shapes()).
    std::vector<Shape3> input_shapes;
    Shape3 input_shape;
    Shape3 output_shape;
    std::int64_t input_size = 0;   // darknet's l.inputs (flat)
    std::int64_t output_size = 0;  // darknet's l.outputs (flat)
    std::string_view activation;   // effective darknet activation; empty = none
    std::vector<ParamSpec> params;
    std::int64_t nfloats = 0;      // floats this layer reads from .weights
    bool dontload = false;         // dontload=1: nothing read
    int share_index = -1;          // conv share_index target, else -1
    // Its typed hyperparameters, in a fixed order per kind, are
    // Config::attrs.attrs[attrs_begin, attrs_end) (one pool: allocations per
    // layer made parsing 10% slower).
    std::size_t attrs_begin = 0;
    std::size_t attrs_end = 0;

    const KindInfo& kind_info() const { return yolo_io::kind_info(kind); }
    // What darknet reads from each input, in the order of `inputs` (the
    // network input for layer 0).
    std::vector<Shape3> all_input_shapes() const {
        return input_shapes.empty() ? std::vector<Shape3>{input_shape} : input_shapes;
    }
};

// The [net] options inference needs ([A] parse_net_options()), typed.
struct NetInfo {
    std::int64_t width = 0;
    std::int64_t height = 0;
    std::int64_t channels = 0;
    std::int64_t inputs = 0;  // inputs=, or width * height * channels
    bool letter_box = false;  // letter_box=: images letterboxed, not stretched
};

struct Config {
    std::string path;
    NetInfo net;
    CfgText text;  // the sections; layer i is text.sections[i + 1]
    Shape3 input_shape;
    std::int64_t input_size = 0;  // [net] inputs
    std::vector<LayerInfo> layers;
    AttrStore attrs;  // every layer's typed hyperparameters (LayerInfo::attrs_begin)
    std::vector<Diagnostic> diagnostics;
    std::int64_t total_floats = 0;

    const CfgSection& net_section() const { return text.sections.front(); }
    const CfgSection& section_of(std::size_t layer) const { return text.sections[layer + 1]; }
    const Attr* attrs_begin(const LayerInfo& L) const { return attrs.attrs.data() + L.attrs_begin; }
    const Attr* attrs_end(const LayerInfo& L) const { return attrs.attrs.data() + L.attrs_end; }
};

// Builds the layer model. Throws CfgError (with the line) for whatever darknet
// would refuse, crash on, or silently turn into a wrong network.
std::shared_ptr<const Config> build_config(CfgText text);

// Convenience: read_cfg_text + build_config.
std::shared_ptr<const Config> parse_config(std::string_view text, const std::string& path);
std::shared_ptr<const Config> parse_config_file(const std::string& path);

// `i` as a layer index of `config`; std::out_of_range when there is none.
int checked_layer_index(const Config& config, std::int64_t i);

// Canonical names of every layer kind (the kind table's order, [net] excluded).
std::vector<std::string> layer_types();

}  // namespace yolo_io
