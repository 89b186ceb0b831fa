#include "yolo_io/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

#include "yolo_io/errors.hpp"

namespace yolo_io {

const char* special_file_kind(unsigned mode) noexcept {
    const auto m = static_cast<mode_t>(mode);
    if (S_ISREG(m) || S_ISDIR(m)) return nullptr;
    if (S_ISFIFO(m)) return "a FIFO (named pipe)";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

MappedFile::MappedFile(std::string path, bool copy) : path_(std::move(path)), copied_(copy) {
    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused
    // below as not a regular file); it does not affect a regular file.
    int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        throw std::system_error(errno, std::generic_category(), path_);
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int err = errno;
        ::close(fd);
        throw std::system_error(err, std::generic_category(), path_);
    }
    if (S_ISDIR(st.st_mode)) {
        ::close(fd);
        throw std::system_error(EISDIR, std::generic_category(), path_);
    }
    if (const char* kind = special_file_kind(st.st_mode)) {
        ::close(fd);
        throw FormatError(path_ + " is " + kind + ", not a regular file: yolo_io maps the " +
                          "whole file, so save a stream or a download to a file first");
    }
    size_ = static_cast<std::int64_t>(st.st_size);
    device_ = static_cast<std::uint64_t>(st.st_dev);
    inode_ = static_cast<std::uint64_t>(st.st_ino);
    if (size_ > 0 && copy) {
        const auto bytes = static_cast<std::size_t>(size_);
        void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            int err = errno;
            ::close(fd);
            throw std::system_error(err, std::generic_category(), path_);
        }
        ::madvise(p, bytes, MADV_HUGEPAGE);
        try {
            read_at(fd, static_cast<std::uint8_t*>(p), bytes, 0);
        } catch (...) {
            ::munmap(p, bytes);
            ::close(fd);
            throw;
        }
        ::mprotect(p, bytes, PROT_READ);
        data_ = static_cast<const std::uint8_t*>(p);
    } else if (size_ > 0) {
        void* p = ::mmap(nullptr, static_cast<std::size_t>(size_), PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            int err = errno;
            ::close(fd);
            throw std::system_error(err, std::generic_category(), path_);
        }
        data_ = static_cast<const std::uint8_t*>(p);
    }
    ::close(fd);  // the mapping stays valid without the descriptor
}

int MappedFile::reopen() const noexcept {
    // A copy is the snapshot to read; the file may have changed since.
    if (copied_) return -1;
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return -1;
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        static_cast<std::uint64_t>(st.st_dev) != device_ ||
        static_cast<std::uint64_t>(st.st_ino) != inode_) {
        // Replaced, or the working folder changed under a relative path.
        ::close(fd);
        return -1;
    }
    return fd;
}

MappedFile::~MappedFile() {
    if (data_ != nullptr) {
        ::munmap(const_cast<std::uint8_t*>(data_), static_cast<std::size_t>(size_));
    }
}

void MappedFile::read_at(int fd, std::uint8_t* into, std::size_t want, std::int64_t at) const {
    struct iovec one {into, want};
    read_at(fd, &one, 1, at);
}

void MappedFile::read_at(int fd, struct iovec* iov, int count, std::int64_t at) const {
    while (count > 0) {
        const ssize_t got = ::preadv(fd, iov, count, at);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) throw std::system_error(errno, std::generic_category(), path_);
        if (got == 0) {
            throw FormatError(path_ + ": the file ends at byte " + std::to_string(at) +
                              ", but it held " + std::to_string(size_) +
                              " bytes when it was loaded; it was truncated since");
        }
        at += got;
        auto left = static_cast<std::size_t>(got);
        while (count > 0 && left >= iov->iov_len) {  // whole buffers filled
            left -= iov->iov_len;
            ++iov;
            --count;
        }
        if (count > 0) {  // one filled in part
            iov->iov_base = static_cast<std::uint8_t*>(iov->iov_base) + left;
            iov->iov_len -= left;
        }
    }
}

}  // namespace yolo_io
