#include "yolo_io/arena_memory.hpp"

#include <cstdint>
#include <mutex>
#include <new>
#include <vector>

#include "yolo_io/platform.hpp"

namespace yolo_io {

namespace {

constexpr std::size_t kArenaHuge = std::size_t{2} << 20;

// The largest total of FusedWalk blocks kept for reuse.
constexpr std::size_t kBlockCacheMax = std::size_t{64} << 20;

struct ArenaCache {
    std::mutex mutex;
    ArenaBlock block;
    std::size_t users = 0;  // live ArenaUser objects
    std::vector<ArenaBlock> blocks;  // freed FusedWalk blocks, for the next walk
    std::size_t block_bytes = 0;
};

// Never destroyed: capsules may free arenas during interpreter shutdown,
// after static destructors would have run.
ArenaCache& arena_cache() {
    static ArenaCache* c = new ArenaCache;
    return *c;
}

void arena_unmap(ArenaBlock block) noexcept {
    if (block.data != nullptr) platform::unmap(block.data, block.size);
}

ArenaBlock arena_map_fresh(std::size_t bytes) {
    if (bytes < kArenaHuge) {
        int error = 0;
        void* p = platform::map_anonymous(bytes, error);
        if (p == nullptr) throw std::bad_alloc();
        return {p, bytes};
    }
    // A whole number of huge pages. The kernel places an anonymous mapping of
    // 2 MB or more at a 2 MB boundary (Linux 6.7+); over-mapping and trimming
    // it by hand, as before, cost two munmap calls per arena, and each can
    // wait for the other cores to flush their TLBs.
    const std::size_t size = (bytes + kArenaHuge - 1) / kArenaHuge * kArenaHuge;
    int error = 0;
    void* data = platform::map_anonymous(size, error);
    if (data == nullptr) throw std::bad_alloc();
    // One fault and one zeroing per 2 MB (Linux; a no-op elsewhere).
    platform::advise(data, size, platform::Advice::huge_page);
    return {data, size};
}

// Takes the cached block out of the cache.
ArenaBlock arena_take_cached() noexcept {
    ArenaCache& c = arena_cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    const ArenaBlock old = c.block;
    c.block = {};
    return old;
}

}  // namespace

ArenaBlock arena_acquire(std::size_t bytes) {
    if (bytes == 0) bytes = 1;
    const ArenaBlock cached = arena_take_cached();
    // Reuse a cached block that fits without wasting more than half of it.
    if (cached.data != nullptr && cached.size >= bytes && cached.size / 2 <= bytes + kArenaHuge) {
        return cached;
    }
    arena_unmap(cached);
    return arena_map_fresh(bytes);
}

ArenaBlock arena_block_map(std::size_t bytes) {
    if (bytes == 0) bytes = 1;
    // A whole number of huge pages, which the kernel places at a 2 MB
    // boundary (an odd length it may not align, and then no page of it is
    // huge: 13,000 page faults instead of 1,300 for yolov4), all advised.
    const std::size_t size = (bytes + kArenaHuge - 1) / kArenaHuge * kArenaHuge;
    {  // a freed block of that size: a walk over the same network again
        ArenaCache& c = arena_cache();
        std::lock_guard<std::mutex> lock(c.mutex);
        for (auto it = c.blocks.begin(); it != c.blocks.end(); ++it) {
            if (it->size == size) {
                const ArenaBlock found = *it;
                c.blocks.erase(it);
                c.block_bytes -= size;
                return found;
            }
        }
    }
    int error = 0;
    void* data = platform::map_anonymous(size, error);
    if (data == nullptr) throw std::bad_alloc();
    platform::advise(data, size, platform::Advice::huge_page);
    return {data, size};
}

void arena_block_unmap(ArenaBlock block) noexcept {
    if (block.data == nullptr) return;
    // Kept for the next walk while a network lives (up to kBlockCacheMax), its
    // pages reclaimable meanwhile (MADV_FREE), as the cached arena's.
    platform::advise(block.data, block.size, platform::Advice::free);
    {
        ArenaCache& c = arena_cache();
        std::lock_guard<std::mutex> lock(c.mutex);
        if (c.users > 0 && c.block_bytes + block.size <= kBlockCacheMax) {
            try {
                c.blocks.push_back(block);
                c.block_bytes += block.size;
                return;
            } catch (...) {  // no memory to remember it: unmapped below
            }
        }
    }
    arena_unmap(block);
}

// Takes every cached walk block out of the cache.
std::vector<ArenaBlock> arena_take_blocks() noexcept {
    ArenaCache& c = arena_cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    std::vector<ArenaBlock> out;
    out.swap(c.blocks);
    c.block_bytes = 0;
    return out;
}

void arena_release(ArenaBlock block) noexcept {
    if (block.data == nullptr) return;
    if (block.size > kArenaCacheMax) {
        arena_unmap(block);
        return;
    }
    // Before the block is in the cache, where another thread may take it:
    // the kernel may take the pages back under memory pressure (reuse then
    // faults in zeroed pages, as a fresh mapping would). A no-op without
    // MADV_FREE.
    platform::advise(block.data, block.size, platform::Advice::free);
    ArenaBlock old = block;  // unmapped below: the block itself without a user
    {
        ArenaCache& c = arena_cache();
        std::lock_guard<std::mutex> lock(c.mutex);
        if (c.users > 0) {
            old = c.block;
            c.block = block;
        }
    }
    arena_unmap(old);
}

std::size_t arena_release_cached() noexcept {
    const ArenaBlock old = arena_take_cached();
    arena_unmap(old);
    std::size_t released = old.size;
    for (const ArenaBlock& b : arena_take_blocks()) {
        arena_unmap(b);
        released += b.size;
    }
    return released;
}

std::size_t arena_cached_bytes() noexcept {
    ArenaCache& c = arena_cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    return c.block.size + c.block_bytes;
}

ArenaUser::ArenaUser() noexcept {
    ArenaCache& c = arena_cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    ++c.users;
}

ArenaUser::ArenaUser(const ArenaUser&) noexcept : ArenaUser() {}

ArenaUser::~ArenaUser() {
    ArenaBlock old;
    std::vector<ArenaBlock> blocks;
    {
        ArenaCache& c = arena_cache();
        std::lock_guard<std::mutex> lock(c.mutex);
        if (--c.users == 0) {
            old = c.block;
            c.block = {};
            blocks.swap(c.blocks);
            c.block_bytes = 0;
        }
    }
    arena_unmap(old);
    for (const ArenaBlock& b : blocks) arena_unmap(b);
}

}  // namespace yolo_io
