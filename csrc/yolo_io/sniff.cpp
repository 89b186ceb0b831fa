#include "yolo_io/sniff.hpp"

#include <algorithm>
#include <cstring>

#include "yolo_io/cfg.hpp"
#include "yolo_io/errors.hpp"
#include "yolo_io/mapped_file.hpp"
#include "yolo_io/weights.hpp"

namespace yolo_io {

namespace {

bool looks_like_safetensors(std::string_view head, std::int64_t size) {
    if (size < 10 || head.size() < 10) {
        return false;
    }
    std::uint64_t n = 0;
    std::memcpy(&n, head.data(), 8);  // little-endian hosts only (as the weights)
    return n >= 2 && n <= static_cast<std::uint64_t>(size - 8) && head[8] == '{' &&
           (head[9] == '"' || head[9] == '}' || head[9] == ' ');
}

bool looks_like_weights(std::string_view head, std::int64_t size) {
    Header h;
    try {
        h = read_header(FileHead{head, size, ""});
    } catch (const FormatError&) {
        return false;  // text, an archive, too short, a negative version
    }
    if ((size - h.size) % 4 != 0) {
        return false;
    }
    if (!h.transpose) {
        return true;
    }
    for (std::int32_t bits : {h.major, h.minor, h.revision}) {
        float value = 0;
        std::memcpy(&value, &bits, sizeof value);
        if (!(value >= 0.0f && value <= 10.0f)) {
            return false;
        }
    }
    return true;
}

}  // namespace

FileKind sniff(std::string_view head, std::int64_t size) {
    head = head.substr(0, kSniffBytes);
    if (starts_like_cfg(head)) {
        return FileKind::cfg;
    }
    if (looks_like_safetensors(head, size)) {
        return FileKind::safetensors;
    }
    return looks_like_weights(head, size) ? FileKind::weights : FileKind::other;
}

FileKind sniff_file(const std::string& path) {
    const MappedFile file(path);
    const auto n = std::min<std::size_t>(kSniffBytes, static_cast<std::size_t>(file.size()));
    return sniff(std::string_view(reinterpret_cast<const char*>(file.data()), n), file.size());
}

const char* kind_name(FileKind kind) {
    switch (kind) {
        case FileKind::cfg:
            return "cfg";
        case FileKind::weights:
            return "weights";
        case FileKind::safetensors:
            return "safetensors";
        case FileKind::other:
            break;
    }
    return "other";
}

}  // namespace yolo_io
