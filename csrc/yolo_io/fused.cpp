#include "yolo_io/fused.hpp"

#include "yolo_io/arena_memory.hpp"
#include "yolo_io/errors.hpp"
#include "yolo_io/parallel.hpp"
#include "yolo_io/platform.hpp"

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <stdexcept>

namespace yolo_io {

namespace {

using i64 = std::int64_t;

struct Found {
    const float* data = nullptr;
    const ParamSpec* spec = nullptr;
};

// `data` is layer_data(index), which checks that the file still holds the
// layer's bytes: the plan is made before any worker thread reads them.
Found find(const Weights& w, int index, const float* data, std::string_view name) {
    const LayerInfo& layer = w.config().layers[static_cast<std::size_t>(index)];
    for (const auto& p : layer.params) {
        if (p.prefix.empty() && p.base == name) {
            return {data + p.offset, &p};
        }
    }
    return {};
}

// From this size on, an output starts at a 2 MB boundary and its whole 2 MB
// pages are advised for huge pages (as NumPy advises its own large arrays): a
// first call then pays one page fault per 2 MB instead of one per 4 KB. The
// tail stays in 4 KB pages, so no array takes more memory than its size. The
// memory stays glibc's, which reuses it once freed.
constexpr std::size_t kLargeOutput = std::size_t{1} << 20;
constexpr std::size_t kHugePage = std::size_t{2} << 20;

OwnedArray allocate(std::vector<i64> shape, DType dtype) {
    i64 n = 1;
    for (i64 d : shape) n *= d;
    OwnedArray a;
    a.shape = std::move(shape);
    a.dtype = dtype;
    const auto bytes = static_cast<std::size_t>(n * dtype_size(dtype));
    void* p = nullptr;
    if (bytes >= kLargeOutput) {
        p = platform::allocate_aligned(kHugePage, bytes);
        const std::size_t whole = bytes / kHugePage * kHugePage;
        if (p != nullptr && whole > 0) platform::advise(p, whole, platform::Advice::huge_page);
    } else {
        p = std::malloc(bytes + 1);
    }
    if (p == nullptr) throw std::bad_alloc();
    a.data.reset(static_cast<std::uint8_t*>(p));
    return a;
}

std::string where(const Weights& w, int index) {
    const LayerInfo& L = w.config().layers[static_cast<std::size_t>(index)];
    return "layer " + std::to_string(index) + " (" + std::string(L.type) + ", " +
           w.config().path + " line " + std::to_string(L.line) + ")";
}

}  // namespace

Flatten parse_flatten(std::string_view name) {
    if (name == "auto") return Flatten::automatic;
    if (name == "CHW") return Flatten::chw;
    if (name == "HWC") return Flatten::hwc;
    throw std::invalid_argument("flatten must be 'auto', 'CHW' or 'HWC', not '" +
                                std::string(name) + "'");
}

FuseOptions parse_fuse_options(std::string_view conv_layout, std::string_view dense_layout,
                               std::string_view dtype, std::string_view flatten, bool fuse) {
    FuseOptions o;
    o.conv_layout = parse_conv_layout(conv_layout.empty() ? default_layout(FuseAs::conv)
                                                          : conv_layout);
    if (!dense_layout.empty()) {
        o.dense_layout = parse_dense_layout(dense_layout);
    } else if (o.conv_layout == ConvLayout::HWIO || o.conv_layout == ConvLayout::OHWI) {
        o.dense_layout = DenseLayout::IO;  // beside an NHWC conv layout: that framework's Dense
    } else {
        o.dense_layout = parse_dense_layout(default_layout(FuseAs::dense));
    }
    o.dtype = parse_dtype(dtype);
    o.flatten = parse_flatten(flatten);
    o.fuse = fuse;
    return o;
}

FuseOptions parse_layer_fuse_options(const LayerInfo& layer, std::string_view layout,
                                     std::string_view dtype, std::string_view flatten, bool fuse) {
    const FuseAs as = layer.kind_info().fuse;
    return parse_fuse_options(as == FuseAs::conv ? layout : "", as == FuseAs::dense ? layout : "",
                              dtype, flatten, fuse);
}

FusePlan plan_fused(const Weights& w, int index, const FuseOptions& options) {
    const DType dtype = options.dtype;
    const LayerInfo& layer = w.config().layers.at(static_cast<std::size_t>(index));
    const FuseAs as = layer.kind_info().fuse;
    const bool conv = as == FuseAs::conv;
    if (as == FuseAs::none) {
        throw std::invalid_argument(where(w, index) + " has no weights to fuse: fused() is for "
                                    "convolutional and connected layers");
    }
    int src = conv && layer.share_index >= 0 ? layer.share_index : index;
    if (!w.loaded(src)) {
        throw std::out_of_range(where(w, src) + " is past the end of this partial file");
    }
    const float* data = w.layer_data(src);
    const Found weights = find(w, src, data, "weights");
    const Found biases = find(w, src, data, "biases");
    if (weights.data == nullptr || biases.data == nullptr) {
        throw std::invalid_argument(where(w, index) + " stores no weights (dontload=1)");
    }
    FusePlan plan;
    plan.layer = index;
    plan.conv = conv;
    plan.source = &w;
    plan.source_layer = src;
    plan.dtype = dtype;
    if (options.fuse) {
        plan.bn.scales = find(w, src, data, "scales").data;
        plan.bn.mean = find(w, src, data, "rolling_mean").data;
        plan.bn.variance = find(w, src, data, "rolling_variance").data;
    }
    const ParamSpec& p = *weights.spec;
    const std::vector<i64> st = w.element_strides(p);
    if (conv) {
        plan.layout = options.conv_layout;
        ConvSrc s{weights.data, p.shape[0], p.shape[1], p.shape[2], p.shape[3],
                  st[0],        st[1],      st[2],      st[3],      biases.data};
        switch (plan.layout) {
            case ConvLayout::OIHW: plan.weights_shape = {s.o, s.i, s.h, s.w}; break;
            case ConvLayout::HWIO: plan.weights_shape = {s.h, s.w, s.i, s.o}; break;
            case ConvLayout::OHWI: plan.weights_shape = {s.o, s.h, s.w, s.i}; break;
            case ConvLayout::HWCM: {
                const i64 c = layer.input_shape.c;
                if (s.i != 1 || c < 1 || s.o % c != 0) {
                    throw std::invalid_argument(
                        where(w, index) + " is not a depthwise convolution (groups = channels = " +
                        std::to_string(c) + ", filters a multiple of it); HWCM is Keras "
                        "DepthwiseConv2D's layout, use HWIO");
                }
                plan.weights_shape = {s.h, s.w, c, s.o / c};
                break;
            }
        }
        plan.src = s;
        plan.weights_count = s.o * s.i * s.h * s.w;
        plan.biases_count = s.o;
        return plan;
    }
    DenseSrc s{weights.data, p.shape[0], p.shape[1], st[0], st[1], biases.data};
    const Shape3& in = layer.input_shape;
    const bool image = in.h * in.w > 1 && in.size() == s.i;
    const bool hwc = options.flatten == Flatten::hwc ||
                     (options.flatten == Flatten::automatic && options.dense_layout == DenseLayout::IO);
    if (hwc && image) {
        s.to_hwc = true;
        s.c = in.c;
        s.h = in.h;
        s.w = in.w;
    }
    plan.weights_shape = options.dense_layout == DenseLayout::OI ? std::vector<i64>{s.o, s.i}
                                                                 : std::vector<i64>{s.i, s.o};
    plan.src = dense_as_conv(s);
    plan.layout = dense_as_conv_layout(s, options.dense_layout);
    plan.weights_count = s.o * s.i;
    plan.biases_count = s.o;
    return plan;
}

FusedLayer fuse_layer(const Weights& w, int index, const FuseOptions& options, int threads) {
    FusePlan plan = plan_fused(w, index, options);
    FusedLayer out;
    out.weights = allocate(plan.weights_shape, options.dtype);
    out.biases = allocate({plan.biases_count}, options.dtype);
    out.report = run_fused_parallel({plan}, {{out.weights.bytes(), out.biases.bytes()}},
                                    threads);
    return out;
}

void ArenaFree::operator()(std::uint8_t* p) const noexcept { arena_release({p, mapped}); }

void MallocFree::operator()(std::uint8_t* p) const noexcept { std::free(p); }

namespace {

std::atomic<std::int64_t> g_fusion_parts{0};
std::mutex g_fusion_hook_mutex;
std::function<void()> g_fusion_read_hook;

// Byte offset in `file` of a pointer into its mapping.
std::int64_t fusion_file_offset(const MappedFile& file, const float* p) {
    return reinterpret_cast<const std::uint8_t*>(p) - file.data();
}

// Runs `read`, turning the FormatError of a file truncated meanwhile into
// the one naming the layer whose data it no longer holds.
template <class Read>
void fusion_read(const FusePlan& plan, Read&& read) {
    try {
        read();
    } catch (const FormatError&) {
        plan.source->check_held(plan.source_layer, plan.source_layer + 1);
        throw;
    }
}

}  // namespace

std::int64_t fusion_parts_run() noexcept { return g_fusion_parts.load(); }

void set_fusion_read_hook(std::function<void()> hook) {
    std::lock_guard<std::mutex> lock(g_fusion_hook_mutex);
    g_fusion_read_hook = std::move(hook);
}

FusionRun::FusionRun(std::vector<FusePlan> plans, std::vector<std::pair<void*, void*>> outputs,
                     int threads)
    : plans_(std::move(plans)),
      outputs_(std::move(outputs)),
      // One descriptor per file (every plan of a call has the same one).
      file_(plans_.empty() ? nullptr : plans_[0].source->file().get()),
      fd_(file_ != nullptr ? file_->reopen() : -1) {
    // Layers are cut into parts of about 256 KiB (split_conv) that the
    // workers take in turn, biggest layers first: a static split by layer
    // left one worker idle for up to a third of an HWIO call, because a
    // layer's cost is not proportional to its size and a noisy neighbour
    // slows one core and not the other. A part's weights are one run of the
    // file, read into the worker's buffer, which stays in its L2 cache (1 MiB
    // measured slower than 256 KiB: it no longer fits beside the output's
    // lines) for the fusion that follows.
    constexpr i64 kPartWeights = i64{1} << 16;
    std::vector<std::size_t> order(plans_.size());
    for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return plans_[a].weights_count > plans_[b].weights_count;
    });
    for (std::size_t k : order) {
        for (const ConvPart& part : split_conv(plans_[k].src, plans_[k].layout, kPartWeights)) {
            items_.push_back({k, part});
        }
    }
    {
        std::function<void()> hook;
        {
            std::lock_guard<std::mutex> lock(g_fusion_hook_mutex);
            hook.swap(g_fusion_read_hook);
        }
        if (hook) hook();
    }
    for (const FusePlan& plan : plans_) {
        if (plan.source->file().get() != file_) {
            throw std::invalid_argument("run_fused_parallel: plans of several files");
        }
    }
    const int fd = fd_.get();
    sources_.resize(fd >= 0 ? plans_.size() : 0);
    for (std::size_t k = 0; k < sources_.size(); ++k) {
        const FusePlan& plan = plans_[k];
        Source& s = sources_[k];
        const i64 o = plan.src.o;
        const float* arrays[4] = {plan.src.biases, plan.bn.scales, plan.bn.mean,
                                  plan.bn.variance};
        const int n = plan.bn.present() ? 4 : 1;
        s.small.resize(static_cast<std::size_t>(n * o));
        fusion_read(plan, [&] {
            // Arrays that follow each other in the file (a conv's biases and
            // batch norm) are one read.
            for (int a = 0; a < n;) {
                int b = a + 1;
                while (b < n && arrays[b] == arrays[b - 1] + o) ++b;
                file_->read_at(fd, reinterpret_cast<std::uint8_t*>(s.small.data() + a * o),
                               static_cast<std::size_t>((b - a) * o * 4),
                               fusion_file_offset(*file_, arrays[a]));
                a = b;
            }
        });
        s.biases = s.small.data();
        if (plan.bn.present()) {
            s.bn = {s.small.data() + o, s.small.data() + 2 * o, s.small.data() + 3 * o};
        }
    }
    threads_ = threads_available(threads);
    const auto workers = static_cast<std::size_t>(threads_);
    reports_.resize(workers);
    buffers_.resize(workers);
    capacity_.assign(workers, 0);
}

void FusionRun::run_item(std::size_t k, std::size_t t) {
    const FusePlan& plan = plans_[items_[k].plan];
    const ConvPart& part = items_[k].part;
    const auto& [w, b] = outputs_[items_[k].plan];
    PartInput in;
    if (fd_.get() < 0) {
        in = part_input(plan.src, plan.bn, part);
    } else {
        const Source& s = sources_[items_[k].plan];
        const PartSpan span = part_span(plan.src, part);
        if (capacity_[t] < span.count) {
            buffers_[t].reset(new float[static_cast<std::size_t>(span.count)]);
            capacity_[t] = span.count;
        }
        fusion_read(plan, [&] {
            file_->read_at(fd_.get(), reinterpret_cast<std::uint8_t*>(buffers_[t].get()),
                           static_cast<std::size_t>(span.count * 4),
                           fusion_file_offset(*file_, plan.src.weights + span.first));
        });
        in.weights = buffers_[t].get();
        in.biases = s.biases + part.o0;
        if (s.bn.present()) {
            in.bn = {s.bn.scales + part.o0, s.bn.mean + part.o0, s.bn.variance + part.o0};
        }
    }
    const FuseReport r = fuse_conv(plan.src, in, plan.layout, plan.dtype, w, b, part);
    reports_[t].overflow += r.overflow;
    g_fusion_parts.fetch_add(1, std::memory_order_relaxed);
}

FuseReport FusionRun::report() const {
    FuseReport total;
    for (const FuseReport& r : reports_) total.overflow += r.overflow;
    return total;
}

FuseReport run_fused_parallel(const std::vector<FusePlan>& plans,
                              const std::vector<std::pair<void*, void*>>& outputs, int threads) {
    FusionRun run(plans, outputs, threads);
    for_each_in_turn(run.items(), run.threads(),
                     [&](std::size_t k, std::size_t t) { run.run_item(k, t); });
    return run.report();
}

std::vector<FusePlan> plan_network(const Weights& w, const FuseOptions& options, int first,
                                   int last) {
    const Config& c = w.config();
    const int n = static_cast<int>(c.layers.size());
    last = last < 0 ? n : std::min(last, n);
    std::vector<FusePlan> plans;
    for (int i = std::max(first, 0); i < last; ++i) {
        const LayerInfo& L = c.layers[static_cast<std::size_t>(i)];
        const FuseAs as = L.kind_info().fuse;
        if (as == FuseAs::none) continue;
        const bool conv = as == FuseAs::conv;
        const int src = conv && L.share_index >= 0 ? L.share_index : i;
        if (!w.loaded(src) || L.dontload) continue;
        plans.push_back(plan_fused(w, i, options));
    }
    return plans;
}

Arena fuse_network(const Weights& w, const FuseOptions& options, int threads, int first,
                   int last) {
    const DType dtype = options.dtype;
    Arena arena;
    constexpr i64 kAlign = 64;
    auto align = [](i64 v) { return (v + kAlign - 1) / kAlign * kAlign; };
    i64 pos = 0;
    for (FusePlan& plan : plan_network(w, options, first, last)) {
        Arena::Entry e;
        e.plan = std::move(plan);
        e.weights_offset = pos;
        pos = align(pos + e.plan.weights_count * dtype_size(dtype));
        e.biases_offset = pos;
        pos = align(pos + e.plan.biases_count * dtype_size(dtype));
        arena.entries.push_back(std::move(e));
    }
    arena.size = pos;
    const ArenaBlock block = arena_acquire(static_cast<std::size_t>(pos));
    arena.data = std::unique_ptr<std::uint8_t, ArenaFree>(static_cast<std::uint8_t*>(block.data),
                                                          ArenaFree{block.size});
    std::vector<FusePlan> plans;
    std::vector<std::pair<void*, void*>> outputs;
    plans.reserve(arena.entries.size());
    for (const auto& e : arena.entries) {
        plans.push_back(e.plan);
        outputs.emplace_back(arena.data.get() + e.weights_offset, arena.data.get() + e.biases_offset);
    }
    arena.report = run_fused_parallel(plans, outputs, threads);
    return arena;
}

}  // namespace yolo_io

namespace yolo_io {

// A layer fused ahead: its new arrays, the parts' run and the posted work
// that fills them. The work is cancelled (and waited for) before the arrays
// and the run go.
struct FusedWalk::Ahead {
    int layer = -1;
    Key key;
    FusedLayer out;
    std::unique_ptr<FusionRun> run;
    std::shared_ptr<PostedWork> work;
    ~Ahead() {
        if (work) work->cancel();
    }
};

FusedWalk::FusedWalk(std::shared_ptr<const Weights> weights) : weights_(std::move(weights)) {}

FusedWalk::~FusedWalk() { cancel(); }

void FusedWalk::cancel() noexcept {
    std::shared_ptr<const Weights> released;
    std::vector<std::unique_ptr<Ahead>> dropped;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        cancelled_ = true;
        dropped.swap(ahead_);
        released.swap(weights_);  // the walk no longer keeps the file mapped
    }
    // Outside the lock: dropping a layer ahead waits for its running parts,
    // which read the file; only then may the Weights go.
    dropped.clear();
    released.reset();
}

int FusedWalk::ahead() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<int>(ahead_.size());
}

std::int64_t FusedWalk::taken() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return taken_;
}

namespace {

// The weights of a batch share one block (whole huge pages, mapped for them:
// fresh memory in 4 KB pages, or a mapping per array, cost more page faults
// than the fusion), outside the arena cache (a cached fused_all() arena
// stays) and outside malloc's heap (where a kept bias would pin the freed
// memory around it); a bias vector is allocate()d on its own. A kept weights
// array keeps its block (at most kBytes) mapped.
std::shared_ptr<std::uint8_t> walk_block(std::int64_t bytes) {
    const ArenaBlock b = arena_block_map(static_cast<std::size_t>(bytes));
    return std::shared_ptr<std::uint8_t>(  // on a throw, the deleter unmaps it
        static_cast<std::uint8_t*>(b.data),
        [size = b.size](std::uint8_t* p) { arena_block_unmap({p, size}); });
}

}  // namespace

void FusedWalk::refill(int after, const Key& key) {
    if (cancelled_ || stopped_ || ahead_.size() > 1 || threads_available(key.threads) <= 1) {
        return;
    }
    const Weights& w = *weights_;
    const Config& c = w.config();
    const int n = static_cast<int>(c.layers.size());
    const int next = ahead_.empty() ? after + 1 : ahead_.back()->layer + 1;
    std::int64_t bytes = 0;
    for (const auto& a : ahead_) {
        std::int64_t count = 1;
        for (std::int64_t d : a->out.weights.shape) count *= d;
        bytes += count * dtype_size(a->out.weights.dtype);
    }
    // The batch: the next layers that fit.
    struct Planned {
        int layer;
        FusePlan plan;
        DType dtype;
        std::int64_t size;  // the weights' bytes
    };
    std::vector<Planned> batch;
    for (int i = next; i < n && ahead_.size() + batch.size() < static_cast<std::size_t>(kLayers);
         ++i) {
        const LayerInfo& L = c.layers[static_cast<std::size_t>(i)];
        const FuseAs as = L.kind_info().fuse;
        if (as == FuseAs::none) continue;
        const int src = as == FuseAs::conv && L.share_index >= 0 ? L.share_index : i;
        if (!w.loaded(src) || L.dontload) break;  // fused() of it fails: leave it to the call
        try {
            const FuseOptions options =
                parse_layer_fuse_options(L, key.layout, key.dtype, key.flatten, key.fuse);
            FusePlan plan = plan_fused(w, i, options);
            const std::int64_t size = plan.weights_count * dtype_size(options.dtype);
            if (bytes + size > kBytes) break;
            bytes += size;
            batch.push_back({i, std::move(plan), options.dtype, size});
        } catch (...) {
            break;  // not ahead: the call for it meets the same failure, in its turn
        }
    }
    if (batch.empty()) return;
    // The batch's weights, each at a 64-byte boundary of one block.
    std::vector<std::int64_t> at(batch.size());
    std::int64_t total = 0;
    for (std::size_t k = 0; k < batch.size(); ++k) {
        at[k] = (total + 63) / 64 * 64;
        total = at[k] + batch[k].size;
    }
    std::shared_ptr<std::uint8_t> block;
    try {
        block = walk_block(total);
    } catch (...) {
        return;  // no memory for a lookahead: each call fuses its own layer
    }
    for (std::size_t k = 0; k < batch.size(); ++k) {
        Planned& p = batch[k];
        try {
            auto a = std::make_unique<Ahead>();
            a->layer = p.layer;
            a->key = key;
            OwnedArray& weights = a->out.weights;
            weights.shape = p.plan.weights_shape;
            weights.dtype = p.dtype;
            weights.block = block;
            weights.in_block = block.get() + at[k];
            a->out.biases = allocate({p.plan.biases_count}, p.dtype);
            a->run = std::make_unique<FusionRun>(
                std::vector<FusePlan>{std::move(p.plan)},
                std::vector<std::pair<void*, void*>>{{weights.bytes(), a->out.biases.bytes()}},
                key.threads);
            FusionRun* run = a->run.get();
            a->work = PostedWork::post(run->items(), run->threads(),
                                       [run](std::size_t k2, std::size_t t) { run->run_item(k2, t); });
            ahead_.push_back(std::move(a));
        } catch (...) {
            return;  // no memory or no worker for more: each later call fuses its own layer
        }
    }
}

FusedLayer FusedWalk::fused(const Weights& live, int index, std::string_view layout,
                            std::string_view dtype, std::string_view flatten, bool fuse,
                            int threads) {
    const Key key{std::string(layout), std::string(dtype), std::string(flatten), fuse, threads};
    // Declared first, so destroyed last: the Weights the layers taken out of
    // the lookahead read, alive until their parts are done even if cancel()
    // lets go of the walk's reference meanwhile.
    std::shared_ptr<const Weights> reading;
    std::unique_ptr<Ahead> found;
    std::vector<std::unique_ptr<Ahead>> dropped;  // destroyed outside the lock
    {
        std::lock_guard<std::mutex> lock(mutex_);
        reading = weights_;
        // A call with other arguments than the lookahead's (the same layer
        // fused twice, in two layouts; bn_params() beside fused()) is
        // answered on its own, and the lookahead is left for the walk.
        if (weights_ && (ahead_.empty() || ahead_.front()->key == key)) {
            auto keep = ahead_.begin();
            while (keep != ahead_.end() && (*keep)->layer < index) ++keep;
            skipped_ += keep - ahead_.begin();  // fused ahead, never asked for
            if (keep != ahead_.end() && (*keep)->layer == index) {
                found = std::move(*keep);
                ++keep;
            }
            dropped.assign(std::make_move_iterator(ahead_.begin()),
                           std::make_move_iterator(keep));
            ahead_.erase(ahead_.begin(), keep);
            // A walk that skips most layers (every 4th, ...) gains nothing
            // from a lookahead that fuses them all: it stops.
            if (skipped_ > taken_ + kLayers) {
                stopped_ = true;
                for (auto& a : ahead_) dropped.push_back(std::move(a));
                ahead_.clear();
            }
            refill(index, key);
        }
    }
    dropped.clear();  // waits for their running parts, outside the lock
    if (found) {
        try {
            found->work->finish();
            FusedLayer out = std::move(found->out);
            out.report = found->run->report();
            std::lock_guard<std::mutex> lock(mutex_);
            ++taken_;
            return out;
        } catch (...) {
            // fused again below, so that the call fails (or not) as fuse_layer() would
        }
        found.reset();
    }
    const LayerInfo& L = live.config().layers.at(static_cast<std::size_t>(index));
    return fuse_layer(live, index, parse_layer_fuse_options(L, layout, dtype, flatten, fuse),
                      threads);
}

}  // namespace yolo_io
