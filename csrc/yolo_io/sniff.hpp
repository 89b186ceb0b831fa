// Which file is which, from its first bytes: a cfg text, a Darknet .weights
// file, or neither. Tells a user who passed one for the other what happened.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace yolo_io {

enum class FileKind { cfg, weights, safetensors, other };

// How much of a file sniff_file() looks at.
constexpr std::size_t kSniffBytes = 4096;

// `head` holds the first min(size, kSniffBytes) bytes (or more) of a file of
// `size` bytes. A cfg starts like one (starts_like_cfg() in cfg.hpp). A
// weights file is binary with a header read_header() accepts, of a version
// darknet writes or a legacy header (learning rate, momentum and decay as
// float32 values in [0, 10]), followed by whole float32 values. A
// safetensors file starts with the little-endian length of its JSON header,
// which fits the file, then `{"` or `{}`.
FileKind sniff(std::string_view head, std::int64_t size);

// sniff() of the first kSniffBytes of `path` (mapped, so no more is read).
// Throws std::system_error as MappedFile does (missing, a directory, a FIFO).
FileKind sniff_file(const std::string& path);

// "cfg", "weights", "safetensors" or "other".
const char* kind_name(FileKind kind);

}  // namespace yolo_io
