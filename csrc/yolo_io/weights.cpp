#include "yolo_io/weights.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <system_error>
#include <string>

#include "yolo_io/cfg.hpp"
#include "yolo_io/errors.hpp"
#include "yolo_io/parallel.hpp"
#include "yolo_io/platform.hpp"
#include "yolo_io/safetensors.hpp"
#include "yolo_io/writer.hpp"

namespace yolo_io {

namespace {

static_assert(sizeof(float) == 4, "yolo_io needs IEEE-754 binary32 floats");

bool host_is_little_endian() {
    const std::uint32_t one = 1;
    unsigned char b = 0;
    std::memcpy(&b, &one, 1);
    return b == 1;
}

std::int32_t read_i32(const char* p) {
    std::int32_t v = 0;
    std::memcpy(&v, p, 4);
    return v;
}

bool starts_with(const FileHead& f, const char* magic, std::size_t n) {
    return f.head.substr(0, n) == std::string_view(magic, n);
}

// Text (ASCII or UTF-8): no control characters but tab, LF and CR in the
// first 64 bytes. A real header has zero bytes (major 0) or, for legacy float
// headers, control bytes; neither passes.
bool looks_like_text(const FileHead& f) {
    if (f.head.empty()) {
        return false;
    }
    for (char c : f.head.substr(0, 64)) {
        auto ch = static_cast<unsigned char>(c);
        bool control = (ch < 0x20 && ch != '\n' && ch != '\r' && ch != '\t') || ch == 0x7f;
        if (control) {
            return false;
        }
    }
    return true;
}

[[noreturn]] void not_weights(const FileHead& f, const std::string& why) {
    throw FormatError(f.path + " is not a Darknet .weights file: " + why);
}

std::string layer_desc(const Config& c, std::size_t i) {
    const LayerInfo& L = c.layers[i];
    return "layer " + std::to_string(i) + " (" + std::string(L.type) + ", " + c.path + " line " +
           std::to_string(L.line) + ")";
}

std::string floats_str(std::int64_t bytes) {
    std::string s = std::to_string(bytes / 4) + " floats";
    if (bytes % 4 != 0) {
        s += " + " + std::to_string(bytes % 4) + " bytes";
    }
    return s;
}

}  // namespace

std::optional<NotWeights> why_not_weights(const FileHead& f) {
    auto is = [](const char* kind, std::string why) {
        return std::optional<NotWeights>(NotWeights{kind, std::move(why)});
    };
    if (f.size == 0) {
        return is("empty", "it is empty: 0 bytes, fewer than the 16 of the smallest header "
                           "(did a download or a copy fail?)");
    }
    if (starts_with(f, "PK\x03\x04", 4)) {
        return is("zip", "it is a ZIP archive (a PyTorch .pt/.pth checkpoint or a .keras file?)");
    }
    if (starts_with(f, "\x89HDF\r\n\x1a\n", 8)) {
        return is("hdf5", "it is an HDF5 file (a Keras .h5 model?)");
    }
    if (starts_with(f, "\x1f\x8b", 2)) {
        return is("gzip", "it is gzip-compressed; decompress it first");
    }
    if (starts_with(f, "\x80\x02", 2) || starts_with(f, "\x80\x03", 2) ||
        starts_with(f, "\x80\x04", 2)) {
        return is("pickle", "it is a Python pickle (a legacy PyTorch checkpoint?)");
    }
    if (looks_like_text(f)) {
        std::string what = "it is text, starting with \"" + printable(f.head.substr(0, 48)) + "\"";
        if (starts_with(f, "version https://git-lfs", 23)) {
            return is("git-lfs", what + ": a Git LFS pointer, not the data (run `git lfs pull`)");
        }
        if (f.head[0] == '<' || starts_with(f, "\xEF\xBB\xBF<", 4)) {
            return is("html", what + ": an HTML/XML page (did a download save an error or login "
                                     "page?)");
        }
        if (starts_like_cfg(f.head)) {
            return is("cfg", what + ": a .cfg file? (the weights come first: load(weights, cfg))");
        }
        return is("text", what);
    }
    if (f.size < 16) {
        return is("too-short", "it has " + std::to_string(f.size) +
                                   " bytes, fewer than the 16 of the smallest header");
    }
    const std::int32_t major = read_i32(f.head.data());
    const std::int32_t minor = read_i32(f.head.data() + 4);
    const std::int32_t revision = read_i32(f.head.data() + 8);
    if (auto problem = header_version_problem(major, minor, revision)) {
        return is("bad-header", "its header " + *problem);
    }
    const std::int64_t size = header_size_for(major, minor);
    if (f.size < size) {
        return is("too-short", "its header (version " + std::to_string(major) + "." +
                                   std::to_string(minor) + ") needs " + std::to_string(size) +
                                   " bytes but the file has " + std::to_string(f.size));
    }
    return std::nullopt;
}

std::optional<std::string> header_version_problem(std::int64_t major, std::int64_t minor,
                                                  std::int64_t revision) {
    constexpr std::int64_t lo = std::numeric_limits<std::int32_t>::min();
    constexpr std::int64_t hi = std::numeric_limits<std::int32_t>::max();
    const std::string version =
        std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(revision);
    if (major < 0 || minor < 0) {
        return "has a negative version (" + version + "): major and minor are 0 or more";
    }
    if (major > hi || minor > hi || revision < lo || revision > hi) {
        return "has a version (" + version + ") whose parts do not fit the header's int32";
    }
    return std::nullopt;
}

std::int64_t header_size_for(std::int32_t major, std::int32_t minor) {
    bool wide = static_cast<std::int64_t>(major) * 10 + minor >= 2 && major < 1000 &&
                minor < 1000;
    return wide ? 20 : 16;
}

Header read_header(const FileHead& f) {
    if (!host_is_little_endian()) {
        throw FormatError("yolo_io reads .weights (little-endian float32) only on "
                          "little-endian hosts");
    }
    if (auto problem = why_not_weights(f)) {
        not_weights(f, problem->why);
    }
    Header h;
    h.major = read_i32(f.head.data());
    h.minor = read_i32(f.head.data() + 4);
    h.revision = read_i32(f.head.data() + 8);
    h.size = header_size_for(h.major, h.minor);
    h.transpose = h.major > 1000 || h.minor > 1000;
    if (h.size == 20) {
        std::memcpy(&h.seen, f.head.data() + 12, 8);
    } else {
        std::uint32_t s32 = 0;
        std::memcpy(&s32, f.head.data() + 12, 4);
        h.seen = s32;
    }
    return h;
}

Header read_header(const MappedFile& file) {
    const auto* data = reinterpret_cast<const char*>(file.data());
    return read_header(
        FileHead{std::string_view(data, static_cast<std::size_t>(file.size())), file.size(),
                 file.path()});
}

std::int64_t expected_bytes_upto(const Config& config, std::int64_t header_size, int layers) {
    std::int64_t total = header_size;
    for (int i = 0; i < layers && i < static_cast<int>(config.layers.size()); ++i) {
        total += 4 * config.layers[static_cast<std::size_t>(i)].nfloats;
    }
    return total;
}

std::int64_t expected_bytes(const Config& config, std::int64_t header_size) {
    return header_size + 4 * config.total_floats;
}

Weights::Weights(std::shared_ptr<const Config> config, std::shared_ptr<const MappedFile> file,
                 bool partial)
    : config_(std::move(config)), file_(std::move(file)), header_(read_header(*file_)) {
    const Config& c = *config_;
    const std::size_t n = c.layers.size();
    offsets_.resize(n);
    data_begin_ = header_.size;
    std::int64_t pos = header_.size;
    for (std::size_t i = 0; i < n; ++i) {
        offsets_[i] = pos;
        pos += 4 * c.layers[i].nfloats;
    }
    const std::int64_t expected = pos;
    const std::int64_t actual = file_->size();
    covered_ = static_cast<int>(n);
    if (actual == expected) {
        return;
    }
    const std::string head = file_->path() + " does not match " + c.path + ": the cfg needs " +
                             std::to_string(expected) + " bytes (a " +
                             std::to_string(header_.size) + "-byte header for version " +
                             std::to_string(header_.major) + "." + std::to_string(header_.minor) +
                             "." + std::to_string(header_.revision) + " + " +
                             std::to_string(c.total_floats) + " floats), the file has " +
                             std::to_string(actual) + " bytes";
    if (actual > expected) {
        std::int64_t extra = actual - expected;
        std::string msg = head + ": " + std::to_string(extra) + " bytes (" + floats_str(extra) +
                          ") trail the last layer's data";
        int last = -1;
        for (std::size_t i = n; i-- > 0;) {
            if (c.layers[i].nfloats > 0) {
                last = static_cast<int>(i);
                break;
            }
        }
        if (last >= 0) {
            msg += ", which ends with " + layer_desc(c, static_cast<std::size_t>(last));
        }
        if (extra == 4 && header_.size == 16) {
            msg += ". The header claims version " + std::to_string(header_.major) + "." +
                   std::to_string(header_.minor) +
                   " (32-bit `seen`, 16-byte header), but the file is exactly 4 bytes long: it "
                   "was probably written with a 64-bit `seen`; set the header's minor version "
                   "to 2";
        } else {
            msg += ". Is this another model's weights file, or the wrong cfg?";
        }
        throw WeightsSizeError(msg, expected, actual, -1, -1);
    }
    // The file is short: find the first layer whose data crosses its end.
    std::size_t first = n;
    for (std::size_t i = 0; i < n; ++i) {
        if (c.layers[i].nfloats > 0 && offsets_[i] + 4 * c.layers[i].nfloats > actual) {
            first = i;
            break;
        }
    }
    const std::int64_t missing = expected - actual;
    const bool boundary = first < n && offsets_[first] == actual;
    if (boundary && partial) {
        covered_ = static_cast<int>(first);
        return;
    }
    std::string msg = head + ": " + std::to_string(missing) + " bytes (" + floats_str(missing) +
                      ") short. ";
    if (missing == 4 && header_.size == 20) {
        msg += "The header claims version " + std::to_string(header_.major) + "." +
               std::to_string(header_.minor) +
               " (64-bit `seen`, 20-byte header), but the file is exactly 4 bytes short: it was "
               "written with a 32-bit `seen`, a known bug of some PyTorch exporters (write an "
               "8-byte `seen`, or set the header's minor version to 1). ";
    }
    if (boundary) {
        // Layers that store nothing end at the same byte: any cutoff from the
        // last storing layer + 1 up to `first` writes this same file.
        std::size_t min_cut = first;
        while (min_cut > 0 && c.layers[min_cut - 1].nfloats == 0) {
            --min_cut;
        }
        std::string cut = min_cut == first ? std::to_string(first)
                                           : std::to_string(min_cut) + " to " +
                                                 std::to_string(first);
        msg += "The file ends exactly where " + layer_desc(c, first) +
               " begins: it looks like a partial file covering the first " +
               std::to_string(first) + " layers, as written by `darknet partial` with a "
               "cutoff of " + cut + "; pass partial=True to load it.";
    } else {
        const std::int64_t begin = offsets_[first];
        const std::int64_t end = begin + 4 * c.layers[first].nfloats;
        msg += "The data of " + layer_desc(c, first) + " would cross the end of the file: it "
               "needs bytes " + std::to_string(begin) + ".." + std::to_string(end) +
               ", the file ends at " + std::to_string(actual) + ".";
        if (partial) {
            msg += " partial=True accepts only a file that ends exactly on a layer boundary.";
        } else if (missing != 4) {
            msg += " Is this another model's weights file, a truncated download, or the wrong "
                   "cfg?";
        }
    }
    throw WeightsSizeError(msg, expected, actual, boundary ? -1 : static_cast<int>(first),
                           boundary ? static_cast<int>(first) : -1);
}

Weights::Weights(std::shared_ptr<const Config> config, const SafetensorsFile& file)
    : config_(std::move(config)), file_(file.file()), header_(raw_export_header_of(file)) {
    check_raw_export(file, *config_, header_.transpose);
    const Config& c = *config_;
    const std::size_t n = c.layers.size();
    offsets_.resize(n);
    data_begin_ = file.data_begin();
    std::int64_t pos = data_begin_;
    for (std::size_t i = 0; i < n; ++i) {
        offsets_[i] = pos;
        pos += 4 * c.layers[i].nfloats;
    }
    covered_ = static_cast<int>(n);
}

void Weights::evict(int i) const noexcept {
    if (!loaded(i) || nbytes(i) == 0 || file_->copied()) return;
    const std::int64_t page = platform::page_size();
    const std::int64_t begin = offsets_[static_cast<std::size_t>(i)] / page * page;
    const std::int64_t end = offsets_[static_cast<std::size_t>(i)] + nbytes(i);
    platform::advise(const_cast<std::uint8_t*>(file_->data()) + begin,
                     static_cast<std::size_t>(end - begin), platform::Advice::dont_need);
}

void Weights::check_held(int first, int last) const {
    first = std::max(first, 0);
    last = std::min(last, covered_);
    if (first >= last) return;
    const std::int64_t now = file_->current_size();
    if (now >= offsets_[static_cast<std::size_t>(last - 1)] + nbytes(last - 1)) return;
    for (int i = first; i < last; ++i) {
        const std::int64_t begin = offsets_[static_cast<std::size_t>(i)];
        if (begin + nbytes(i) <= now) continue;
        file_->check_holds(begin, begin + nbytes(i), [&] {
            return "the data of " + layer_desc(*config_, static_cast<std::size_t>(i));
        });
    }
}

const float* Weights::layer_data(int i) const {
    if (!loaded(i)) {
        throw std::out_of_range("layer " + std::to_string(i) + " is not in the file");
    }
    check_held(i, i + 1);
    const std::uint8_t* p = file_->data() + offsets_[static_cast<std::size_t>(i)];
    // Data starts at byte 16 or 20 of a page-aligned mapping (a safetensors
    // data region at a multiple of 8 when written by us): 4-byte aligned.
    if (reinterpret_cast<std::uintptr_t>(p) % alignof(float) != 0) {
        throw FormatError("misaligned float data in " + file_->path() + ": layer " +
                          std::to_string(i) + " starts at byte " +
                          std::to_string(offsets_[static_cast<std::size_t>(i)]) +
                          ", not a multiple of 4");
    }
    return reinterpret_cast<const float*>(p);
}

std::vector<std::int64_t> Weights::element_strides(const ParamSpec& p) const {
    return file_element_strides(p, header_.transpose);
}

void Weights::copy_params(const std::vector<ParamCopy>& copies, int threads) const {
    struct Piece {
        std::int64_t at;
        std::int64_t size;
        std::uint8_t* into;
    };
    std::vector<Piece> pieces;
    pieces.reserve(copies.size());
    for (const ParamCopy& c : copies) {
        if (!loaded(c.layer)) {
            throw std::out_of_range("layer " + std::to_string(c.layer) + " is not in " +
                                    file_->path());
        }
        const LayerInfo& layer = config_->layers.at(static_cast<std::size_t>(c.layer));
        if (c.param >= layer.params.size()) {
            throw std::out_of_range("layer " + std::to_string(c.layer) + " has no parameter " +
                                    std::to_string(c.param));
        }
        const ParamSpec& p = layer.params[c.param];
        const std::vector<std::int64_t> strides = element_strides(p);
        std::int64_t expected = 1;
        for (int k = p.ndim; k-- > 0;) {
            if (p.shape[static_cast<std::size_t>(k)] > 1 &&
                strides[static_cast<std::size_t>(k)] != expected) {
                throw std::invalid_argument("layer " + std::to_string(c.layer) + " " + p.name() +
                                            " is not stored in C order in " + file_->path());
            }
            expected *= p.shape[static_cast<std::size_t>(k)];
        }
        pieces.push_back({offsets_[static_cast<std::size_t>(c.layer)] + 4 * p.offset,
                          4 * p.count, static_cast<std::uint8_t*>(c.into)});
    }
    // Parts of about a megabyte: a large array is cut, small ones that follow
    // each other in the file (a conv's biases and batch norm) are read with
    // one preadv: yolov4's 541 arrays take 288 calls, not 738.
    constexpr std::int64_t kPart = std::int64_t{1} << 20;
    constexpr std::size_t kMaxBuffers = 64;
    struct Part {
        std::int64_t at;
        std::vector<platform::IoBuffer> buffers;
    };
    std::sort(pieces.begin(), pieces.end(),
              [](const Piece& a, const Piece& b) { return a.at < b.at; });
    std::vector<Part> parts;
    std::int64_t end = -1;  // the file offset after the last part's buffers
    std::int64_t size = 0;  // the last part's bytes
    for (const Piece& piece : pieces) {
        for (std::int64_t done = 0; done < piece.size; done += kPart) {
            const std::int64_t n = std::min(kPart, piece.size - done);
            const std::int64_t at = piece.at + done;
            if (at != end || size + n > kPart || parts.back().buffers.size() == kMaxBuffers) {
                parts.push_back({at, {}});
                size = 0;
            }
            parts.back().buffers.push_back({piece.into + done, static_cast<std::size_t>(n)});
            size += n;
            end = at + n;
        }
    }
    if (parts.empty()) return;
    // A truncated file: the error names the first of these layers it no
    // longer holds (read_at below still catches one truncated meanwhile).
    const std::int64_t now = file_->current_size();
    int short_layer = -1;
    for (const ParamCopy& c : copies) {
        const std::int64_t end = offsets_[static_cast<std::size_t>(c.layer)] + nbytes(c.layer);
        if (end > now && (short_layer < 0 || c.layer < short_layer)) short_layer = c.layer;
    }
    if (short_layer >= 0) check_held(short_layer, short_layer + 1);
    const platform::UniqueFd reopened(file_->reopen());
    const int fd = reopened.get();
    for_each_in_turn(parts.size(), threads, [&](std::size_t k, std::size_t) {
        Part& part = parts[k];
        if (fd >= 0) {
            file_->read_at(fd, part.buffers.data(), static_cast<int>(part.buffers.size()), part.at);
            return;
        }
        // No descriptor to spare (EMFILE): from the mapping, checked first.
        std::int64_t at = part.at;
        for (const platform::IoBuffer& buffer : part.buffers) {
            const auto len = static_cast<std::int64_t>(buffer.size);
            file_->check_holds(at, at + len, [] { return std::string("a parameter"); });
            std::memcpy(buffer.data, file_->data() + at, buffer.size);
            at += len;
        }
    });
}

}  // namespace yolo_io
