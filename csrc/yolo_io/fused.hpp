// Fused, transposed, converted arrays of one layer of a Weights file: the
// bridge between the file's layer plan and the pure kernels of fuse.hpp.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "yolo_io/fuse.hpp"
#include "yolo_io/platform.hpp"
#include "yolo_io/weights.hpp"

namespace yolo_io {

// Frees OwnedArray memory (std::malloc or posix_memalign).
struct MallocFree {
    void operator()(std::uint8_t* p) const noexcept;
};

// A new buffer, owned until handed to Python: its own allocation (`data`),
// or a part of a block shared with other arrays (`block`, at `in_block`: the
// arrays of a FusedWalk batch), freed with the last of them.
struct OwnedArray {
    std::unique_ptr<std::uint8_t, MallocFree> data;
    std::shared_ptr<std::uint8_t> block;
    std::uint8_t* in_block = nullptr;
    std::vector<std::int64_t> shape;
    DType dtype = DType::float32;
    std::uint8_t* bytes() const noexcept { return in_block != nullptr ? in_block : data.get(); }
};

struct FusedLayer {
    OwnedArray weights;
    OwnedArray biases;
    FuseReport report;
};

enum class Flatten { automatic, chw, hwc };
Flatten parse_flatten(std::string_view name);  // "auto", "CHW", "HWC"

// Everything a fusion call is asked for, parsed once (std::invalid_argument
// for an unknown name).
struct FuseOptions {
    ConvLayout conv_layout = ConvLayout::OIHW;
    DenseLayout dense_layout = DenseLayout::OI;
    DType dtype = DType::float32;
    Flatten flatten = Flatten::automatic;
    bool fuse = true;  // false: leave the batch norm out (see fuse_layer)
};
// For a whole network: `conv_layout` "" is OIHW; `dense_layout` "" is IO
// beside an NHWC conv layout (HWIO, OHWI) and OI otherwise.
FuseOptions parse_fuse_options(std::string_view conv_layout, std::string_view dense_layout,
                               std::string_view dtype, std::string_view flatten, bool fuse);
// For one layer: `layout` is read as a conv or a dense layout by the layer's
// kind; "" is the kind's default (kinds.hpp). Other kinds ignore it.
FuseOptions parse_layer_fuse_options(const LayerInfo& layer, std::string_view layout,
                                     std::string_view dtype, std::string_view flatten, bool fuse);

// Everything needed to compute one layer's fused arrays: sources, shape,
// layout. A connected layer is planned as the 1x1 convolution it is
// (dense_as_conv), so that both kinds run the same kernels in parts.
struct FusePlan {
    int layer = -1;
    bool conv = true;  // the layer's kind: convolutional (else connected)
    const Weights* source = nullptr;  // the file `src` and `bn` point into
    int source_layer = -1;            // the layer whose data they are (share_index)
    ConvSrc src;                      // pointers into source's mapping
    BatchNormSrc bn;
    ConvLayout layout = ConvLayout::OIHW;  // src's layout for the kernels
    DType dtype = DType::float32;
    std::vector<std::int64_t> weights_shape;
    std::int64_t weights_count = 0;  // elements
    std::int64_t biases_count = 0;
};

// Validates and plans layer `index` (see fuse_layer for the errors).
FusePlan plan_fused(const Weights& weights, int index, const FuseOptions& options);

// Gives an arena's memory back to arena_memory.hpp.
struct ArenaFree {
    std::size_t mapped = 0;  // bytes, as arena_acquire gave them
    void operator()(std::uint8_t* p) const noexcept;
};

// All fused arrays of a network in one 64-byte-aligned allocation
// (arena_memory.hpp: huge pages, and the last freed arena is reused).
struct Arena {
    std::unique_ptr<std::uint8_t, ArenaFree> data;
    std::int64_t size = 0;  // bytes
    struct Entry {
        FusePlan plan;
        std::int64_t weights_offset = 0;  // bytes from data
        std::int64_t biases_offset = 0;
    };
    std::vector<Entry> entries;
    FuseReport report;
};

// Plans every fusable layer (kinds.hpp) that has data, allocates one arena
// and fills it with `threads` threads (at least 1), which share the layers'
// parts (split_conv) as they go.
// Only layers first..last-1 (last < 0: to the end) with first/last given.
Arena fuse_network(const Weights& weights, const FuseOptions& options, int threads,
                   int first = 0, int last = -1);
// The plans fuse_network() runs (shapes, dtype), without computing anything.
std::vector<FusePlan> plan_network(const Weights& weights, const FuseOptions& options,
                                   int first = 0, int last = -1);

// Runs plans into caller buffers with `threads` threads, which take the
// layers' parts (split_conv) in turn; `outputs[k]` is the (weights, biases)
// pair of plans[k]. The parameters are read with pread() into a buffer per
// thread, a part at a time (about 256 KiB, so that it is fused from the
// cache), not through the mapping: a file truncated meanwhile is a
// FormatError naming the layer, not a SIGBUS. From the mapping only for a
// copy or when no descriptor can be made.
FuseReport run_fused_parallel(const std::vector<FusePlan>& plans,
                              const std::vector<std::pair<void*, void*>>& outputs, int threads);

// run_fused_parallel() in steps: plans into caller buffers, cut into parts
// (items()) that threads 0..threads()-1 run with run_item(k, thread), each
// thread at most one item at a time. The constructor reads the plans' small
// arrays (biases, batch norm) with pread; run_item() a part's weights.
class FusionRun {
public:
    FusionRun(std::vector<FusePlan> plans, std::vector<std::pair<void*, void*>> outputs,
              int threads);
    std::size_t items() const { return items_.size(); }
    int threads() const { return threads_; }
    void run_item(std::size_t k, std::size_t thread);
    FuseReport report() const;  // of the items run so far

private:
    struct Item {
        std::size_t plan;
        ConvPart part;
    };
    // A plan's sources as read from its file: its biases and batch norm
    // (read once, they are small).
    struct Source {
        std::vector<float> small;  // biases, then scales, mean, variance with BN
        const float* biases = nullptr;
        BatchNormSrc bn;
    };
    std::vector<FusePlan> plans_;
    std::vector<std::pair<void*, void*>> outputs_;
    std::vector<Item> items_;
    const MappedFile* file_ = nullptr;
    platform::UniqueFd fd_{-1};
    std::vector<Source> sources_;
    int threads_ = 1;
    std::vector<FuseReport> reports_;                  // by thread
    std::vector<std::unique_ptr<float[]>> buffers_;    // by thread, grown to its largest part
    std::vector<std::int64_t> capacity_;
};

// Parts of layers fused so far in this process (a test hook: a layer split
// among threads adds several).
std::int64_t fusion_parts_run() noexcept;
// Calls `hook` once, in the next run_fused_parallel(), after the plans and
// before the first read of the file (a test hook: it truncates the file).
void set_fusion_read_hook(std::function<void()> hook);

// (weights, biases) of convolutional layer `index` (batch norm fused when it
// has one) or connected layer `index` (likewise), in the options' layout and
// dtype.
// A conv with share_index uses the arrays of the layer it shares. Throws
// std::invalid_argument for other layer types, an unknown layout, or HWCM on
// a conv that is not depthwise; std::out_of_range for a layer past the end of
// a partial file.
// With `fuse` false the batch norm is left out: the stored weights and biases
// (beta), only transposed and converted.
FusedLayer fuse_layer(const Weights& weights, int index, const FuseOptions& options,
                      int threads = 1);

class PostedWork;

// fuse_layer() for a caller that goes through a network's layers in order
// (Network.__iter__): each call for layer i returns what fuse_layer() would,
// and hands the next fusable layers (after i, the same arguments) to the
// pool's workers, which fuse them into their own new arrays while the caller
// handles layer i. The lookahead is bounded: at most kLayers layers and
// kBytes of output ahead, and none for a layer larger than kBytes (a large
// layer is shared among the threads when it is asked for, as by fuse_layer).
// It is refilled in batches, when at most one layer is left ahead; the
// weights of a batch share one block of huge pages (an allocation each made
// the page faults cost more than the fusion), freed with the last of its
// arrays; biases are allocations of their own.
// A call for a layer fused ahead with the same arguments takes it, helping
// with its parts still untaken, and drops the layers ahead of it that the
// caller skipped; a call with other arguments is fuse_layer() alone and
// leaves the lookahead as it is. A walk that skips more layers than it takes
// (by more than kLayers) stops looking ahead. A layer whose lookahead failed
// is fused again by the call, which then fails as fuse_layer() does.
// cancel() (and the destructor) stops the lookahead for good: parts not
// started never are, those running are waited for, and the walk lets go of
// the Weights (later calls are fuse_layer() of `live`). In the child of a
// fork(), the parent's lookahead is fused again (PostedWork). Thread-safe.
class FusedWalk {
public:
    static constexpr int kLayers = 16;
    static constexpr std::int64_t kBytes = std::int64_t{32} << 20;

    explicit FusedWalk(std::shared_ptr<const Weights> weights);
    ~FusedWalk();
    FusedWalk(const FusedWalk&) = delete;
    FusedWalk& operator=(const FusedWalk&) = delete;

    // As fuse_layer(live, index, parse_layer_fuse_options(layer, layout,
    // dtype, flatten, fuse), threads), `live` being the walk's Weights;
    // threads <= 1: no lookahead.
    FusedLayer fused(const Weights& live, int index, std::string_view layout,
                     std::string_view dtype, std::string_view flatten, bool fuse, int threads);
    void cancel() noexcept;
    // For tests: layers fused ahead now, and results taken from the lookahead so far.
    int ahead() const;
    std::int64_t taken() const;

    struct Key {
        std::string layout, dtype, flatten;
        bool fuse = true;
        int threads = 1;
        bool operator==(const Key& o) const {
            return layout == o.layout && dtype == o.dtype && flatten == o.flatten &&
                   fuse == o.fuse && threads == o.threads;
        }
    };
    struct Ahead;

private:
    void refill(int after, const Key& key);  // under mutex_

    std::shared_ptr<const Weights> weights_;
    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<Ahead>> ahead_;  // in layer order
    std::int64_t taken_ = 0;
    std::int64_t skipped_ = 0;  // fused ahead and dropped, never asked for
    bool cancelled_ = false;    // no lookahead after cancel()
    bool stopped_ = false;      // no lookahead: the walk skips layers
};

}  // namespace yolo_io
