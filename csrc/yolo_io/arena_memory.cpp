#include "yolo_io/arena_memory.hpp"

#include <cstdint>
#include <mutex>
#include <new>

#include "yolo_io/platform.hpp"

namespace yolo_io {

namespace {

constexpr std::size_t kArenaHuge = std::size_t{2} << 20;

struct ArenaCache {
    std::mutex mutex;
    ArenaBlock block;
    std::size_t users = 0;  // live ArenaUser objects
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
    return old.size;
}

std::size_t arena_cached_bytes() noexcept {
    ArenaCache& c = arena_cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    return c.block.size;
}

ArenaUser::ArenaUser() noexcept {
    ArenaCache& c = arena_cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    ++c.users;
}

ArenaUser::ArenaUser(const ArenaUser&) noexcept : ArenaUser() {}

ArenaUser::~ArenaUser() {
    ArenaBlock old;
    {
        ArenaCache& c = arena_cache();
        std::lock_guard<std::mutex> lock(c.mutex);
        if (--c.users == 0) {
            old = c.block;
            c.block = {};
        }
    }
    arena_unmap(old);
}

}  // namespace yolo_io
