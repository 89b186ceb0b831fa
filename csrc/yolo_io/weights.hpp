// The .weights file: header (spec section 4), the size check against a
// Config (section 6) and the byte range of every layer (section 5).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "yolo_io/arena_memory.hpp"
#include "yolo_io/mapped_file.hpp"
#include "yolo_io/model.hpp"

namespace yolo_io {

class SafetensorsFile;

struct Header {
    std::int32_t major = 0;
    std::int32_t minor = 0;
    std::int32_t revision = 0;
    std::uint64_t seen = 0;
    std::int64_t size = 20;  // 16 (32-bit seen) or 20 (64-bit seen)
    bool transpose = false;  // legacy header: connected weights are [in][out]
};

// Header size implied by (major, minor): pjreddie's rule, which (unlike
// AlexeyAB's) does not overflow on legacy float headers.
std::int64_t header_size_for(std::int32_t major, std::int32_t minor);

// The one rule for a header's version, on reading a .weights file or a raw
// safetensors export and on writing either: major and minor are int32 >= 0
// (a negative one is taken for another kind of file, never written by
// darknet); the revision is any int32 and is kept as it is, because darknet
// reads it with fread(&revision, sizeof(int), ...) and never interprets it
// (AlexeyAB's load_weights_upto accepts any value, save_weights_upto writes
// its own constant). Returns why (major, minor, revision) break the rule, or
// nullopt; the values are taken as int64 so that a caller's out-of-range
// value is reported, not wrapped.
std::optional<std::string> header_version_problem(std::int64_t major, std::int64_t minor,
                                                  std::int64_t revision);

// The first bytes of a file as the header checks read them: `head` holds the
// first min(size, 64) bytes or more of a file of `size` bytes; `path` names
// it in messages.
struct FileHead {
    std::string_view head;
    std::int64_t size = 0;
    std::string path;
};

// Why the file whose first bytes are `head` cannot be a .weights file, if it
// cannot: `kind` is one of "empty", "zip", "hdf5", "gzip", "pickle", "git-lfs",
// "html", "cfg", "text", "too-short", "bad-header"; `why` says it in words.
struct NotWeights {
    std::string kind;
    std::string why;
};
std::optional<NotWeights> why_not_weights(const FileHead& head);

// Reads and validates the header of a file. Throws FormatError for a file
// that is too short, is text (an HTML page), an archive, or has a negative
// version.
Header read_header(const FileHead& head);
Header read_header(const MappedFile& file);

// Bytes a file with `header_size` needs for `config`, and the same for the
// first `layers` layers.
std::int64_t expected_bytes(const Config& config, std::int64_t header_size);
std::int64_t expected_bytes_upto(const Config& config, std::int64_t header_size, int layers);

// A weights file bound to a config: header read, sizes checked, every layer's
// byte range known. Only the header has been read from the file.
class Weights {
  public:
    // Throws WeightsSizeError when the sizes disagree. `partial` accepts a file
    // that ends exactly on a layer boundary (darknet's `partial` command).
    Weights(std::shared_ptr<const Config> config, std::shared_ptr<const MappedFile> file,
            bool partial);
    // A raw yolo_io safetensors export (safetensors.hpp): the header comes
    // from its metadata, the layers' data from its data region, which must be
    // exactly the plan of `config` (check_raw_export); FormatError otherwise.
    Weights(std::shared_ptr<const Config> config, const SafetensorsFile& file);

    const Header& header() const noexcept { return header_; }
    const Config& config() const noexcept { return *config_; }
    const std::shared_ptr<const Config>& config_ptr() const noexcept { return config_; }
    const std::shared_ptr<const MappedFile>& file() const noexcept { return file_; }
    // Number of leading layers whose data is in the file (all of them unless
    // the file is partial).
    int covered_layers() const noexcept { return covered_; }
    bool partial() const noexcept { return covered_ < static_cast<int>(offsets_.size()); }
    // Byte offset of the first layer's data in the file: the header size of
    // a .weights file, the data region of a safetensors export.
    std::int64_t data_begin() const noexcept { return data_begin_; }
    // Byte offset of layer i's data in the file (planned, even when uncovered).
    std::int64_t offset(int i) const { return offsets_.at(static_cast<std::size_t>(i)); }
    std::int64_t nbytes(int i) const {
        return 4 * config_->layers.at(static_cast<std::size_t>(i)).nfloats;
    }
    bool loaded(int i) const { return i < covered_ && i >= 0; }
    // Drops the pages of layer i's data from this process's resident set
    // (MADV_DONTNEED; the page cache keeps them and a later access maps them
    // again): streaming exports call it after each layer. No-op if not loaded.
    void evict(int i) const noexcept;
    // Throws FormatError, naming the file, the first of layers first..last-1
    // whose data it no longer holds and the sizes, when the file was
    // truncated since it was loaded (one fstat; no-op for a copy). Every
    // read of the file's layers checks first: through the mapping, such a
    // read would be SIGBUS.
    void check_held(int first, int last) const;
    // Pointer to layer i's first float; requires loaded(i). Every read of
    // the mapping starts here, so it checks check_held(i, i + 1).
    const float* layer_data(int i) const;
    // Element strides of a parameter as stored in this file: C-contiguous,
    // the planned strides of a flipped conv, or [inputs][outputs] for a
    // connected matrix under a legacy (transposing) header.
    std::vector<std::int64_t> element_strides(const ParamSpec& p) const;

    // One parameter (index `param` into layer `layer`'s plan) to copy, as
    // float32 in the C order of its shape, to `into`.
    struct ParamCopy {
        int layer = 0;
        std::size_t param = 0;
        void* into = nullptr;
    };
    // Copies every parameter of `copies` out of the file with `threads`
    // threads, in parts of about a megabyte taken in turn. The file is read
    // with pread() through a new descriptor (reopen()), so the mapping is
    // not faulted in page by page; from the mapping only for a copy or when
    // no descriptor can be made. Checks every copy before the first byte:
    // std::out_of_range for a layer not in the file or an unknown parameter,
    // std::invalid_argument for a parameter that is not C-contiguous in the
    // file (a legacy transposed matrix, a flipped conv). FormatError: the
    // file was truncated since it was loaded.
    void copy_params(const std::vector<ParamCopy>& copies, int threads) const;

  private:
    std::shared_ptr<const Config> config_;
    std::shared_ptr<const MappedFile> file_;
    Header header_;
    std::int64_t data_begin_ = 0;
    std::vector<std::int64_t> offsets_;
    int covered_ = 0;
    // The fusion arenas' cache lives while a network does (arena_memory.hpp).
    ArenaUser arena_user_;
};

}  // namespace yolo_io
