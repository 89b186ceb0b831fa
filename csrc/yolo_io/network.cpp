// The network driver: [net], then one builder per section from the kind
// table (kinds.cpp), threading each layer's output into the next as darknet's
// parse_network_cfg_custom() does.
#include <algorithm>

#include "yolo_io/layers/layers.hpp"

namespace yolo_io {

namespace {

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

}  // namespace

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
    for (const KindInfo* k = kinds_begin(); k != kinds_end(); ++k) {
        out.emplace_back(k->name);
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
        throw cfg_error(path, 0, "no [net] section: the file has no sections at all");
    }
    const CfgSection& net = text.sections.front();
    const KindInfo* first = kind_of_section(net.name);
    if (first == nullptr || first->kind != Kind::net) {
        throw cfg_error(path, net.line,
                        "the first section is " + printable(net.name) +
                            "; darknet requires [net] or [network] first");
    }
    // Every section type must be known before anything else is reported, so
    // that the first unknown section is named even if a later check fails.
    std::vector<const KindInfo*> kinds(text.sections.size(), first);
    for (std::size_t s = 1; s < text.sections.size(); ++s) {
        const CfgSection& sec = text.sections[s];
        kinds[s] = kind_of_section(sec.name);
        if (kinds[s] == nullptr || kinds[s]->kind == Kind::net) {
            throw cfg_error(path, sec.line,
                            "unknown section " + printable(sec.name) + " (layer " +
                                std::to_string(s - 1) +
                                "); darknet does not know this layer type" +
                                (kinds[s] ? " here: only the first section may be [net]" : ""));
        }
    }
    {
        Options o(net, path);
        i64 h = o.i("height", 0);
        i64 w = o.i("width", 0);
        i64 c = o.i("channels", 0);
        i64 inputs = o.i("inputs", sat_mul(sat_mul(h, w), c));
        const bool letter_box = o.i("letter_box", 0) != 0;
        o.mark(kNetKeys);
        o.report_unused(cfg->diagnostics);
        if (inputs <= 0 && !(h > 0 && w > 0 && c > 0)) {
            throw cfg_error(path, net.line,
                            "[net] sets no input size: give width, height and channels (or "
                            "inputs) (darknet: \"No input parameters supplied\")");
        }
        if (sat_mul(sat_mul(h, w), c) > kMaxFloats) {
            throw cfg_error(path, net.line,
                            "[net] width x height x channels is too large to address");
        }
        if (h < 0 || w < 0 || c < 0) {
            throw cfg_error(path, net.line, "[net] has a negative width, height or channels");
        }
        cfg->input_shape = {c, h, w};
        cfg->input_size = inputs;
        cfg->net = {w, h, c, inputs, letter_box};
    }
    if (text.sections.size() < 2) {
        throw cfg_error(path, net.line, "the cfg has a [net] section but no layers");
    }

    std::vector<Shape3> record_out;
    std::vector<i64> record_outputs;
    record_out.reserve(text.sections.size());
    record_outputs.reserve(text.sections.size());
    cfg->layers.reserve(text.sections.size());
    cfg->attrs.attrs.reserve(text.sections.size() * 14);  // a conv's 14, the most common
    Shape3 in = cfg->input_shape;
    i64 inputs = cfg->input_size;
    for (std::size_t s = 1; s < text.sections.size(); ++s) {
        const CfgSection& sec = text.sections[s];
        const KindInfo& kind = *kinds[s];
        LayerInfo L;
        L.index = static_cast<int>(s - 1);
        L.kind = kind.kind;
        L.type = kind.name;
        L.section = sec.name;
        L.line = sec.line;
        L.params.reserve(5);
        if (L.index > 0) {
            L.inputs = {L.index - 1};
        }
        L.input_shape = in;
        L.input_size = inputs;
        Options o(sec, path);
        Ctx ctx{L.index, kind.kind, in, inputs, cfg->layers, record_out, record_outputs,
                cfg->diagnostics, cfg->attrs};
        L.attrs_begin = cfg->attrs.attrs.size();
        Built b = kind.build(o, ctx, L);
        L.attrs_end = cfg->attrs.attrs.size();
        o.mark(kCommonKeys);
        L.dontload = o.i("dontload", 0) != 0;
        // The loaders of the kDontloadscales kinds do not read the batch-norm
        // arrays under dontloadscales=1, so they leave the plan.
        if (o.i("dontloadscales", 0) && kind.has(kDontloadscales)) {
            std::vector<ParamSpec> kept;
            i64 off = 0;
            for (auto p : L.params) {
                if (p.bn_stat) {
                    continue;
                }
                p.offset = off;
                off = sat_add(off, p.count);
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
        const bool flat = kind.has(kFlat);
        if (out.size() > kMaxFloats || b.record_outputs > kMaxFloats) {
            o.fail("produces an output too large to address (" + shape_str(out) + ")");
        }
        if (!flat && (out.c < 1 || out.h < 1 || out.w < 1)) {
            o.fail("produces an empty output " + shape_str(out) + " from its input " +
                   shape_str(in));
        }
        L.output_size = b.record_outputs;
        cfg->total_floats = sat_add(cfg->total_floats, L.nfloats);
        if (cfg->total_floats > kMaxFloats) {
            o.fail("makes the network too large to address");
        }
        record_out.push_back(b.record_out);
        record_outputs.push_back(b.record_outputs);
        in = L.output_shape;
        // The next layer's l.inputs: a flat layer's l.outputs, else its image.
        inputs = !flat && L.output_shape.size() > 0 ? L.output_shape.size() : b.record_outputs;
        cfg->layers.push_back(std::move(L));
    }
    std::stable_sort(cfg->diagnostics.begin(), cfg->diagnostics.end(),
                     [](const Diagnostic& a, const Diagnostic& b) { return a.line < b.line; });
    if (cfg->diagnostics.size() >= kMaxDiagnostics) {
        cfg->diagnostics.push_back({0, "the first " + std::to_string(kMaxDiagnostics) +
                                           " warnings are shown; the rest are not"});
    }
    return cfg;
}

std::shared_ptr<const Config> parse_config(std::string_view text, const std::string& path) {
    return build_config(read_cfg_text(text, path));
}

std::shared_ptr<const Config> parse_config_file(const std::string& path) {
    return parse_config(read_text_file(path), path);
}

}  // namespace yolo_io
