// The POSIX implementation of the platform layer (platform.hpp), the one
// file of csrc/ that includes the system's headers. A Windows port replaces
// this file with a platform_win.cpp that implements the same functions.
#include "yolo_io/platform.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <system_error>

namespace yolo_io::platform {

namespace {

[[noreturn]] void platform_fail(const std::string& path) {
    throw std::system_error(errno, std::generic_category(), path);
}

FileInfo platform_info_of(const struct stat& st) noexcept {
    FileInfo info;
    const mode_t m = st.st_mode;
    if (S_ISREG(m)) {
        info.type = FileType::regular;
    } else if (S_ISDIR(m)) {
        info.type = FileType::directory;
    } else if (S_ISFIFO(m)) {
        info.type = FileType::fifo;
    } else if (S_ISCHR(m)) {
        info.type = FileType::char_device;
    } else if (S_ISBLK(m)) {
        info.type = FileType::block_device;
    } else if (S_ISSOCK(m)) {
        info.type = FileType::socket;
    }
    info.size = static_cast<std::int64_t>(st.st_size);
    info.mode = static_cast<unsigned>(m & 07777);
    info.device = static_cast<std::uint64_t>(st.st_dev);
    info.inode = static_cast<std::uint64_t>(st.st_ino);
    return info;
}

}  // namespace

UniqueFd::~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
}

int UniqueFd::close() noexcept {
    const int fd = release();
    if (fd < 0 || ::close(fd) == 0) return 0;
    return errno;
}

FileInfo stat_path(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) platform_fail(path);
    return platform_info_of(st);
}

bool try_stat_path(const std::string& path, FileInfo& info) noexcept {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return false;
    info = platform_info_of(st);
    return true;
}

FileInfo stat_fd(int fd, const std::string& path) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) platform_fail(path);
    return platform_info_of(st);
}

bool try_stat_fd(int fd, FileInfo& info) noexcept {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return false;
    info = platform_info_of(st);
    return true;
}

UniqueFd open_read(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (fd.get() < 0) platform_fail(path);
    return fd;
}

void set_blocking(int fd) noexcept {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
}

int dup_cloexec(int fd) noexcept { return ::fcntl(fd, F_DUPFD_CLOEXEC, 0); }

std::size_t read_some(int fd, void* into, std::size_t n, const std::string& path) {
    for (;;) {
        const ssize_t got = ::read(fd, into, n);
        if (got >= 0) return static_cast<std::size_t>(got);
        if (errno != EINTR) platform_fail(path);
    }
}

std::size_t read_at_some(int fd, const IoBuffer* buffers, int count, std::int64_t at,
                         const std::string& path) {
    // preadv's own iovecs; a read of fewer buffers is a short read, which
    // the callers continue.
    constexpr int kMaxIovecs = 64;
    struct iovec iov[kMaxIovecs];
    const int n = std::min(count, kMaxIovecs);
    for (int k = 0; k < n; ++k) iov[k] = {buffers[k].data, buffers[k].size};
    for (;;) {
        const ssize_t got = ::preadv(fd, iov, n, static_cast<off_t>(at));
        if (got >= 0) return static_cast<std::size_t>(got);
        if (errno != EINTR) platform_fail(path);
    }
}

int create_new(const std::string& path, int& fd) noexcept {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    return fd >= 0 ? 0 : errno;
}

int set_mode(int fd, unsigned mode) noexcept {
    return ::fchmod(fd, static_cast<mode_t>(mode)) == 0 ? 0 : errno;
}

int write_all(int fd, const void* data, std::size_t n) noexcept {
    const auto* p = static_cast<const char*>(data);
    while (n > 0) {
        const std::size_t chunk = std::min<std::size_t>(n, std::size_t{1} << 30);
        const ssize_t got = ::write(fd, p, chunk);
        if (got < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        p += got;
        n -= static_cast<std::size_t>(got);
    }
    return 0;
}

int resize_and_seek(int fd, std::int64_t size) noexcept {
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0 ||
        ::lseek(fd, static_cast<off_t>(size), SEEK_SET) < 0) {
        return errno;
    }
    return 0;
}

int sync(int fd) noexcept { return ::fsync(fd) == 0 ? 0 : errno; }

void sync_folder(const std::string& folder) noexcept {
    const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        ::fsync(dir);
        ::close(dir);
    }
}

int replace(const std::string& from, const std::string& to) noexcept {
    return ::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
}

void remove(const std::string& path) noexcept { ::unlink(path.c_str()); }

void truncate_path(const std::string& path, std::int64_t size) {
    if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) platform_fail(path);
}

std::int64_t page_size() noexcept { return static_cast<std::int64_t>(::sysconf(_SC_PAGESIZE)); }

void* map_read_shared(int fd, std::size_t bytes, const std::string& path) {
    void* p = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) platform_fail(path);
    return p;
}

void* map_anonymous(std::size_t bytes, int& error) noexcept {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) return p;
    error = errno;
    return nullptr;
}

void unmap(void* p, std::size_t bytes) noexcept { ::munmap(p, bytes); }

void protect_read_only(void* p, std::size_t bytes) noexcept { ::mprotect(p, bytes, PROT_READ); }

void advise(void* p, std::size_t bytes, Advice advice) noexcept {
    int native = -1;
    switch (advice) {
        case Advice::dont_need:
            native = MADV_DONTNEED;
            break;
        case Advice::free:
#ifdef MADV_FREE
            native = MADV_FREE;
#endif
            break;
        case Advice::huge_page:
#ifdef MADV_HUGEPAGE  // Linux only
            native = MADV_HUGEPAGE;
#endif
            break;
        case Advice::populate_read:
#ifdef MADV_POPULATE_READ  // Linux 5.14+ headers; older kernels refuse it (EINVAL)
            native = MADV_POPULATE_READ;
#endif
            break;
    }
    if (native >= 0) ::madvise(p, bytes, native);
}

void* allocate_aligned(std::size_t alignment, std::size_t bytes) noexcept {
    void* p = nullptr;
    if (::posix_memalign(&p, alignment, bytes) != 0) return nullptr;
    return p;
}

}  // namespace yolo_io::platform
