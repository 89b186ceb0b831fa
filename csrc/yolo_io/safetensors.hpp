// safetensors files: the reader (every check made before a tensor byte is
// read), the header writer, and yolo_io's raw export of a .weights file (one
// F32 tensor "{layer}.{param}" per darknet array, the data region byte for
// byte the .weights data, the cfg and header in the metadata).
//
// The format: an 8-byte little-endian length N, N bytes of JSON
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//  "__metadata__": {"key": "value", ...}}, then the data region; offsets are
// relative to its start, and the tensors cover it exactly, without overlap.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "yolo_io/mapped_file.hpp"
#include "yolo_io/model.hpp"

namespace yolo_io {

struct Header;
class Weights;

// The largest JSON header the reader accepts (the safetensors package's own limit).
constexpr std::int64_t kMaxSafetensorsHeader = std::int64_t{100} << 20;
// Counts the reader stops at, so that the memory and time a header costs are
// bounded by these and not by its length (a few bytes of JSON per metadata
// key or dimension cost ~100 bytes each, parsed): a yolo_io export has a
// few metadata keys and up to 5 tensors per layer (real cfgs have under
// 1,000 layers), checkpoints of other libraries a few thousand tensors,
// NumPy arrays at most 64 dimensions. The writer refuses to write what the
// reader would refuse.
constexpr std::int64_t kMaxSafetensorsMetadata = 10000;
constexpr std::int64_t kMaxSafetensorsTensors = 200000;
constexpr std::int64_t kMaxSafetensorsDims = 64;

// Bytes per element of a safetensors dtype ("F32" -> 4), 0 for one yolo_io
// does not know (sub-byte float formats included).
int safetensors_itemsize(std::string_view dtype);

struct TensorEntry {
    std::string name;
    std::string dtype;
    std::vector<std::int64_t> shape;
    std::int64_t begin = 0;  // data_offsets, relative to the data region
    std::int64_t end = 0;
};

using Metadata = std::vector<std::pair<std::string, std::string>>;

// A mapped safetensors file whose header has been validated: the length fits
// the file (and kMaxSafetensorsHeader), the JSON is well formed and of the
// schema above, every dtype is known, every tensor's byte count is its
// shape's (no overflow), and the tensors tile the data region exactly.
// Throws FormatError naming the file (and the tensor) otherwise.
class SafetensorsFile {
  public:
    explicit SafetensorsFile(std::shared_ptr<const MappedFile> file);

    const std::shared_ptr<const MappedFile>& file() const noexcept { return file_; }
    const std::string& path() const noexcept { return file_->path(); }
    // In the order of the JSON header.
    const std::vector<TensorEntry>& tensors() const noexcept { return tensors_; }
    const Metadata& metadata() const noexcept { return metadata_; }
    // The value of a metadata key, or nullptr.
    const std::string* meta(std::string_view key) const;
    // Byte offset of the data region in the file: 8 + header length.
    std::int64_t data_begin() const noexcept { return data_begin_; }

  private:
    std::shared_ptr<const MappedFile> file_;
    std::vector<TensorEntry> tensors_;
    Metadata metadata_;
    std::int64_t data_begin_ = 0;
};

// The header bytes: the 8-byte length, then the JSON (metadata first, then
// the tensors in the given order), padded with spaces so that the data region
// starts at a multiple of 8. Lays the tensors out back to back in that order:
// sets each entry's begin and end from its dtype and shape. Throws
// std::invalid_argument for an unknown dtype, a negative dimension, a
// duplicate name or text that is not UTF-8.
std::string safetensors_header(std::vector<TensorEntry>& tensors, const Metadata& metadata);

// The metadata every yolo_io export carries: "cfg" (the cfg's bytes; when
// they are not UTF-8, "cfg_base64" instead) and "header" (JSON of major,
// minor, revision, seen).
Metadata export_metadata(const Config& config, const Header& header);

// The raw export's tensors for `config` (F32, file_shape() of each array),
// laid out as the .weights data under a header with this transpose flag.
std::vector<TensorEntry> raw_export_tensors(const Config& config, bool transpose);

// The whole header of the raw export of `weights`, whose data region is then
// weights' layers as write_mapped_layers() streams them. Throws
// std::invalid_argument for a partial file.
std::string raw_export_header(const Weights& weights);

// The cfg bytes stored in a raw yolo_io export. Throws FormatError when the
// file is not one: no or other yolo_io metadata (another naming, fused), or
// a missing or undecodable cfg.
std::string raw_export_cfg(const SafetensorsFile& file);

// The darknet header stored in a raw yolo_io export (FormatError when it is
// not one, or the header is missing or malformed).
Header raw_export_header_of(const SafetensorsFile& file);

// Checks that the tensors of a raw export are exactly the plan of `config`
// (names, F32, shapes, offsets): FormatError naming the first that differs,
// with its layer and cfg line.
void check_raw_export(const SafetensorsFile& file, const Config& config, bool transpose);

}  // namespace yolo_io
