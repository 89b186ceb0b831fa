// Writing .weights files: an atomic output file (a temporary in the target's
// folder, fsync, rename), the header bytes, the element order of a parameter
// in a file, and the streaming copy of a mapped network's layers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "yolo_io/model.hpp"
#include "yolo_io/weights.hpp"

namespace yolo_io {

// A file written under a temporary name in the target's folder
// (`.yolo_io-` and 16 hex digits, `.tmp`: short, so that it fits wherever the
// target's name does) and renamed
// over the target by commit() after an fsync (then the folder is fsynced).
// Until then the target is untouched; destroying an uncommitted AtomicFile
// removes the temporary. The new file takes the mode of the file it replaces,
// else 0666 minus the umask. Errors are std::system_error naming the target.
class AtomicFile {
  public:
    explicit AtomicFile(std::string target);
    ~AtomicFile();
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    void write(const void* data, std::size_t n);
    std::int64_t written() const noexcept { return written_; }
    // Extends the file to `size` bytes with zeros (a hole where the file
    // system allows it); later writes append after them.
    void extend_to(std::int64_t size);
    void commit();
    // Removes the temporary now (also done by the destructor).
    void abort() noexcept;
    const std::string& target() const noexcept { return target_; }
    const std::string& temporary() const noexcept { return temp_; }

  private:
    std::string target_;
    std::string temp_;
    int fd_ = -1;
    std::int64_t written_ = 0;
};

// The header darknet writes: major, minor, revision (int32), then `seen` as
// uint64 (20-byte header) or uint32 (16 bytes) by header_size_for(). Throws
// std::invalid_argument for a version header_version_problem() refuses (the
// readers' rule: a negative major or minor, a part outside int32) or a `seen`
// too large for 32 bits.
std::string header_bytes(std::int64_t major, std::int64_t minor, std::int64_t revision,
                         std::uint64_t seen);

// Element strides of parameter `p` as stored in a file whose header does or
// does not transpose connected weights (Weights::element_strides for a
// loaded file).
std::vector<std::int64_t> file_element_strides(const ParamSpec& p, bool transpose);

// The shape of parameter `p`'s bytes as stored in such a file, C-contiguous:
// the planned shape, except [K][n] = (c/groups, size, size, filters) for a
// flipped conv and (inputs, outputs) for a connected matrix under a legacy
// header. A raw safetensors export gives each tensor this shape.
std::vector<std::int64_t> file_shape(const ParamSpec& p, bool transpose);

// Writes the data of the first `layers` layers of `source` (a mapped weights
// file or raw safetensors export) to `out`: read from the file again while
// its path still names the mapped file (same device and inode), a reader
// thread overlapping the writes (a file truncated since it was mapped is then
// a FormatError, not the SIGBUS a read of the mapping gets); else copied from
// the mapping. Either way the bytes are the mapped ones.
// `progress`, if given, is called on this thread with out.written() after
// every few MiB and at the end; an exception it throws stops the copy (the
// bindings use that to check for Ctrl-C).
using Progress = std::function<void(std::int64_t written)>;
void write_mapped_layers(const Weights& source, int layers, AtomicFile& out,
                         const Progress& progress = {});

}  // namespace yolo_io
