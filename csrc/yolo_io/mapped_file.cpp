#include "yolo_io/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
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

UniqueFd::~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
}

UniqueFd open_checked(const std::string& path, struct stat& st,
                      const std::function<void(const struct stat&)>& check) {
    auto checked = [&](const struct stat& s) {
        if (S_ISDIR(s.st_mode)) throw std::system_error(EISDIR, std::generic_category(), path);
        check(s);
    };
    if (::stat(path.c_str(), &st) != 0) {
        throw std::system_error(errno, std::generic_category(), path);
    }
    checked(st);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (fd.get() < 0) throw std::system_error(errno, std::generic_category(), path);
    if (::fstat(fd.get(), &st) != 0) throw std::system_error(errno, std::generic_category(), path);
    checked(st);
    return fd;
}

MappedFile::MappedFile(std::string path, bool copy) : path_(std::move(path)), copied_(copy) {
#ifdef YOLO_IO_FUZZ
    // Fuzzing: every file is read into a heap buffer of exactly its size, so
    // that AddressSanitizer sees a read past its end (in a mapping, the rest
    // of the last page is readable).
    copied_ = true;
#endif
    struct stat st {};
    // A copy closes the descriptor on return; a mapping keeps it, to check
    // the file's size before a read (check_holds) and to read it (reopen).
    UniqueFd fd = open_checked(path_, st, [&](const struct stat& s) {
        if (const char* kind = special_file_kind(s.st_mode)) {
            throw FormatError(path_ + " is " + kind + ", not a regular file: yolo_io maps the " +
                              "whole file, so save a stream or a download to a file first");
        }
    });
    size_ = static_cast<std::int64_t>(st.st_size);
    if (size_ == 0) return;
    const auto bytes = static_cast<std::size_t>(size_);
    if (copied_) {
#ifdef YOLO_IO_FUZZ
        std::unique_ptr<std::uint8_t[]> buffer(new std::uint8_t[bytes]);
        read_at(fd.get(), buffer.get(), bytes, 0);
        data_ = buffer.release();
#else
        void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), path_);
#ifdef MADV_HUGEPAGE  // Linux only (as in arena_memory.cpp); a hint
        ::madvise(p, bytes, MADV_HUGEPAGE);
#endif
        try {
            read_at(fd.get(), static_cast<std::uint8_t*>(p), bytes, 0);
        } catch (...) {
            ::munmap(p, bytes);
            throw;
        }
        ::mprotect(p, bytes, PROT_READ);
        data_ = static_cast<const std::uint8_t*>(p);
#endif
        return;
    }
    void* p = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd.get(), 0);
    if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), path_);
    data_ = static_cast<const std::uint8_t*>(p);
    fd_ = fd.release();
}

int MappedFile::reopen() const noexcept {
    // A copy is the snapshot to read; the file may have changed since.
    if (fd_ < 0) return -1;
    return ::fcntl(fd_, F_DUPFD_CLOEXEC, 0);
}

std::int64_t MappedFile::current_size() const {
    if (fd_ < 0) return size_;
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw std::system_error(errno, std::generic_category(), path_);
    return static_cast<std::int64_t>(st.st_size);
}

void MappedFile::check_holds(std::int64_t begin, std::int64_t end,
                             const std::function<std::string()>& what) const {
    if (fd_ < 0 || begin >= end) return;
    const std::int64_t now = current_size();
    if (now >= end) return;
    throw FormatError(path_ + " was truncated since it was loaded: " + what() + " needs bytes " +
                      std::to_string(begin) + ".." + std::to_string(end) +
                      ", but the file now ends at byte " + std::to_string(now) + " (it held " +
                      std::to_string(size_) + " bytes when it was loaded); load(copy=True) "
                      "takes a snapshot that later changes cannot affect");
}

MappedFile::~MappedFile() {
    if (fd_ >= 0) ::close(fd_);
    if (data_ == nullptr) return;
#ifdef YOLO_IO_FUZZ
    delete[] data_;
#else
    ::munmap(const_cast<std::uint8_t*>(data_), static_cast<std::size_t>(size_));
#endif
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
