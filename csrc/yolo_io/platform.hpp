// The platform layer: every call yolo_io makes to the operating system for
// files and memory (descriptors, reads and writes, file metadata, renames,
// mappings and their advice, the page size) goes through this header. Only
// platform.cpp includes the system's headers (<unistd.h>, <fcntl.h>,
// <sys/...>); tests/test_build.py checks that no other file of csrc/ does.
//
// platform.cpp implements it with POSIX calls (Linux, macOS, the BSDs). A
// Windows port is a platform_win.cpp that implements the same functions
// (CreateFileW, ReadFile with an OVERLAPPED offset, MapViewOfFile, ...) and
// replaces platform.cpp in the build; nothing else changes. Descriptors are
// ints here; such a port keeps a table of HANDLEs (or uses _open_osfhandle).
//
// Conventions: a function that names a path or takes one for its message
// throws std::system_error(errno, std::generic_category(), path) when it
// fails; a noexcept function that can fail returns 0 or the error number (a
// port maps its native errors to errno values). An advice that the system
// does not have is a no-op.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace yolo_io::platform {

// A file descriptor, closed when it goes out of scope (-1: none).
class UniqueFd {
  public:
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    ~UniqueFd();
    UniqueFd(UniqueFd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    UniqueFd& operator=(UniqueFd&&) = delete;
    int get() const noexcept { return fd_; }
    // Gives up the descriptor: the caller closes it.
    int release() noexcept {
        const int fd = fd_;
        fd_ = -1;
        return fd;
    }
    // Closes the descriptor now: 0, or the error number of the close (the
    // descriptor is gone either way).
    int close() noexcept;

  private:
    int fd_;
};

enum class FileType { regular, directory, fifo, char_device, block_device, socket, other };

// What stat() tells of a file.
struct FileInfo {
    FileType type = FileType::other;
    std::int64_t size = 0;    // bytes (0 for a pipe)
    unsigned mode = 0;        // the permission bits (07777)
    std::uint64_t device = 0; // with `inode`, which file it is
    std::uint64_t inode = 0;
};

// stat() of `path` (following links); throws std::system_error naming it.
FileInfo stat_path(const std::string& path);
// The same without throwing: false when it fails (no such file, ...).
bool try_stat_path(const std::string& path, FileInfo& info) noexcept;
// fstat() of `fd`; throws std::system_error naming `path`.
FileInfo stat_fd(int fd, const std::string& path);
// The same without throwing: false when it fails.
bool try_stat_fd(int fd, FileInfo& info) noexcept;

// Opens `path` read-only, close-on-exec, and without blocking on a FIFO that
// has no writer yet (O_NONBLOCK); throws std::system_error naming the path.
UniqueFd open_read(const std::string& path);
// Makes the reads of `fd` block again (after open_read(), for a FIFO).
void set_blocking(int fd) noexcept;
// A new close-on-exec descriptor for the file `fd` has open; -1 when none can
// be made (EMFILE, ...).
int dup_cloexec(int fd) noexcept;

// Reads up to `n` bytes at the descriptor's offset into `into`: the bytes
// read, 0 at the end of the file. Retries when interrupted (EINTR); throws
// std::system_error naming `path` for any other error.
std::size_t read_some(int fd, void* into, std::size_t n, const std::string& path);

// One buffer of a scattered read (preadv's iovec).
struct IoBuffer {
    void* data;
    std::size_t size;
};
// Reads at offset `at` of `fd` into `count` buffers that follow each other in
// the file, without moving the descriptor's offset (preadv): the bytes read,
// which may fill fewer buffers than given; 0 at the end of the file. Retries
// when interrupted; throws std::system_error naming `path` for any other
// error.
std::size_t read_at_some(int fd, const IoBuffer* buffers, int count, std::int64_t at,
                         const std::string& path);

// Creates `path`, which must not exist (O_EXCL), write-only and close-on-exec,
// with mode 0666 less the process's umask. Sets `fd`; returns 0 or the error
// number (EEXIST when the path exists).
int create_new(const std::string& path, int& fd) noexcept;
// Sets the permission bits of the file `fd` has open (fchmod): 0 or the
// error number.
int set_mode(int fd, unsigned mode) noexcept;
// Writes all `n` bytes at the descriptor's offset (in parts of at most 1 GiB,
// retrying when interrupted): 0 or the error number.
int write_all(int fd, const void* data, std::size_t n) noexcept;
// Sets the size of the file `fd` has open to `size` and moves the offset
// there (ftruncate and lseek): 0 or the error number.
int resize_and_seek(int fd, std::int64_t size) noexcept;
// Flushes the file's data to its device (fsync): 0 or the error number.
int sync(int fd) noexcept;
// Flushes a folder's entries (a rename in it) to its device; best effort,
// errors are ignored.
void sync_folder(const std::string& folder) noexcept;
// Renames `from` to `to`, replacing `to` atomically: 0 or the error number.
int replace(const std::string& from, const std::string& to) noexcept;
// Removes the name `path` (unlink); errors are ignored.
void remove(const std::string& path) noexcept;
// Truncates (or extends) `path` to `size` bytes; throws std::system_error
// naming it. For tests (a file shrunk under a reader).
void truncate_path(const std::string& path, std::int64_t size);

// The size of a memory page.
std::int64_t page_size() noexcept;
// Maps `bytes` of the file `fd` has open, read-only and shared (the page
// cache's pages); throws std::system_error naming `path`.
void* map_read_shared(int fd, std::size_t bytes, const std::string& path);
// Maps `bytes` of zeroed private read-write memory: nullptr when it cannot,
// with the error number in `error`.
void* map_anonymous(std::size_t bytes, int& error) noexcept;
// Unmaps a mapping (or a whole number of pages of one).
void unmap(void* p, std::size_t bytes) noexcept;
// Makes pages of a mapping read-only.
void protect_read_only(void* p, std::size_t bytes) noexcept;

enum class Advice {
    dont_need,      // drop the pages from the resident set (a private copy's read as zeros)
    free,           // the kernel may take the pages back lazily, their contents then zeros
    huge_page,      // back the range with huge pages (transparent huge pages)
    populate_read,  // fault the pages in now, with one call
};
// Advises the kernel about [p, p + bytes) (madvise; p is page-aligned). A
// hint: errors are ignored, and an advice this system lacks is a no-op.
void advise(void* p, std::size_t bytes, Advice advice) noexcept;

// `bytes` of heap memory aligned to `alignment` (a power of two, a multiple
// of sizeof(void*)), released with std::free (posix_memalign); nullptr when
// there is none. (A Windows port needs _aligned_malloc, whose memory
// _aligned_free releases: its OwnedArray deleter would call that.)
void* allocate_aligned(std::size_t alignment, std::size_t bytes) noexcept;

}  // namespace yolo_io::platform
