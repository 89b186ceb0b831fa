// RAII read-only memory mapping of a whole file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "yolo_io/platform.hpp"

namespace yolo_io {

// What a file that is not a regular file is, in words for a message ("a FIFO
// (named pipe)", "a character device", ...); nullptr for a regular file or a
// directory (which the callers report as EISDIR).
const char* special_file_kind(platform::FileType type) noexcept;

// Opens `path` read-only to read its bytes. A directory is EISDIR and any
// other failure a std::system_error naming the path. `check` throws to
// refuse a kind of file: it runs on the path's stat() before the open, since
// opening a device can have effects of its own, and again on the opened
// file's fstat(), in case the path was replaced in between. The open does
// not block on a FIFO (O_NONBLOCK). `info` is the opened file's fstat().
platform::UniqueFd open_checked(const std::string& path, platform::FileInfo& info,
                                const std::function<void(const platform::FileInfo&)>& check);

class MappedFile {
  public:
    // Maps `path` read-only. Throws std::system_error (with errno) when the
    // file cannot be opened or mapped or is a directory (EISDIR), and a
    // FormatError when it is a FIFO, a device or a socket.
    // With `copy`, the file is read into private memory instead (a snapshot):
    // what data() shows no longer depends on the file, so a file truncated or
    // rewritten afterwards cannot make a read fault (SIGBUS). A file that
    // shrinks while it is read is a FormatError.
    explicit MappedFile(std::string path, bool copy = false);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    MappedFile(MappedFile&&) = delete;
    MappedFile& operator=(MappedFile&&) = delete;

    const std::uint8_t* data() const noexcept { return data_; }
    std::int64_t size() const noexcept { return size_; }
    const std::string& path() const noexcept { return path_; }
    // Whether data() is a private copy (see the constructor): its pages must
    // not be dropped with MADV_DONTNEED, which would zero them.
    bool copied() const noexcept { return copied_; }

    // A new read-only descriptor for the mapped file (a duplicate of the one
    // the mapping keeps, so the very file that was mapped, even after its
    // path was replaced); -1 for a copy or when none can be made. The caller
    // closes it. Reading it with pread() sees the bytes the mapping sees
    // without faulting them in.
    int reopen() const noexcept;
    // The file's size now (fstat() of the descriptor the mapping keeps), which
    // is less than size() when the file was truncated since it was mapped:
    // reading the mapping past it is SIGBUS. size() for a copy.
    std::int64_t current_size() const;
    // Throws FormatError, naming the file, `what` and the sizes, when the file
    // no longer holds bytes [begin, end): callers check before they read the
    // mapping, so that a truncated file is an error, not a SIGBUS (a file
    // truncated between the check and the read still is one). No-op for a
    // copy.
    void check_holds(std::int64_t begin, std::int64_t end,
                     const std::function<std::string()>& what) const;
    // Reads `want` bytes at offset `at` of `fd` (from reopen()) into `into`.
    // A read that ends early (the file was truncated since it was mapped) is
    // a FormatError, an I/O error a std::system_error naming the file.
    void read_at(int fd, std::uint8_t* into, std::size_t want, std::int64_t at) const;
    // The same into several buffers that follow each other in the file
    // (preadv; the buffers are consumed).
    void read_at(int fd, platform::IoBuffer* buffers, int count, std::int64_t at) const;

  private:
    std::string path_;
    int fd_ = -1;  // kept open while mapped, for current_size() and reopen()
    const std::uint8_t* data_ = nullptr;
    std::int64_t size_ = 0;
    bool copied_ = false;
};

}  // namespace yolo_io
