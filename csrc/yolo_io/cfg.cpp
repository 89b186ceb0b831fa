#include "yolo_io/cfg.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <system_error>

#include "yolo_io/errors.hpp"

namespace yolo_io {

namespace {

bool is_stripped(char ch) {
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

}  // namespace

std::string read_text_file(const std::string& path) {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> fp(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
    if (!fp) {
        throw std::system_error(errno, std::generic_category(), path);
    }
    std::string out;
    char buf[1 << 16];
    std::size_t got = 0;
    while ((got = std::fread(buf, 1, sizeof buf, fp.get())) > 0) {
        out.append(buf, got);
    }
    if (std::ferror(fp.get())) {
        throw std::system_error(errno ? errno : EIO, std::generic_category(), path);
    }
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

double c_atof(std::string_view s) {
    // strtod needs a terminated string; values are short.
    char buf[64];
    std::size_t n = std::min(s.size(), sizeof buf - 1);
    std::memcpy(buf, s.data(), n);
    buf[n] = '\0';
    return std::strtod(buf, nullptr);
}

CfgText read_cfg_text(std::string_view text, const std::string& path) {
    CfgText cfg;
    cfg.path = path;
    // Stripped lines are never longer than the text: reserving it all up
    // front means the buffer never reallocates under the views.
    cfg.buffer = std::make_unique<std::string>();
    std::string& buf = *cfg.buffer;
    buf.reserve(text.size());
    cfg.sections.reserve(text.size() / 64 + 1);
    std::size_t pos = 0;
    int lineno = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        std::size_t next = end == std::string_view::npos ? text.size() : end + 1;
        std::string_view raw = text.substr(pos, next - pos);
        pos = next;
        ++lineno;
        // fgetl() works on a C string: an embedded NUL ends the line.
        std::size_t nul = raw.find('\0');
        if (nul != std::string_view::npos) {
            raw = raw.substr(0, nul);
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
            CfgSection section;
            section.name = line;
            section.line = lineno;
            cfg.sections.push_back(std::move(section));
            continue;
        }
        if (cfg.sections.empty()) {
            throw CfgError(path + ":" + std::to_string(lineno) + ": option '" +
                               std::string(line) +
                               "' comes before the first [section]; darknet would "
                               "crash here (is this a .cfg file?)",
                           path, lineno);
        }
        // read_option(): split at the first '='.
        std::size_t eq = line.find('=');
        CfgOption option;
        option.line = lineno;
        if (eq == std::string_view::npos) {
            option.key = line;
            option.has_value = false;
            cfg.diagnostics.push_back({lineno, "'" + std::string(line) +
                                                   "' has no '=', darknet reads it as an "
                                                   "absent value"});
        } else if (eq + 1 == line.size()) {
            cfg.diagnostics.push_back({lineno, "'" + std::string(line) +
                                                   "' has an empty value; darknet drops the "
                                                   "line"});
            continue;
        } else {
            option.key = line.substr(0, eq);
            option.value = line.substr(eq + 1);
        }
        auto& options = cfg.sections.back().options;
        if (options.empty()) {
            options.reserve(16);
        }
        options.push_back(option);
    }
    return cfg;
}

}  // namespace yolo_io
