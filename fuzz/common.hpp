// What the fuzz harnesses share: an input as a file the core can map, and the
// rule for what an input may do. Every harness lets a yolo_io::Error (a typed
// error the Python layer raises as CfgError, FormatError, ...) and a
// std::system_error (an OSError) pass as the answer to a bad input; anything
// else escaping (std::out_of_range, std::bad_alloc, a crash, a sanitizer
// report) is a finding.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>

#include "yolo_io/errors.hpp"
#include "yolo_io/mapped_file.hpp"

namespace fuzz {

// The bytes as a file: an anonymous memory file (memfd), mapped by path
// through /proc/self/fd as a user's file would be.
class MemoryFile {
  public:
    MemoryFile(const std::uint8_t* data, std::size_t size) {
        fd_ = ::memfd_create("yolo_io-fuzz", MFD_CLOEXEC);
        if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "memfd_create");
        std::size_t done = 0;
        while (done < size) {
            const ssize_t n = ::write(fd_, data + done, size - done);
            if (n <= 0) throw std::system_error(errno, std::generic_category(), "write");
            done += static_cast<std::size_t>(n);
        }
        path_ = "/proc/self/fd/" + std::to_string(fd_);
    }
    ~MemoryFile() { ::close(fd_); }
    MemoryFile(const MemoryFile&) = delete;
    MemoryFile& operator=(const MemoryFile&) = delete;
    const std::string& path() const { return path_; }

  private:
    int fd_ = -1;
    std::string path_;
};

// Runs `body`; a typed error is a good answer, anything else escapes.
template <class F>
void expect_typed(F&& body) {
    try {
        body();
    } catch (const yolo_io::Error&) {
    } catch (const std::system_error&) {
    }
}

}  // namespace fuzz
