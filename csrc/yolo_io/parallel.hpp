// Work shared by threads that take items in turn.
#pragma once

#include <cstddef>
#include <functional>

namespace yolo_io {

// Calls work(item, worker) for item = 0..items-1 on up to `threads` threads
// (this one and threads-1 more), each taking the next item when it is done
// with one, so that a slow item or a busy core does not leave the others
// idle; worker (0..threads-1) names the thread, for per-thread results.
// After the first exception no new item is started; it is rethrown once
// every item started has finished. Returns once every item is done, without
// waiting for a helper thread that started too late to take one (it exits by
// itself). If no further thread can be created, the ones running take every
// item.
void for_each_in_turn(std::size_t items, int threads,
                      const std::function<void(std::size_t item, std::size_t worker)>& work);

}  // namespace yolo_io
