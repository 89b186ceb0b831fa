#include "yolo_io/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <system_error>
#include <thread>
#include <vector>

namespace yolo_io {

void for_each_in_turn(std::size_t items, int threads,
                      const std::function<void(std::size_t item, std::size_t worker)>& work) {
    if (items == 0) return;
    const auto workers = static_cast<std::size_t>(
        std::clamp<long long>(threads, 1, static_cast<long long>(items)));
    std::atomic<std::size_t> next{0};
    std::atomic<bool> failed{false};
    std::vector<std::exception_ptr> errors(workers);
    auto run = [&](std::size_t worker) {
        try {
            for (std::size_t k = next++; k < items && !failed; k = next++) work(k, worker);
        } catch (...) {
            errors[worker] = std::current_exception();
            failed = true;
        }
    };
    std::vector<std::thread> pool;
    for (std::size_t t = 1; t < workers; ++t) {
        try {
            pool.emplace_back(run, t);
        } catch (const std::system_error&) {
            break;  // no more threads to be had: the ones running take every item
        }
    }
    run(0);
    for (std::thread& th : pool) th.join();
    for (const std::exception_ptr& e : errors) {
        if (e) std::rethrow_exception(e);
    }
}

}  // namespace yolo_io
