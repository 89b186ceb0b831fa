#include "yolo_io/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <thread>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define YOLO_IO_PARALLEL_ATFORK 1
#endif

namespace yolo_io {

namespace {

using ParallelWork = std::function<void(std::size_t, std::size_t)>;

// Incremented in the child of a fork(): posted work from before it belongs to
// the parent's workers, which the child does not have (PostedWork).
std::atomic<unsigned> g_parallel_fork_generation{0};

}  // namespace

// One call's items, on the heap: a worker holds it by shared_ptr, so one that
// finishes late, or comes after every item was taken, touches only this,
// never the caller's stack. `work` is called only for an item taken, and the
// caller waits for every item taken, so it is valid whenever it is called.
// Posted work (PostedWork) owns its function (`owned`).
struct PostedWork::State {
    State(std::size_t n, std::size_t s, const ParallelWork& w)
        : items(n), slots(s), work(&w), errors(s) {}
    State(std::size_t n, std::size_t s, ParallelWork&& w)
        : items(n), slots(s), owned(std::move(w)), work(&owned), errors(s) {}
    const std::size_t items;
    const std::size_t slots;  // the caller's (0) and up to slots-1 workers'
    const ParallelWork owned;
    const ParallelWork* const work;
    std::size_t joined = 1;  // slots handed out, under the pool's mutex
    std::atomic<std::size_t> next{0};
    std::atomic<std::size_t> done{0};  // items finished (or skipped after a failure)
    std::atomic<bool> failed{false};
    std::vector<std::exception_ptr> errors;  // by slot
    std::mutex mutex;
    std::condition_variable all_done;
    const unsigned generation = g_parallel_fork_generation.load();  // see PostedWork
};

namespace {

using ParallelJob = PostedWork::State;

// Takes items until none is left; `work` is only called for an item taken.
void parallel_take_turns(ParallelJob& job, std::size_t slot) {
    for (std::size_t k = job.next++; k < job.items; k = job.next++) {
        if (!job.failed) {
            try {
                (*job.work)(k, slot);
            } catch (...) {
                job.errors[slot] = std::current_exception();
                job.failed = true;
            }
        }
        if (++job.done == job.items) {
            std::lock_guard<std::mutex> lock(job.mutex);
            job.all_done.notify_all();
        }
    }
}

// The process's workers. Never destroyed: at exit the parked workers are
// left as they are (no join in a static destructor, which could wait on a
// worker the exit stopped), and after fork() the child leaves the parent's
// pool alone (its threads do not exist there, its mutex may be held) and
// makes a new one.
class ParallelPool {
public:
    explicit ParallelPool(std::size_t cap) : cap_(cap) {}

    std::size_t cap() const { return cap_; }

    // Starts workers until `wanted` (at most the cap) are alive. One that
    // cannot be started, for whatever reason, ends the attempt: the callers
    // do the work of the missing ones, and the next call tries again.
    void grow(std::size_t wanted) {
        wanted = std::min(wanted, cap_);
        if (alive_.load() >= wanted) return;
        std::lock_guard<std::mutex> lock(start_mutex_);
        while (alive_.load() < wanted) {
            try {
                std::size_t failing = fail_next_.load();
                while (failing > 0 && !fail_next_.compare_exchange_weak(failing, failing - 1)) {
                }
                if (failing > 0) throw std::bad_alloc();
                // Only `this`, which is never freed, is handed to the worker.
                std::thread([this] { work_loop(); }).detach();
            } catch (...) {
                return;
            }
            ++alive_;
            ++started_;
        }
    }

    void run(std::size_t items, std::size_t helpers, const ParallelWork& work) {
        auto job = std::make_shared<ParallelJob>(items, helpers + 1, work);
        bool posted = false;
        std::size_t wake = 0;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (alive_.load() > 0) {
                jobs_.push_back(job);
                posted = true;
                ++posted_;
                wake = std::min(helpers, parked_);
            }
        }
        for (std::size_t k = 0; k < wake; ++k) wakeup_.notify_one();
        if (!posted) {
            parallel_take_turns(*job, 0);
        } else {
            take_rest_and_wait(job);
        }
        for (const std::exception_ptr& e : job->errors) {
            if (e) std::rethrow_exception(e);
        }
    }

    // Posts a job for the workers alone (slot 0 stays free for finish()).
    void post(const std::shared_ptr<ParallelJob>& job, std::size_t helpers) {
        std::size_t wake = 0;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (alive_.load() == 0) return;  // finish() will do every item
            jobs_.push_back(job);
            ++posted_;
            wake = std::min(helpers, parked_);
        }
        for (std::size_t k = 0; k < wake; ++k) wakeup_.notify_one();
    }

    // The caller's part of a job: takes the items left (as slot 0), then
    // waits for those the workers took; the job is no longer posted after.
    void take_rest_and_wait(const std::shared_ptr<ParallelJob>& job) {
        parallel_take_turns(*job, 0);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            const auto at = std::find(jobs_.begin(), jobs_.end(), job);
            if (at != jobs_.end()) jobs_.erase(at);
        }
        // Wait for the workers' last items. Those are parts of about a
        // megabyte, so spin briefly before sleeping: a sleeping caller on a
        // VM can take milliseconds to be woken.
        const std::size_t items = job->items;
        const auto spin_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(2);
        while (job->done < items && std::chrono::steady_clock::now() < spin_until) {
            std::this_thread::yield();
        }
        if (job->done < items) {
            std::unique_lock<std::mutex> lock(job->mutex);
            job->all_done.wait(lock, [&] { return job->done == items; });
        }
    }

    PoolStats stats() {
        std::lock_guard<std::mutex> lock(mutex_);
        PoolStats s;
        s.started = started_.load();
        s.max_active = max_active_;
        s.cap = cap_;
        s.alive = alive_.load();
        s.active = active_;
        return s;
    }

    void reset_max() {
        std::lock_guard<std::mutex> lock(mutex_);
        max_active_ = active_;
    }

    void fail_next(std::size_t count) { fail_next_ = count; }

private:
    // A worker: takes a slot in a job that has items left; with none, it
    // watches for a new job for a few milliseconds before it parks (a caller
    // that fuses one layer after another would otherwise wait for a parked
    // worker to be woken, which on a VM takes milliseconds, at every call).
    void work_loop() {
        std::unique_lock<std::mutex> lock(mutex_);
        for (;;) {
            std::shared_ptr<ParallelJob> job;
            std::size_t slot = 0;
            // Posted jobs whose items are all taken leave the list here
            // (a caller's own job leaves it when the caller is done).
            jobs_.erase(std::remove_if(jobs_.begin(), jobs_.end(),
                                       [](const std::shared_ptr<ParallelJob>& j) {
                                           return j->work == &j->owned &&
                                                  j->next.load() >= j->items;
                                       }),
                        jobs_.end());
            for (const std::shared_ptr<ParallelJob>& j : jobs_) {
                if (j->joined < j->slots && j->next.load() < j->items) {
                    job = j;
                    slot = j->joined++;
                    break;
                }
            }
            if (job) {
                max_active_ = std::max(max_active_, ++active_);
                lock.unlock();
                parallel_take_turns(*job, slot);
                job.reset();
                lock.lock();
                --active_;
                continue;
            }
            const std::uint64_t seen = posted_.load();
            lock.unlock();
            const auto watch_until =
                std::chrono::steady_clock::now() + std::chrono::milliseconds(5);
            while (posted_.load() == seen && std::chrono::steady_clock::now() < watch_until) {
                std::this_thread::yield();
            }
            lock.lock();
            ++parked_;
            wakeup_.wait(lock, [&] { return posted_.load() != seen; });
            --parked_;
        }
    }

    const std::size_t cap_;
    std::mutex start_mutex_;  // one grow() at a time
    std::atomic<std::size_t> alive_{0};
    std::atomic<std::size_t> started_{0};
    std::atomic<std::size_t> fail_next_{0};
    std::mutex mutex_;  // guards what follows, and each job's `joined`
    std::condition_variable wakeup_;
    std::vector<std::shared_ptr<ParallelJob>> jobs_;  // those with items to take
    std::atomic<std::uint64_t> posted_{0};            // jobs ever posted; written under mutex_
    std::size_t parked_ = 0;
    std::size_t active_ = 0;
    std::size_t max_active_ = 0;
};

std::atomic<ParallelPool*> g_parallel_pool{nullptr};

#ifdef YOLO_IO_PARALLEL_ATFORK
// The child of a fork(): a new, empty pool at its first call.
void parallel_pool_after_fork_child() {
    g_parallel_pool.store(nullptr);
    g_parallel_fork_generation.fetch_add(1);
}
// Registered when the module is loaded, before any thread of ours exists.
[[maybe_unused]] const int g_parallel_atfork =
    pthread_atfork(nullptr, nullptr, parallel_pool_after_fork_child);
#endif

ParallelPool& parallel_pool() {
    ParallelPool* pool = g_parallel_pool.load();
    if (pool) return *pool;
    const unsigned cores = std::thread::hardware_concurrency();
    auto fresh = std::make_unique<ParallelPool>(cores > 1 ? cores - 1 : 1);
    if (g_parallel_pool.compare_exchange_strong(pool, fresh.get())) return *fresh.release();
    return *pool;  // another thread made it first
}

}  // namespace

void for_each_in_turn(std::size_t items, int threads,
                      const std::function<void(std::size_t item, std::size_t worker)>& work) {
    if (threads > 1) {
        // Started whatever the items, so that a walk over a network's layers
        // starts its workers at its first call, small layer or not.
        ParallelPool& pool = parallel_pool();
        pool.grow(static_cast<std::size_t>(threads) - 1);
        const std::size_t helpers =
            std::min({static_cast<std::size_t>(threads) - 1, pool.cap(), items > 0 ? items - 1 : 0});
        if (helpers > 0) {
            pool.run(items, helpers, work);
            return;
        }
    }
    for (std::size_t k = 0; k < items; ++k) work(k, 0);
}

std::shared_ptr<PostedWork> PostedWork::post(std::size_t items, int threads, Work work) {
    std::size_t helpers = 0;
    ParallelPool* pool = nullptr;
    if (threads > 1 && items > 0) {
        pool = &parallel_pool();
        pool->grow(static_cast<std::size_t>(threads) - 1);
        helpers = std::min({static_cast<std::size_t>(threads) - 1, pool->cap(), items});
    }
    auto job = std::make_shared<ParallelJob>(items, helpers + 1, std::move(work));
    if (pool != nullptr && helpers > 0) pool->post(job, helpers);
    return std::shared_ptr<PostedWork>(new PostedWork(std::move(job)));
}

void PostedWork::finish() {
    if (job_->generation != g_parallel_fork_generation.load()) {
        // Posted before a fork() in the parent: an item a parent's worker had
        // taken never finishes here, and the job's mutex may be held forever.
        throw std::runtime_error("work posted before fork() cannot be finished in the child");
    }
    parallel_pool().take_rest_and_wait(job_);
    for (const std::exception_ptr& e : job_->errors) {
        if (e) std::rethrow_exception(e);
    }
}

void PostedWork::cancel() noexcept {
    // In the child of a fork(): no worker of ours runs it; nothing to wait for.
    if (job_->generation != g_parallel_fork_generation.load()) return;
    job_->failed = true;  // items not yet started are skipped
    try {
        parallel_pool().take_rest_and_wait(job_);
    } catch (...) {  // a wait that cannot block: spin
        while (job_->done.load() < job_->items) std::this_thread::yield();
    }
}

bool PostedWork::done() const noexcept { return job_->done.load() == job_->items; }

PostedWork::~PostedWork() { cancel(); }

int threads_available(int threads) {
    if (threads <= 1) return 1;
    const std::size_t most = parallel_pool().cap() + 1;
    return static_cast<int>(std::min(static_cast<std::size_t>(threads), most));
}

PoolStats pool_stats() { return parallel_pool().stats(); }

void pool_reset_max() { parallel_pool().reset_max(); }

void pool_fail_next(std::size_t count) { parallel_pool().fail_next(count); }

}  // namespace yolo_io
