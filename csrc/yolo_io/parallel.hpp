// Work shared by threads that take items in turn: the process's one pool.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

namespace yolo_io {

// Calls work(item, worker) for item = 0..items-1 on up to `threads` threads:
// this one and up to threads-1 workers of the process's pool (at most
// pool_stats().cap of them), each taking the next item when it is done with
// one, so that a slow item or a busy core does not leave the others idle;
// worker (0..threads-1) names the thread, for per-thread results.
// After the first exception no new item is started; it is rethrown once
// every item started has finished. Returns once every item is done, without
// waiting for a worker that came too late to take one. The pool is started
// on the first call with threads > 1; a worker that cannot be started (any
// exception) leaves the pool smaller and this thread does its share.
// Callers on many threads share the pool; each gets the workers that are free.
void for_each_in_turn(std::size_t items, int threads,
                      const std::function<void(std::size_t item, std::size_t worker)>& work);

// Work handed to the pool's workers while the caller goes on (a walk over a
// network's layers fusing the next ones ahead): items 0..items-1 for up to
// threads-1 workers, each calling work(item, worker) with worker 1..threads-1
// (0 is the caller's, in finish()). Nothing runs when the pool has no
// worker (threads <= 1, none could be started) until finish() does it.
class PostedWork {
public:
    using Work = std::function<void(std::size_t item, std::size_t worker)>;
    static std::shared_ptr<PostedWork> post(std::size_t items, int threads, Work work);
    // Takes the items no worker has taken (on this thread, as worker 0),
    // waits for those running, and rethrows the first exception of any. In
    // the child of a fork() after post(), throws std::runtime_error (the
    // parent's workers are not there to finish their items).
    void finish();
    // No item not yet started will be; waits for those running (not in the
    // child of a fork(), where none runs). Idempotent; the destructor does it
    // too.
    void cancel() noexcept;
    // Every item finished (or skipped after a failure or cancel()).
    bool done() const noexcept;
    ~PostedWork();
    PostedWork(const PostedWork&) = delete;
    PostedWork& operator=(const PostedWork&) = delete;

    struct State;  // parallel.cpp's job

private:
    explicit PostedWork(std::shared_ptr<State> job) : job_(std::move(job)) {}
    std::shared_ptr<State> job_;
};

// The threads a call asking for `threads` can have at most: this one and the
// pool's cap of workers (a `threads=` of 2**31 - 1 is not 2**31 - 1 of
// anything). Per-thread storage is sized by it.
int threads_available(int threads);

// The pool as tests see it: workers ever started in this process (a forked
// child starts again from none), the most of them that ran items at once
// since the last pool_reset_max(), the cap (one fewer than the cores, at
// least 1), those alive, those running items now.
struct PoolStats {
    std::size_t started = 0;
    std::size_t max_active = 0;
    std::size_t cap = 0;
    std::size_t alive = 0;
    std::size_t active = 0;
};
PoolStats pool_stats();
void pool_reset_max();
// Test hook: the next `count` worker starts throw std::bad_alloc.
void pool_fail_next(std::size_t count);

}  // namespace yolo_io
