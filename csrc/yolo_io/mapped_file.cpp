#include "yolo_io/mapped_file.hpp"

#include <cerrno>
#include <memory>
#include <string>
#include <system_error>

#include "yolo_io/errors.hpp"

namespace yolo_io {

const char* special_file_kind(platform::FileType type) noexcept {
    switch (type) {
        case platform::FileType::regular:
        case platform::FileType::directory:
            return nullptr;
        case platform::FileType::fifo:
            return "a FIFO (named pipe)";
        case platform::FileType::char_device:
            return "a character device";
        case platform::FileType::block_device:
            return "a block device";
        case platform::FileType::socket:
            return "a socket";
        case platform::FileType::other:
            break;
    }
    return "not a regular file";
}

platform::UniqueFd open_checked(const std::string& path, platform::FileInfo& info,
                                const std::function<void(const platform::FileInfo&)>& check) {
    auto checked = [&](const platform::FileInfo& s) {
        if (s.type == platform::FileType::directory) {
            throw std::system_error(EISDIR, std::generic_category(), path);
        }
        check(s);
    };
    info = platform::stat_path(path);
    checked(info);
    platform::UniqueFd fd = platform::open_read(path);
    info = platform::stat_fd(fd.get(), path);
    checked(info);
    return fd;
}

MappedFile::MappedFile(std::string path, bool copy) : path_(std::move(path)), copied_(copy) {
#ifdef YOLO_IO_FUZZ
    // Fuzzing: every file is read into a heap buffer of exactly its size, so
    // that AddressSanitizer sees a read past its end (in a mapping, the rest
    // of the last page is readable).
    copied_ = true;
#endif
    platform::FileInfo info;
    // A copy closes the descriptor on return; a mapping keeps it, to check
    // the file's size before a read (check_holds) and to read it (reopen).
    platform::UniqueFd fd = open_checked(path_, info, [&](const platform::FileInfo& s) {
        if (const char* kind = special_file_kind(s.type)) {
            throw FormatError(path_ + " is " + kind + ", not a regular file: yolo_io maps the " +
                              "whole file, so save a stream or a download to a file first");
        }
    });
    size_ = info.size;
    if (size_ == 0) return;
    const auto bytes = static_cast<std::size_t>(size_);
    if (copied_) {
#ifdef YOLO_IO_FUZZ
        std::unique_ptr<std::uint8_t[]> buffer(new std::uint8_t[bytes]);
        read_at(fd.get(), buffer.get(), bytes, 0);
        data_ = buffer.release();
#else
        int error = 0;
        void* p = platform::map_anonymous(bytes, error);
        if (p == nullptr) throw std::system_error(error, std::generic_category(), path_);
        platform::advise(p, bytes, platform::Advice::huge_page);  // a hint (Linux only)
        try {
            read_at(fd.get(), static_cast<std::uint8_t*>(p), bytes, 0);
        } catch (...) {
            platform::unmap(p, bytes);
            throw;
        }
        platform::protect_read_only(p, bytes);
        data_ = static_cast<const std::uint8_t*>(p);
#endif
        return;
    }
    void* p = platform::map_read_shared(fd.get(), bytes, path_);
    data_ = static_cast<const std::uint8_t*>(p);
    fd_ = fd.release();
}

int MappedFile::reopen() const noexcept {
    // A copy is the snapshot to read; the file may have changed since.
    if (fd_ < 0) return -1;
    return platform::dup_cloexec(fd_);
}

std::int64_t MappedFile::current_size() const {
    if (fd_ < 0) return size_;
    return platform::stat_fd(fd_, path_).size;
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
    if (fd_ >= 0) platform::UniqueFd(fd_).close();
    if (data_ == nullptr) return;
#ifdef YOLO_IO_FUZZ
    delete[] data_;
#else
    platform::unmap(const_cast<std::uint8_t*>(data_), static_cast<std::size_t>(size_));
#endif
}

void MappedFile::read_at(int fd, std::uint8_t* into, std::size_t want, std::int64_t at) const {
    platform::IoBuffer one{into, want};
    read_at(fd, &one, 1, at);
}

void MappedFile::read_at(int fd, platform::IoBuffer* iov, int count, std::int64_t at) const {
    while (count > 0) {
        const std::size_t got = platform::read_at_some(fd, iov, count, at, path_);
        if (got == 0) {
            throw FormatError(path_ + ": the file ends at byte " + std::to_string(at) +
                              ", but it held " + std::to_string(size_) +
                              " bytes when it was loaded; it was truncated since");
        }
        at += static_cast<std::int64_t>(got);
        std::size_t left = got;
        while (count > 0 && left >= iov->size) {  // whole buffers filled
            left -= iov->size;
            ++iov;
            --count;
        }
        if (count > 0) {  // one filled in part
            iov->data = static_cast<std::uint8_t*>(iov->data) + left;
            iov->size -= left;
        }
    }
}

}  // namespace yolo_io
