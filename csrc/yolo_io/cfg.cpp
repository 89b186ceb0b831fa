#include "yolo_io/cfg.hpp"

#include <algorithm>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <system_error>

#include "yolo_io/errors.hpp"
#include "yolo_io/mapped_file.hpp"
#include "yolo_io/platform.hpp"
#include "yolo_io/sniff.hpp"

namespace yolo_io {

namespace {

bool is_stripped(char ch) {
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

// Length of the UTF-8 sequence at s[i] and its code point, or 0 when the
// bytes there are not one (a stray continuation byte, an overlong form, a
// surrogate, beyond U+10FFFF, cut short).
std::size_t utf8_at(std::string_view s, std::size_t i, std::uint32_t& cp) {
    const auto lead = static_cast<unsigned char>(s[i]);
    if (lead < 0x80) {
        cp = lead;
        return 1;
    }
    std::size_t n = 0;
    if (lead >= 0xC0 && lead < 0xE0) {
        n = 2;
    } else if (lead >= 0xE0 && lead < 0xF0) {
        n = 3;
    } else if (lead >= 0xF0 && lead < 0xF8) {
        n = 4;
    }
    if (n == 0 || i + n > s.size()) {
        return 0;
    }
    cp = lead & (0x7Fu >> n);
    for (std::size_t k = 1; k < n; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (b & 0x3Fu);
    }
    static constexpr std::uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};  // no overlong forms
    bool valid = cp >= least[n] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    return valid ? n : 0;
}

// Code points a reader cannot see, or cannot tell from a space.
bool invisible(std::uint32_t cp) {
    return (cp >= 0x80 && cp <= 0xA0) || cp == 0xAD || cp == 0x34F || cp == 0x61C ||
           cp == 0x115F || cp == 0x1160 || cp == 0x180E || (cp >= 0x2000 && cp <= 0x200F) ||
           (cp >= 0x2028 && cp <= 0x202F) || (cp >= 0x205F && cp <= 0x206F) ||
           cp == 0x3000 || cp == 0x3164 || cp == 0xFEFF || cp == 0xFFA0 ||
           (cp >= 0xFFF0 && cp <= 0xFFFB) || (cp >= 0xE0000 && cp <= 0xE0FFF);
}

void append_hex(std::string& out, const char* prefix, std::uint32_t value, int digits) {
    static const char* hex = "0123456789abcdef";
    out += prefix;
    for (int shift = 4 * (digits - 1); shift >= 0; shift -= 4) {
        out.push_back(hex[(value >> shift) & 15u]);
    }
}

}  // namespace

std::string printable(std::string_view bytes, std::size_t limit) {
    std::string out;
    out.reserve(std::min(bytes.size(), limit));
    std::size_t i = 0;
    while (i < bytes.size()) {
        if (i >= limit) {
            out += "... (" + std::to_string(bytes.size() - i) + " more bytes)";
            break;
        }
        std::uint32_t cp = 0;
        const std::size_t n = utf8_at(bytes, i, cp);
        if (n == 0) {
            append_hex(out, "\\x", static_cast<unsigned char>(bytes[i]), 2);
            i += 1;
            continue;
        }
        if (cp == '\t' || cp == '\n' || cp == '\r') {
            out += cp == '\t' ? "\\t" : cp == '\n' ? "\\n" : "\\r";
        } else if (cp < 0x20 || cp == 0x7F) {
            append_hex(out, "\\x", cp, 2);
        } else if (invisible(cp)) {
            append_hex(out, cp <= 0xFFFF ? "\\u" : "\\U", cp, cp <= 0xFFFF ? 4 : 8);
        } else {
            out.append(bytes.substr(i, n));
        }
        i += n;
    }
    return out;
}

bool starts_like_cfg(std::string_view head) {
    if (head.substr(0, kUtf8Bom.size()) == kUtf8Bom) {
        head.remove_prefix(kUtf8Bom.size());
    }
    char first = '\0';  // of the current line, after strip()
    for (char ch : head) {
        const auto byte = static_cast<unsigned char>(ch);
        if (ch == '\n') {
            first = '\0';
        } else if ((byte < 0x20 && ch != '\t' && ch != '\r') || byte == 0x7F) {
            return false;
        } else if (first == '\0' && !is_stripped(ch)) {
            first = ch;
            if (first == '[') {
                return true;
            }
            if (first != '#' && first != ';') {
                return false;
            }
        }
    }
    return false;
}

std::string read_text_file(const std::string& path) {
    platform::FileInfo st;
    const platform::UniqueFd fd = open_checked(path, st, [&](const platform::FileInfo& s) {
        // A pipe (<(...)) or a named FIFO: read as a stream.
        if (s.type == platform::FileType::fifo) return;
        if (const char* kind = special_file_kind(s.type)) {
            throw CfgError(path + " is " + kind + ", not a regular file: a .cfg is read from a "
                                  "file or a pipe (pass its text to parse_cfg() to read it from "
                                  "elsewhere)",
                           path, 0);
        }
    });
    if (st.type == platform::FileType::fifo) {
        // Reads block from here: a pipe's writer is on its way (<(curl ...));
        // a FIFO that no one has opened for writing reads as empty.
        platform::set_blocking(fd.get());
    }
    auto too_large = [&](std::int64_t bytes) {
        return CfgError(path + " is " + std::to_string(bytes) + " bytes or more, more than the " +
                            std::to_string(kMaxCfgBytes >> 20) + " MiB a .cfg may have (the " +
                            "largest darknet cfgs are tens of kilobytes): is it a cfg?",
                        path, 0);
    };
    if (st.size > kMaxCfgBytes) throw too_large(st.size);  // 0 for a pipe
    // One byte more than fstat() said, to see a file that grew since.
    std::string out(static_cast<std::size_t>(st.size) + 1, '\0');
    std::size_t have = 0;
    for (;;) {
        if (have == out.size()) {
            if (have > static_cast<std::size_t>(kMaxCfgBytes)) {
                throw too_large(static_cast<std::int64_t>(have));
            }
            out.resize(std::min(out.size() * 2, static_cast<std::size_t>(kMaxCfgBytes) + 1));
        }
        const std::size_t got = platform::read_some(fd.get(), out.data() + have,
                                                    out.size() - have, path);
        if (got == 0) break;
        have += got;
    }
    out.resize(have);
    return out;
}

std::int64_t c_atoi(std::string_view s) {
    std::size_t i = 0;
    // atoi skips leading white space; strip() already removed it.
    bool negative = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
        negative = s[i] == '-';
        ++i;
    }
    std::int64_t value = 0;
    constexpr std::int64_t limit = std::numeric_limits<std::int32_t>::max();
    for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
        value = value * 10 + (s[i] - '0');
        if (value > limit + 1) {
            value = limit + 1;
        }
    }
    if (negative) {
        return -value;
    }
    return value > limit ? limit : value;
}

bool atoi_out_of_range(std::string_view s, std::int64_t& wrapped) {
    std::size_t i = 0;
    bool negative = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
        negative = s[i] == '-';
        ++i;
    }
    constexpr std::uint64_t kLongMax = std::numeric_limits<std::int64_t>::max();
    std::uint64_t value = 0;
    bool saturated = false;
    for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
        const auto d = static_cast<std::uint64_t>(s[i] - '0');
        if (value > (kLongMax + 1 - d) / 10) {
            saturated = true;
            break;
        }
        value = value * 10 + d;
    }
    const std::uint64_t limit = std::uint64_t{std::numeric_limits<std::int32_t>::max()} + negative;
    if (!saturated && value <= limit) return false;
    std::uint64_t as_long = 0;  // two's complement bits of strtol's result
    if (saturated || value > kLongMax + negative) {
        as_long = negative ? kLongMax + 1 : kLongMax;
    } else {
        as_long = negative ? ~value + 1 : value;
    }
    wrapped = static_cast<std::int32_t>(static_cast<std::uint32_t>(as_long & 0xFFFFFFFFu));
    return true;
}

double c_atof(std::string_view s) {
    // strtod needs a terminated string; values are short.
    char buf[64];
    std::size_t n = std::min(s.size(), sizeof buf - 1);
    std::memcpy(buf, s.data(), n);
    buf[n] = '\0';
    return std::strtod(buf, nullptr);
}

CfgText read_cfg_text(std::string_view text, const std::string& path) {
    if (static_cast<std::int64_t>(text.size()) > kMaxCfgBytes) {
        throw CfgError(path + " is " + std::to_string(text.size()) + " bytes of text, more than "
                           "the " + std::to_string(kMaxCfgBytes >> 20) + " MiB a .cfg may have "
                           "(the largest darknet cfgs are tens of kilobytes): is it a cfg?",
                       path, 0);
    }
    if (text.substr(0, 2) == "\xFF\xFE" || text.substr(0, 2) == "\xFE\xFF") {
        // Before sniffing: UTF-16 bytes can look like a weights header.
        throw cfg_error(path, 1, "the file is UTF-16 (it starts with a UTF-16 byte-order "
                                 "mark); darknet reads bytes: save it as UTF-8 (or ASCII)");
    }
    CfgText cfg;
    cfg.path = path;
    cfg.source = std::string(text);
    // Stripped lines are never longer than the text: reserving it all up
    // front means the buffer never reallocates under the views.
    cfg.buffer = std::make_unique<std::string>();
    std::string& buf = *cfg.buffer;
    buf.reserve(text.size());
    cfg.sections.reserve(text.size() / 64 + 1);
    if (sniff(text, static_cast<std::int64_t>(text.size())) == FileKind::weights) {
        // Not a "path:line:" message: the whole file is the problem.
        throw CfgError(path + " is not a cfg: it looks like a Darknet .weights file (binary, "
                              "with a weights header); load() takes the weights first: "
                              "load(weights, cfg)",
                       path, 0);
    }
    std::size_t pos = 0;
    if (text.substr(0, kUtf8Bom.size()) == kUtf8Bom) {
        pos = kUtf8Bom.size();
        add_diagnostic(cfg.diagnostics, 1,
                       "the cfg starts with a UTF-8 byte-order mark (BOM), which darknet does "
                       "not expect; skipped");
    }
    int lineno = 0;
    std::int64_t option_count = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        std::size_t next = end == std::string_view::npos ? text.size() : end + 1;
        std::string_view raw = text.substr(pos, next - pos);
        pos = next;
        ++lineno;
        // fgetl() works on a C string: darknet would end the line at a NUL
        // and drop the rest unseen. A text cfg has none; refuse it.
        const std::size_t nul = raw.find('\0');
        if (nul != std::string_view::npos) {
            throw cfg_error(path, lineno,
                            "this line has a NUL byte at column " + std::to_string(nul + 1) +
                                ": a .cfg is text, and darknet would end the line there and "
                                "ignore the rest; is this a binary or UTF-16 file?");
        }
        // strip(): delete every space, tab, CR and LF anywhere in the line.
        const std::size_t start = buf.size();
        buf.append(raw.data(), raw.size());
        // Compact in place; most lines only lose their line ending.
        char* first = buf.data() + start;
        char* last = std::remove_if(first, buf.data() + buf.size(), is_stripped);
        buf.resize(static_cast<std::size_t>(last - buf.data()));
        std::string_view line(buf.data() + start, buf.size() - start);
        if (line.empty() || line[0] == '#' || line[0] == ';') {
            buf.resize(start);
            continue;
        }
        if (line[0] == '[') {
            if (cfg.sections.size() > static_cast<std::size_t>(kMaxCfgLayers)) {
                throw cfg_error(path, lineno,
                                "this section makes more than " + std::to_string(kMaxCfgLayers) +
                                    " layers, and the largest darknet models have about a "
                                    "thousand: is this a cfg? (refused before it is planned: "
                                    "each layer's plan takes memory)");
            }
            CfgSection section;
            section.name = line;
            section.line = lineno;
            cfg.sections.push_back(std::move(section));
            continue;
        }
        if (cfg.sections.empty()) {
            throw cfg_error(path, lineno,
                            "option '" + printable(line) +
                                "' comes before the first [section]; darknet would crash here "
                                "(is this a .cfg file?)");
        }
        // read_option(): split at the first '='.
        std::size_t eq = line.find('=');
        CfgOption option;
        option.line = lineno;
        if (eq == std::string_view::npos) {
            option.key = line;
            option.has_value = false;
            add_diagnostic(cfg.diagnostics, lineno,
                           "'" + printable(line) + "' has no '=', darknet reads it as an absent "
                                                   "value");
        } else if (eq + 1 == line.size()) {
            add_diagnostic(cfg.diagnostics, lineno,
                           "'" + printable(line) + "' has an empty value; darknet drops the line");
            continue;
        } else {
            option.key = line.substr(0, eq);
            option.value = line.substr(eq + 1);
        }
        auto& options = cfg.sections.back().options;
        if (options.empty()) {
            options.reserve(16);
        }
        if (++option_count > kMaxCfgOptions) {
            throw cfg_error(path, lineno,
                            "this line makes more than " + std::to_string(kMaxCfgOptions) +
                                " options, and real cfgs have tens of thousands at most: is this "
                                "a cfg?");
        }
        options.push_back(option);
    }
    return cfg;
}

}  // namespace yolo_io
