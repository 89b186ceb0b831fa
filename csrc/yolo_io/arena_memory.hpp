// Memory for fusion arenas and large layer.fused() outputs: anonymous
// mappings, advised for huge pages when of 2 MB or more (which Linux 6.7+
// places at a 2 MB boundary), with a one-slot cache of the last block freed.
//
// Why a cache: a fresh mapping costs a page fault and a kernel zeroing pass
// per page, which on yolov4 (257 MB) is as slow as the fusion itself. glibc
// reuses freed memory only below its 32 MB mmap threshold, so per-layer
// buffers (layer.fused()) are recycled but one large arena never is. The
// cache keeps the most recently freed arena of at most kArenaCacheMax bytes,
// with MADV_FREE so that the kernel may still reclaim its pages under memory
// pressure, and hands it to the next arena of a similar size.
//
// MADV_FREE does not lower the resident set (cgroups charge it), so the
// cache is kept only while a network lives: every Weights holds an
// ArenaUser, and when the last one goes the cached block is unmapped.
// Network.close() and release_cached() unmap it at once.
#pragma once

#include <cstddef>

namespace yolo_io {

struct ArenaBlock {
    void* data = nullptr;
    std::size_t size = 0;  // bytes mapped (>= the size asked for)
};

// The largest block the cache keeps (a larger one is unmapped when freed).
constexpr std::size_t kArenaCacheMax = std::size_t{512} << 20;

// At least `bytes` (> 0) of writable memory, page aligned. Throws
// std::bad_alloc.
ArenaBlock arena_acquire(std::size_t bytes);
// Returns a block from arena_acquire; it is cached for reuse while an
// ArenaUser lives and it is at most kArenaCacheMax bytes, else unmapped.
void arena_release(ArenaBlock block) noexcept;
// A block of memory for FusedWalk's arrays, outside the arena's one-slot
// cache (a cached fused_all() arena stays) and outside malloc's heap (where
// a kept small array would pin the freed memory around it): a freed block of
// the same size, else a new mapping. arena_block_unmap keeps it for reuse,
// up to 64 MiB of blocks, with the cached arena's rules (MADV_FREE, only
// while a network lives, released by arena_release_cached), else unmaps it.
// Its size is rounded up to whole huge pages (so that the kernel aligns it),
// all advised for them.
ArenaBlock arena_block_map(std::size_t bytes);
void arena_block_unmap(ArenaBlock block) noexcept;
// Unmaps the cached block and walk blocks, if any; returns the bytes released.
std::size_t arena_release_cached() noexcept;
// Bytes held by the cache and the walk blocks now (for tests).
std::size_t arena_cached_bytes() noexcept;

// One user of the cache (a Weights): the cache keeps a block only while at
// least one lives, and is emptied when the last is destroyed.
class ArenaUser {
  public:
    ArenaUser() noexcept;
    ArenaUser(const ArenaUser&) noexcept;
    ArenaUser& operator=(const ArenaUser&) noexcept { return *this; }
    ~ArenaUser();
};

}  // namespace yolo_io
