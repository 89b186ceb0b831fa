#include "yolo_io/writer.hpp"

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <random>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "yolo_io/errors.hpp"
#include "yolo_io/mapped_file.hpp"
#include "yolo_io/platform.hpp"

namespace yolo_io {

namespace {

[[noreturn]] void fail(int err, const std::string& what) {
    throw std::system_error(err, std::generic_category(), what);
}

std::string folder_of(const std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

// The mode of the regular file `target` would replace, which the new file
// keeps, less setuid, setgid and sticky (the new file is the writer's, as
// cp gives it: a setuid program replaced by weights must not stay setuid);
// -1 when there is none (the new file then gets 0666 minus the umask,
// applied by open(): reading the umask would need umask(), which sets it for
// every thread of the process at once).
int replaced_file_mode(const std::string& target) {
    platform::FileInfo info;
    if (platform::try_stat_path(target, info) && info.type == platform::FileType::regular) {
        return static_cast<int>(info.mode & 0777U);
    }
    return -1;
}

// Copies bytes [begin, end) of `fd` (the mapped file, opened again) to `out`
// through a ring of small buffers: a reader thread copies the next parts out
// of the page cache while this thread writes the previous ones, so the read
// overlaps the write and nothing is mapped (no page faults, no RSS). On tmpfs,
// 258 MB: ~101 ms, as fast as write() of the same bytes already in memory
// (~100 ms); one thread reading then writing takes ~113 ms, the mapping with
// MADV_POPULATE_READ ~130 ms.
void copy_from_descriptor(int fd, const MappedFile& file, std::int64_t begin, std::int64_t end,
                          AtomicFile& out, const Progress& progress) {
    constexpr std::int64_t kPart = std::int64_t{1} << 20;
    constexpr int kRing = 4;
    constexpr std::int64_t kReport = 8;  // progress every 8 MiB
    const std::int64_t parts = (end - begin + kPart - 1) / kPart;
    auto part_size = [&](std::int64_t i) {
        return static_cast<std::size_t>(std::min(kPart, end - begin - i * kPart));
    };
    std::vector<std::uint8_t> ring(static_cast<std::size_t>(kPart) * kRing);
    auto slot = [&](std::int64_t i) {
        return ring.data() + static_cast<std::size_t>(i % kRing) * static_cast<std::size_t>(kPart);
    };

    std::mutex mutex;
    std::condition_variable changed;
    std::int64_t filled = 0;   // parts read into the ring
    std::int64_t drained = 0;  // parts written out of it
    bool stop = false;
    std::exception_ptr failure;
    auto read_parts = [&] {
        for (std::int64_t i = 0; i < parts; ++i) {
            {
                std::unique_lock<std::mutex> lock(mutex);
                changed.wait(lock, [&] { return stop || filled - drained < kRing; });
                if (stop) return;
            }
            try {
                file.read_at(fd, slot(i), part_size(i), begin + i * kPart);
            } catch (...) {
                const std::lock_guard<std::mutex> lock(mutex);
                failure = std::current_exception();
                changed.notify_all();
                return;
            }
            const std::lock_guard<std::mutex> lock(mutex);
            ++filled;
            changed.notify_all();
        }
    };
    std::thread reader;
    try {
        reader = std::thread(read_parts);
    } catch (const std::system_error&) {
        // No thread to be had: read and write in turn.
        for (std::int64_t i = 0; i < parts; ++i) {
            file.read_at(fd, ring.data(), part_size(i), begin + i * kPart);
            out.write(ring.data(), part_size(i));
            if (progress && (i % kReport == kReport - 1 || i == parts - 1)) progress(out.written());
        }
        return;
    }
    // Whatever ends the loop (a failed write, a failed read), the reader is
    // stopped and joined before the ring goes away.
    struct Joiner {
        std::thread& reader;
        std::mutex& mutex;
        std::condition_variable& changed;
        bool& stop;
        ~Joiner() {
            {
                const std::lock_guard<std::mutex> lock(mutex);
                stop = true;
            }
            changed.notify_all();
            reader.join();
        }
    } joiner{reader, mutex, changed, stop};
    for (std::int64_t i = 0; i < parts; ++i) {
        {
            std::unique_lock<std::mutex> lock(mutex);
            changed.wait(lock, [&] { return filled > i || failure; });
            if (filled <= i) std::rethrow_exception(failure);
        }
        out.write(slot(i), part_size(i));
        {
            const std::lock_guard<std::mutex> lock(mutex);
            ++drained;
        }
        changed.notify_all();
        if (progress && (i % kReport == kReport - 1 || i == parts - 1)) progress(out.written());
    }
}

}  // namespace

AtomicFile::AtomicFile(std::string target) : target_(std::move(target)) {
    platform::FileInfo info;
    if (platform::try_stat_path(target_, info)) {
        if (info.type == platform::FileType::directory) fail(EISDIR, target_);
        // A device, FIFO or socket would be replaced by the rename: refused.
        if (info.type != platform::FileType::regular) {
            fail(EINVAL, target_ + " is not a regular file");
        }
    }
    const int replaced_mode = replaced_file_mode(target_);
    std::random_device rd;
    // A short name of fixed length, not the target's name plus a suffix: it
    // fits in the folder whenever the target's name does (a 255-byte name
    // plus a suffix would be ENAMETOOLONG). The `.yolo_io-` prefix says whose
    // it is if a killed process leaves it behind.
    const std::string folder = folder_of(target_);
    for (int attempt = 0; attempt < 100; ++attempt) {
        char name[48];
        std::snprintf(name, sizeof name, ".yolo_io-%08x%08x.tmp", static_cast<unsigned>(rd()),
                      static_cast<unsigned>(rd()));
        temp_ = folder + (folder == "/" ? "" : "/") + name;
        const int err = platform::create_new(temp_, fd_);
        if (fd_ >= 0) break;
        if (err != EEXIST) fail(err, target_ + " (creating the temporary file " + temp_ + ")");
    }
    if (fd_ < 0) fail(EEXIST, temp_);
    // create_new() applied the umask; a replaced file keeps its own mode exactly.
    if (replaced_mode >= 0) {
        if (const int err = platform::set_mode(fd_, static_cast<unsigned>(replaced_mode))) {
            abort();
            fail(err, target_);
        }
    }
}

AtomicFile::~AtomicFile() { abort(); }

void AtomicFile::abort() noexcept {
    if (fd_ >= 0) {
        platform::UniqueFd(fd_).close();
        fd_ = -1;
        platform::remove(temp_);
    }
}

void AtomicFile::write(const void* data, std::size_t n) {
    if (fd_ < 0) throw std::logic_error("write() after commit() or abort()");
    if (const int err = platform::write_all(fd_, data, n)) {
        abort();
        fail(err, target_);
    }
    written_ += static_cast<std::int64_t>(n);
}

void AtomicFile::extend_to(std::int64_t size) {
    if (fd_ < 0) throw std::logic_error("extend_to() after commit() or abort()");
    if (size < written_) throw std::invalid_argument("extend_to() cannot shrink the file");
    if (const int err = platform::resize_and_seek(fd_, size)) {
        abort();
        fail(err, target_);
    }
    written_ = size;
}

void AtomicFile::commit() {
    if (fd_ < 0) throw std::logic_error("commit() after commit() or abort()");
    // Owned here from now on: a failed fsync closes it too.
    platform::UniqueFd fd(fd_);
    fd_ = -1;
    int err = platform::sync(fd.get());
    if (err == 0) err = fd.close();
    if (err != 0) {
        platform::remove(temp_);
        fail(err, target_);
    }
    if (const int renamed = platform::replace(temp_, target_)) {
        platform::remove(temp_);
        fail(renamed, target_);
    }
    // The rename itself is durable once the folder is synced.
    platform::sync_folder(folder_of(target_));
}

std::string header_bytes(std::int64_t major64, std::int64_t minor64, std::int64_t revision64,
                         std::uint64_t seen) {
    // The rule the readers apply (weights.cpp): what is written loads back.
    if (auto problem = header_version_problem(major64, minor64, revision64)) {
        throw std::invalid_argument("the header " + *problem);
    }
    const auto major = static_cast<std::int32_t>(major64);
    const auto minor = static_cast<std::int32_t>(minor64);
    const auto revision = static_cast<std::int32_t>(revision64);
    std::string out(12, '\0');
    std::memcpy(out.data(), &major, 4);
    std::memcpy(out.data() + 4, &minor, 4);
    std::memcpy(out.data() + 8, &revision, 4);
    if (header_size_for(major, minor) == 20) {
        out.append(reinterpret_cast<const char*>(&seen), 8);
    } else {
        if (seen > std::numeric_limits<std::uint32_t>::max()) {
            throw std::invalid_argument(
                "seen=" + std::to_string(seen) + " does not fit the 32-bit `seen` of a version " +
                std::to_string(major) + "." + std::to_string(minor) +
                " header (16 bytes); use version 0.2 or later");
        }
        const auto s32 = static_cast<std::uint32_t>(seen);
        out.append(reinterpret_cast<const char*>(&s32), 4);
    }
    return out;
}

std::vector<std::int64_t> file_element_strides(const ParamSpec& p, bool transpose) {
    const auto nd = static_cast<std::size_t>(p.ndim);
    if (p.legacy_transpose && transpose) {
        return {1, p.shape[0]};
    }
    if (p.strided) {
        return {p.strides.begin(), p.strides.begin() + p.ndim};
    }
    std::vector<std::int64_t> out(nd);
    std::int64_t s = 1;
    for (std::size_t k = nd; k-- > 0;) {
        out[k] = s;
        s *= p.shape[k];
    }
    return out;
}

std::vector<std::int64_t> file_shape(const ParamSpec& p, bool transpose) {
    if (p.legacy_transpose && transpose) {
        return {p.shape[1], p.shape[0]};
    }
    if (p.strided) {
        // The one strided plan: a flipped conv's (n, c/groups, k, k) view of
        // [c/groups][k][k][n] (conv_block in layers/common.cpp).
        if (p.ndim != 4) throw std::logic_error("unexpected strided parameter " + p.name());
        return {p.shape[1], p.shape[2], p.shape[3], p.shape[0]};
    }
    return {p.shape.begin(), p.shape.begin() + p.ndim};
}

void write_mapped_layers(const Weights& source, int layers, AtomicFile& out,
                         const Progress& progress) {
    const int n = std::min(layers, source.covered_layers());
    if (n < layers) {
        throw std::out_of_range("the source file holds " + std::to_string(source.covered_layers()) +
                                " layers, not " + std::to_string(layers));
    }
    // Layers are contiguous in the file: one range.
    const std::int64_t begin = source.data_begin();
    const std::int64_t end = expected_bytes_upto(source.config(), begin, n);
    const MappedFile& file = *source.file();
    // A truncated file: the error names the first layer it no longer holds
    // (read_at still catches one truncated meanwhile).
    source.check_held(0, n);
    const platform::UniqueFd fd(file.reopen());
    if (fd.get() >= 0) {
        copy_from_descriptor(fd.get(), file, begin, end, out, progress);
        return;
    }
    // No descriptor (a copy, or none to spare): copy from the mapping, in
    // 16 MiB parts so that the kernel pages it in and out as it goes, each
    // checked to be still in the file first.
    const auto* base = file.data();
    constexpr std::int64_t kPart = std::int64_t{16} << 20;
    const std::int64_t page = platform::page_size();
    for (std::int64_t at = begin; at < end; at += kPart) {
        const std::int64_t len = std::min(kPart, end - at);
        const std::int64_t from = at / page * page;
        file.check_holds(at, at + len, [] { return std::string("the layers' data"); });
        // Fault the part in with one call (Linux 5.14+), not one fault per
        // page as write() touches it: on first use, the difference is ~2x.
        // Older kernels refuse it (EINVAL) and write() faults as before.
        platform::advise(const_cast<std::uint8_t*>(base) + from,
                         static_cast<std::size_t>(at + len - from),
                         platform::Advice::populate_read);
        out.write(base + at, static_cast<std::size_t>(len));
        // Written: drop the part from this process's resident set, so that
        // saving a large model does not grow RSS by the file's size. The pages
        // stay in the page cache; a later access maps them again. Not for a
        // private copy (load(copy=True)), whose pages it would zero.
        if (!file.copied()) {
            platform::advise(const_cast<std::uint8_t*>(base) + from,
                             static_cast<std::size_t>(at + len - from),
                             platform::Advice::dont_need);
        }
        if (progress) progress(out.written());
    }
}

}  // namespace yolo_io
