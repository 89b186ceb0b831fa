#include "yolo_io/cfg.hpp"

#include <cerrno>
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

double c_atof(const std::string& s) { return std::strtod(s.c_str(), nullptr); }

CfgText read_cfg_text(std::string_view text, const std::string& path) {
    CfgText cfg;
    cfg.path = path;
    std::size_t pos = 0;
    int lineno = 0;
    std::string line;
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
        line.clear();
        for (char ch : raw) {
            if (!is_stripped(ch)) {
                line.push_back(ch);
            }
        }
        if (line.empty() || line[0] == '#' || line[0] == ';') {
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
            throw CfgError(path + ":" + std::to_string(lineno) + ": option '" + line +
                               "' comes before the first [section]; darknet would "
                               "crash here (is this a .cfg file?)",
                           path, lineno);
        }
        // read_option(): split at the first '='.
        std::size_t eq = line.find('=');
        CfgOption option;
        option.line = lineno;
        if (eq == std::string::npos) {
            option.key = line;
            option.has_value = false;
            cfg.diagnostics.push_back(
                {lineno, "'" + line + "' has no '=', darknet reads it as an absent value"});
        } else if (eq + 1 == line.size()) {
            cfg.diagnostics.push_back(
                {lineno, "'" + line + "' has an empty value; darknet drops the line"});
            continue;
        } else {
            option.key = line.substr(0, eq);
            option.value = line.substr(eq + 1);
        }
        cfg.sections.back().options.push_back(std::move(option));
    }
    return cfg;
}

}  // namespace yolo_io
