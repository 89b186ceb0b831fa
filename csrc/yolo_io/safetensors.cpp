#include "yolo_io/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "yolo_io/cfg.hpp"
#include "yolo_io/errors.hpp"
#include "yolo_io/json.hpp"
#include "yolo_io/weights.hpp"
#include "yolo_io/writer.hpp"

namespace yolo_io {

namespace {

constexpr std::string_view kFormat = "yolo_io.darknet";
constexpr std::string_view kMetadataKey = "__metadata__";

// -- base64 ----------------------------------------------------------------------

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(std::string_view s) {
    std::string out;
    out.reserve((s.size() + 2) / 3 * 4);
    for (std::size_t i = 0; i < s.size(); i += 3) {
        std::uint32_t v = static_cast<std::uint32_t>(static_cast<unsigned char>(s[i])) << 16;
        if (i + 1 < s.size()) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(s[i + 1])) << 8;
        if (i + 2 < s.size()) v |= static_cast<unsigned char>(s[i + 2]);
        out += kBase64[(v >> 18) & 63u];
        out += kBase64[(v >> 12) & 63u];
        out += i + 1 < s.size() ? kBase64[(v >> 6) & 63u] : '=';
        out += i + 2 < s.size() ? kBase64[v & 63u] : '=';
    }
    return out;
}

// Strict base64 (padded, no whitespace); false when `s` is not.
bool base64_decode(std::string_view s, std::string& out) {
    if (s.size() % 4 != 0) return false;
    out.clear();
    for (std::size_t i = 0; i < s.size(); i += 4) {
        std::uint32_t v = 0;
        int pad = 0;
        for (std::size_t k = 0; k < 4; ++k) {
            const char c = s[i + k];
            const char* at = std::strchr(kBase64, c);
            if (c == '=' && i + 4 == s.size() && k >= 2) {
                ++pad;
                v <<= 6;
                continue;
            }
            if (c == '\0' || at == nullptr || pad > 0) return false;
            v = (v << 6) | static_cast<std::uint32_t>(at - kBase64);
        }
        out += static_cast<char>((v >> 16) & 0xFFu);
        if (pad < 2) out += static_cast<char>((v >> 8) & 0xFFu);
        if (pad < 1) out += static_cast<char>(v & 0xFFu);
    }
    return true;
}

// The reader of a safetensors JSON header (`where`: the file, or the file
// and the metadata value), whose bytes start at offset 8 of the file.
JsonReader header_json(std::string_view text, const std::string& where) {
    return JsonReader(text, where + " is not a valid safetensors file: its JSON header ", 8);
}

std::string quoted(std::string_view name) { return "\"" + printable(name) + "\""; }

std::string shape_text(const std::vector<std::int64_t>& shape) {
    std::string s = "(";
    for (std::size_t k = 0; k < shape.size(); ++k) {
        s += (k ? ", " : "") + std::to_string(shape[k]);
    }
    return s + (shape.size() == 1 ? ",)" : ")");
}

std::string entry_text(const TensorEntry& e) {
    return e.dtype + " " + shape_text(e.shape) + " at bytes " + std::to_string(e.begin) + ".." +
           std::to_string(e.end);
}

// Bytes of a tensor: itemsize * product(shape), or -1 on overflow.
std::int64_t tensor_bytes(int itemsize, const std::vector<std::int64_t>& shape) {
    std::int64_t n = itemsize;
    for (std::int64_t d : shape) {
        if (d < 0) return -1;
        if (d != 0 && n > std::numeric_limits<std::int64_t>::max() / d) return -1;
        n *= d;
    }
    return n;
}

std::int64_t to_i64(JsonReader& json, std::uint64_t v, const char* what) {
    if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        json.fail(std::string("has ") + what + " too large");
    }
    return static_cast<std::int64_t>(v);
}

TensorEntry read_tensor(JsonReader& json, std::string name, const std::string& path) {
    TensorEntry e;
    e.name = std::move(name);
    const std::string where = "tensor " + quoted(e.name);
    bool dtype = false, shape = false, offsets = false;
    json.object("a tensor's {dtype, shape, data_offsets}", [&](const std::string& key) {
        if (key == "dtype") {
            e.dtype = json.string();
            dtype = true;
        } else if (key == "shape") {
            json.array("a shape", [&] {
                if (static_cast<std::int64_t>(e.shape.size()) == kMaxSafetensorsDims) {
                    json.fail("has a shape of more than " + std::to_string(kMaxSafetensorsDims) +
                              " dimensions (" + where + ")");
                }
                e.shape.push_back(to_i64(json, json.integer("a dimension"), "a dimension"));
            });
            shape = true;
        } else if (key == "data_offsets") {
            std::vector<std::int64_t> v;
            json.array("data_offsets", [&] {
                v.push_back(to_i64(json, json.integer("an offset"), "an offset"));
                if (v.size() > 2) json.fail("has more than 2 data_offsets (" + where + ")");
            });
            if (v.size() != 2) {
                throw FormatError(path + " is not a valid safetensors file: " + where +
                                  " has data_offsets of " + std::to_string(v.size()) +
                                  " values, expected [begin, end]");
            }
            e.begin = v[0];
            e.end = v[1];
            offsets = true;
        } else {
            throw FormatError(path + " is not a valid safetensors file: " + where +
                              " has the unknown field " + quoted(key) +
                              " (expected dtype, shape, data_offsets)");
        }
    });
    if (!dtype || !shape || !offsets) {
        throw FormatError(path + " is not a valid safetensors file: " + where + " has no " +
                          (!dtype ? "dtype" : !shape ? "shape" : "data_offsets"));
    }
    return e;
}

[[noreturn]] void not_raw_export(const SafetensorsFile& f, const std::string& why) {
    throw FormatError(f.path() + " " + why +
                      ": only a raw yolo_io export (yolo_io.save_safetensors(path, net) with "
                      "fuse=False, layout=None, dtype=\"float32\", naming=None) loads as a "
                      "Network; read its tensors with safetensors.numpy.load_file");
}

void require_raw(const SafetensorsFile& f) {
    const std::string* format = f.meta("format");
    if (format == nullptr) {
        not_raw_export(f, "is a safetensors file but not a yolo_io export (its metadata has no "
                          "\"format\": \"yolo_io.darknet\")");
    }
    if (*format != kFormat) {
        std::string what = "is a safetensors file of format " + quoted(*format);
        if (*format == "yolo_io.state_dict") {
            what = "is a yolo_io state-dict export (";
            bool first = true;
            for (const char* key : {"naming", "fuse", "layout", "dtype"}) {
                if (const std::string* v = f.meta(key)) {
                    what += (first ? "" : ", ") + std::string(key) + "=" + printable(*v);
                    first = false;
                }
            }
            what += "), not a raw one";
        }
        not_raw_export(f, what);
    }
    for (auto [key, want] : {std::pair<const char*, const char*>{"layout", "darknet"},
                             {"fuse", "0"},
                             {"dtype", "float32"}}) {
        const std::string* v = f.meta(key);
        if (v != nullptr && *v != want) {
            not_raw_export(f, std::string("is a yolo_io export with ") + key + "=" +
                                  printable(*v) + " (a raw export has " + key + "=" + want + ")");
        }
    }
}

struct PlannedTensor {
    TensorEntry entry;
    int layer = 0;
};

std::vector<PlannedTensor> plan_raw(const Config& config, bool transpose) {
    std::vector<PlannedTensor> out;
    std::int64_t layer_begin = 0;
    for (const LayerInfo& L : config.layers) {
        for (const ParamSpec& p : L.params) {
            PlannedTensor t;
            t.layer = L.index;
            t.entry.name = std::to_string(L.index) + "." + p.name();
            t.entry.dtype = "F32";
            t.entry.shape = file_shape(p, transpose);
            t.entry.begin = layer_begin + 4 * p.offset;
            t.entry.end = t.entry.begin + 4 * p.count;
            out.push_back(std::move(t));
        }
        layer_begin += 4 * L.nfloats;
    }
    return out;
}

}  // namespace

int safetensors_itemsize(std::string_view dtype) {
    static const std::pair<std::string_view, int> kSizes[] = {
        {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
        {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},     {"U32", 4},
        {"F32", 4},  {"I64", 8}, {"U64", 8}, {"F64", 8},     {"C64", 8}};
    for (const auto& [name, size] : kSizes) {
        if (name == dtype) return size;
    }
    return 0;
}

SafetensorsFile::SafetensorsFile(std::shared_ptr<const MappedFile> file) : file_(std::move(file)) {
    const std::string& path = file_->path();
    const std::int64_t size = file_->size();
    auto bad = [&](const std::string& why) {
        return FormatError(path + " is not a valid safetensors file: " + why);
    };
    if (size < 8) {
        throw bad("it has " + std::to_string(size) +
                  " bytes, fewer than the 8 of the header length");
    }
    std::uint64_t n = 0;
    std::memcpy(&n, file_->data(), 8);  // little-endian (checked by read_header's callers)
    if (n > static_cast<std::uint64_t>(size - 8)) {
        throw bad("its first 8 bytes give a header length of " + std::to_string(n) +
                  " bytes, but only " + std::to_string(size - 8) + " bytes follow them");
    }
    if (n > static_cast<std::uint64_t>(kMaxSafetensorsHeader)) {
        throw bad("its header length is " + std::to_string(n) + " bytes, more than the " +
                  std::to_string(kMaxSafetensorsHeader) + " a safetensors header may have");
    }
    const auto header_len = static_cast<std::int64_t>(n);
    data_begin_ = 8 + header_len;
    const std::int64_t data_size = size - data_begin_;
    std::string_view text(reinterpret_cast<const char*>(file_->data()) + 8,
                          static_cast<std::size_t>(header_len));
    JsonReader json = header_json(text, path);
    json.object("a JSON object", [&](const std::string& key) {
        if (key == kMetadataKey) {
            if (json.literal_null()) return;
            json.object("the __metadata__ object", [&](const std::string& mkey) {
                if (static_cast<std::int64_t>(metadata_.size()) == kMaxSafetensorsMetadata) {
                    throw bad("its header has more than " +
                              std::to_string(kMaxSafetensorsMetadata) +
                              " metadata keys, more than any real file needs (refused at the "
                              "first key past them)");
                }
                if (json.peek() != '"') {
                    json.fail("has the metadata value of " + quoted(mkey) +
                              " not a string (metadata map strings to strings)");
                }
                metadata_.emplace_back(mkey, json.string());
            });
            return;
        }
        if (static_cast<std::int64_t>(tensors_.size()) == kMaxSafetensorsTensors) {
            throw bad("its header has more than " + std::to_string(kMaxSafetensorsTensors) +
                      " tensors, more than any real file needs (refused at the first tensor "
                      "past them)");
        }
        tensors_.push_back(read_tensor(json, key, path));
    });
    if (!json.at_end()) json.fail("has text after its closing '}'");

    // Each tensor on its own, then the tiling of the data region.
    for (const TensorEntry& e : tensors_) {
        const std::string where = "tensor " + quoted(e.name);
        const int itemsize = safetensors_itemsize(e.dtype);
        if (itemsize == 0) {
            throw bad(where + " has the unknown dtype " + quoted(e.dtype) +
                      " (expected BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, "
                      "U32, F32, I64, U64, F64)");
        }
        if (e.begin > e.end) {
            throw bad(where + " has data_offsets [" + std::to_string(e.begin) + ", " +
                      std::to_string(e.end) + "]: the end is before the begin");
        }
        if (e.end > data_size) {
            throw bad(where + " has data_offsets [" + std::to_string(e.begin) + ", " +
                      std::to_string(e.end) + "] past the end of the data region, which has " +
                      std::to_string(data_size) + " bytes");
        }
        const std::int64_t need = tensor_bytes(itemsize, e.shape);
        if (need < 0) {
            throw bad(where + " has the shape " + shape_text(e.shape) +
                      ", whose byte count overflows 64 bits");
        }
        if (need != e.end - e.begin) {
            throw bad(where + " is " + e.dtype + " " + shape_text(e.shape) + ": it needs " +
                      std::to_string(need) + " bytes, but its data_offsets [" +
                      std::to_string(e.begin) + ", " + std::to_string(e.end) + "] hold " +
                      std::to_string(e.end - e.begin));
        }
    }
    std::vector<std::size_t> order(tensors_.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return std::pair(tensors_[a].begin, tensors_[a].end) <
               std::pair(tensors_[b].begin, tensors_[b].end);
    });
    std::int64_t covered = 0;
    const TensorEntry* previous = nullptr;
    for (std::size_t k : order) {
        const TensorEntry& e = tensors_[k];
        if (e.begin < covered) {
            throw bad("tensor " + quoted(e.name) + " (bytes " + std::to_string(e.begin) + ".." +
                      std::to_string(e.end) + ") overlaps tensor " + quoted(previous->name) +
                      " (bytes " + std::to_string(previous->begin) + ".." +
                      std::to_string(previous->end) + ")");
        }
        if (e.begin > covered) {
            throw bad("bytes " + std::to_string(covered) + ".." + std::to_string(e.begin) +
                      " of the data region belong to no tensor (before tensor " +
                      quoted(e.name) + ")");
        }
        covered = e.end;
        previous = &e;
    }
    if (covered != data_size) {
        throw bad("its data region has " + std::to_string(data_size) + " bytes, but the tensors "
                  "cover only " + std::to_string(covered) + ": " +
                  std::to_string(data_size - covered) + " bytes trail the last tensor");
    }
}

const std::string* SafetensorsFile::meta(std::string_view key) const {
    for (const auto& [k, v] : metadata_) {
        if (k == key) return &v;
    }
    return nullptr;
}

std::string safetensors_header(std::vector<TensorEntry>& tensors, const Metadata& metadata) {
    if (static_cast<std::int64_t>(metadata.size()) > kMaxSafetensorsMetadata ||
        static_cast<std::int64_t>(tensors.size()) > kMaxSafetensorsTensors) {
        throw std::invalid_argument(
            std::to_string(tensors.size()) + " tensors and " + std::to_string(metadata.size()) +
            " metadata keys: more than a safetensors file may have for yolo_io (" +
            std::to_string(kMaxSafetensorsTensors) + " and " +
            std::to_string(kMaxSafetensorsMetadata) + "), which would refuse to read it");
    }
    std::string json = "{";
    bool first = true;
    if (!metadata.empty()) {
        json_string(json, kMetadataKey);
        json += ":{";
        std::unordered_set<std::string_view> keys;
        for (const auto& [k, v] : metadata) {
            if (!keys.insert(k).second) {
                throw std::invalid_argument("duplicate metadata key \"" + printable(k) + "\"");
            }
            if (keys.size() > 1) json += ',';
            json_string(json, k);
            json += ':';
            json_string(json, v);
        }
        json += '}';
        first = false;
    }
    std::unordered_set<std::string_view> names;
    std::int64_t at = 0;
    for (TensorEntry& e : tensors) {
        if (e.name == kMetadataKey || !names.insert(e.name).second) {
            throw std::invalid_argument("duplicate or reserved tensor name \"" + printable(e.name) +
                                        "\"");
        }
        const int itemsize = safetensors_itemsize(e.dtype);
        if (itemsize == 0) throw std::invalid_argument("unknown safetensors dtype " + e.dtype);
        const std::int64_t bytes = tensor_bytes(itemsize, e.shape);
        if (bytes < 0) {
            throw std::invalid_argument("tensor \"" + printable(e.name) + "\": bad shape " +
                                        shape_text(e.shape));
        }
        e.begin = at;
        e.end = at + bytes;
        at = e.end;
        if (!first) json += ',';
        first = false;
        json_string(json, e.name);
        json += ":{\"dtype\":";
        json_string(json, e.dtype);
        json += ",\"shape\":[";
        for (std::size_t k = 0; k < e.shape.size(); ++k) {
            json += (k ? "," : "") + std::to_string(e.shape[k]);
        }
        json += "],\"data_offsets\":[" + std::to_string(e.begin) + "," + std::to_string(e.end) +
                "]}";
    }
    json += '}';
    // The data region starts at a multiple of 8, as the safetensors package writes it.
    json.append((8 - json.size() % 8) % 8, ' ');
    const std::uint64_t n = json.size();
    std::string out(8, '\0');
    std::memcpy(out.data(), &n, 8);
    return out + json;
}

Metadata export_metadata(const Config& config, const Header& header) {
    Metadata m;
    const std::string& source = config.text.source;
    if (valid_utf8(source)) {
        m.emplace_back("cfg", source);
    } else {
        m.emplace_back("cfg_base64", base64_encode(source));
    }
    m.emplace_back("header", "{\"major\": " + std::to_string(header.major) +
                                 ", \"minor\": " + std::to_string(header.minor) +
                                 ", \"revision\": " + std::to_string(header.revision) +
                                 ", \"seen\": " + std::to_string(header.seen) + "}");
    return m;
}

std::vector<TensorEntry> raw_export_tensors(const Config& config, bool transpose) {
    std::vector<TensorEntry> out;
    for (PlannedTensor& t : plan_raw(config, transpose)) out.push_back(std::move(t.entry));
    return out;
}

std::string raw_export_header(const Weights& weights) {
    if (weights.partial()) {
        throw std::invalid_argument(weights.file()->path() + " holds only the first " +
                                    std::to_string(weights.covered_layers()) + " of " +
                                    std::to_string(weights.config().layers.size()) +
                                    " layers; a raw safetensors export needs them all");
    }
    Metadata m = export_metadata(weights.config(), weights.header());
    m.insert(m.begin(), {{"format", std::string(kFormat)},
                         {"layout", "darknet"},
                         {"fuse", "0"},
                         {"dtype", "float32"}});
    std::vector<TensorEntry> tensors = raw_export_tensors(weights.config(), weights.header().transpose);
    return safetensors_header(tensors, m);
}

std::string raw_export_cfg(const SafetensorsFile& file) {
    require_raw(file);
    if (const std::string* cfg = file.meta("cfg")) {
        return *cfg;
    }
    if (const std::string* b64 = file.meta("cfg_base64")) {
        std::string out;
        if (!base64_decode(*b64, out)) {
            throw FormatError(file.path() + ": its metadata \"cfg_base64\" is not valid base64");
        }
        return out;
    }
    throw FormatError(file.path() + " is a raw yolo_io export without its cfg (no \"cfg\" in "
                                    "its metadata): pass the cfg, load(path, cfg)");
}

Header raw_export_header_of(const SafetensorsFile& file) {
    require_raw(file);
    const std::string* text = file.meta("header");
    if (text == nullptr) {
        throw FormatError(file.path() + " is a raw yolo_io export without its darknet header "
                                        "(no \"header\" in its metadata)");
    }
    std::string where = file.path() + " (its metadata \"header\")";
    JsonReader json = header_json(*text, where);
    std::uint64_t values[4] = {0, 0, 0, 0};
    bool got[4] = {false, false, false, false};
    bool negative[4] = {false, false, false, false};
    static constexpr const char* kKeys[4] = {"major", "minor", "revision", "seen"};
    json.object("a JSON object", [&](const std::string& key) {
        for (int k = 0; k < 4; ++k) {
            if (key == kKeys[k]) {
                // A sign is read for the version's parts, which the one rule
                // of header_version_problem() then judges (a revision may be
                // negative, as in a .weights file).
                if (k < 3 && json.peek() == '-') {
                    json.expect('-', "a minus sign");
                    negative[k] = true;
                }
                values[k] = json.integer(kKeys[k]);
                got[k] = true;
                return;
            }
        }
        json.fail("has the unknown key " + quoted(key) + " (expected major, minor, revision, seen)");
    });
    if (!json.at_end()) json.fail("has text after its closing '}'");
    std::int64_t version[3] = {0, 0, 0};
    for (int k = 0; k < 4; ++k) {
        if (!got[k]) json.fail(std::string("has no \"") + kKeys[k] + "\"");
        if (k < 3 && values[k] > static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max()) + 1) {
            json.fail(std::string("has a \"") + kKeys[k] + "\" that is not an int32");
        }
        if (k < 3) {
            const auto v = static_cast<std::int64_t>(values[k]);
            version[k] = negative[k] ? -v : v;
        }
    }
    if (auto problem = header_version_problem(version[0], version[1], version[2])) {
        json.fail(*problem);
    }
    Header h;
    h.major = static_cast<std::int32_t>(version[0]);
    h.minor = static_cast<std::int32_t>(version[1]);
    h.revision = static_cast<std::int32_t>(version[2]);
    h.seen = values[3];
    h.size = header_size_for(h.major, h.minor);
    h.transpose = h.major > 1000 || h.minor > 1000;
    if (h.size == 16 && h.seen > std::numeric_limits<std::uint32_t>::max()) {
        json.fail("has a \"seen\" too large for the 32-bit seen of version " +
                  std::to_string(h.major) + "." + std::to_string(h.minor));
    }
    return h;
}

void check_raw_export(const SafetensorsFile& file, const Config& config, bool transpose) {
    const std::vector<PlannedTensor> plan = plan_raw(config, transpose);
    std::unordered_map<std::string_view, const TensorEntry*> by_name;
    for (const TensorEntry& e : file.tensors()) by_name.emplace(e.name, &e);
    const std::string head = file.path() + " does not match " + config.path + ": ";
    const std::string hint = " (were the tensors exported with another cfg?)";
    for (const PlannedTensor& t : plan) {
        const LayerInfo& L = config.layers[static_cast<std::size_t>(t.layer)];
        const std::string layer = "layer " + std::to_string(L.index) + " (" + std::string(L.type) +
                                  ", " + config.path + " line " + std::to_string(L.line) + ")";
        auto it = by_name.find(t.entry.name);
        if (it == by_name.end()) {
            throw FormatError(head + "it has no tensor " + quoted(t.entry.name) + ", which " +
                              layer + " stores as " + entry_text(t.entry) + hint);
        }
        const TensorEntry& e = *it->second;
        if (e.dtype != t.entry.dtype || e.shape != t.entry.shape || e.begin != t.entry.begin ||
            e.end != t.entry.end) {
            throw FormatError(head + "tensor " + quoted(e.name) + " is " + entry_text(e) + ", " +
                              layer + " expects " + entry_text(t.entry) + hint);
        }
    }
    if (file.tensors().size() != plan.size()) {
        std::unordered_set<std::string_view> planned;
        for (const PlannedTensor& t : plan) planned.insert(t.entry.name);
        for (const TensorEntry& e : file.tensors()) {
            if (planned.count(e.name) == 0) {
                throw FormatError(head + "tensor " + quoted(e.name) + " (" + entry_text(e) +
                                  ") belongs to no array of the cfg, which plans " +
                                  std::to_string(plan.size()) + " tensors" + hint);
            }
        }
    }
    if (file.data_begin() % 4 != 0) {
        throw FormatError(file.path() + ": its data region starts at byte " +
                          std::to_string(file.data_begin()) +
                          ", not a multiple of 4, so its float32 tensors cannot be viewed in "
                          "place");
    }
}

}  // namespace yolo_io
