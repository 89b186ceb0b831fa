#include "yolo_io/arena_memory.hpp"

#include <sys/mman.h>

#include <cstdint>
#include <mutex>
#include <new>

namespace yolo_io {

namespace {

constexpr std::size_t kHuge = std::size_t{2} << 20;

struct Cache {
    std::mutex mutex;
    ArenaBlock block;
};

// Never destroyed: capsules may free arenas during interpreter shutdown,
// after static destructors would have run.
Cache& cache() {
    static Cache* c = new Cache;
    return *c;
}

ArenaBlock map_fresh(std::size_t bytes) {
    if (bytes < kHuge) {
        void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        return {p, bytes};
    }
    // A whole number of huge pages. The kernel places an anonymous mapping of
    // 2 MB or more at a 2 MB boundary (Linux 6.7+); over-mapping and trimming
    // it by hand, as before, cost two munmap calls per arena, and each can
    // wait for the other cores to flush their TLBs.
    const std::size_t size = (bytes + kHuge - 1) / kHuge * kHuge;
    void* data = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (data == MAP_FAILED) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    ::madvise(data, size, MADV_HUGEPAGE);  // one fault and one zeroing per 2 MB
#endif
    return {data, size};
}

// Puts `block` in the cache slot and returns what was there.
ArenaBlock exchange_cached(ArenaBlock block) noexcept {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    const ArenaBlock old = c.block;
    c.block = block;
    return old;
}

}  // namespace

ArenaBlock arena_acquire(std::size_t bytes) {
    if (bytes == 0) bytes = 1;
    const ArenaBlock cached = exchange_cached({});
    // Reuse a cached block that fits without wasting more than half of it.
    if (cached.data != nullptr && cached.size >= bytes && cached.size / 2 <= bytes + kHuge) {
        return cached;
    }
    if (cached.data != nullptr) ::munmap(cached.data, cached.size);
    return map_fresh(bytes);
}

void arena_release(ArenaBlock block) noexcept {
    if (block.data == nullptr) return;
#ifdef MADV_FREE
    // The kernel may take the pages back under memory pressure (reuse then
    // faults in zeroed pages, as a fresh mapping would).
    ::madvise(block.data, block.size, MADV_FREE);
#endif
    const ArenaBlock old = exchange_cached(block);
    if (old.data != nullptr) ::munmap(old.data, old.size);
}

std::size_t arena_release_cached() noexcept {
    const ArenaBlock old = exchange_cached({});
    if (old.data != nullptr) ::munmap(old.data, old.size);
    return old.size;
}

}  // namespace yolo_io
