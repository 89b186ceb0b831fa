#include "yolo_io/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace yolo_io {

namespace {

// What the caller and its helpers share. Helpers hold it by shared_ptr: one
// that starts after every item was taken touches only this, never `work`, so
// the caller need not wait for it (on a VM a new thread can take
// milliseconds to be scheduled, longer than a layer's work).
struct Turns {
    Turns(std::size_t n, std::size_t workers) : items(n), errors(workers) {}
    const std::size_t items;
    std::atomic<std::size_t> next{0};
    std::atomic<std::size_t> done{0};  // items finished (or skipped after a failure)
    std::atomic<bool> failed{false};
    std::vector<std::exception_ptr> errors;  // by worker
    std::mutex mutex;
    std::condition_variable all_done;
};

// Takes items until none is left; `work` is only called for an item taken.
void take_turns(Turns& s, std::size_t worker,
                const std::function<void(std::size_t, std::size_t)>& work) {
    for (std::size_t k = s.next++; k < s.items; k = s.next++) {
        if (!s.failed) {
            try {
                work(k, worker);
            } catch (...) {
                s.errors[worker] = std::current_exception();
                s.failed = true;
            }
        }
        if (++s.done == s.items) {
            std::lock_guard<std::mutex> lock(s.mutex);
            s.all_done.notify_all();
        }
    }
}

}  // namespace

void for_each_in_turn(std::size_t items, int threads,
                      const std::function<void(std::size_t item, std::size_t worker)>& work) {
    if (items == 0) return;
    const auto workers = static_cast<std::size_t>(
        std::clamp<long long>(threads, 1, static_cast<long long>(items)));
    auto shared = std::make_shared<Turns>(items, workers);
    for (std::size_t t = 1; t < workers; ++t) {
        try {
            // `work` is reached only through an item this helper takes, and
            // the caller waits for every item taken; so the reference stays
            // valid for as long as the helper can use it.
            std::thread([shared, t, &work] { take_turns(*shared, t, work); }).detach();
        } catch (const std::system_error&) {
            break;  // no more threads to be had: the ones running take every item
        }
    }
    take_turns(*shared, 0, work);
    // Every item is taken; wait for the helpers' last ones. Those are parts of
    // about a megabyte, so spin briefly before sleeping: a sleeping caller on
    // a VM can also take milliseconds to be woken.
    const auto spin_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(2);
    while (shared->done < items && std::chrono::steady_clock::now() < spin_until) {
        std::this_thread::yield();
    }
    if (shared->done < items) {
        std::unique_lock<std::mutex> lock(shared->mutex);
        shared->all_done.wait(lock, [&] { return shared->done == items; });
    }
    for (const std::exception_ptr& e : shared->errors) {
        if (e) std::rethrow_exception(e);
    }
}

}  // namespace yolo_io
