// JSON for the safetensors header (see json.hpp).
#include "yolo_io/json.hpp"

#include <limits>
#include <stdexcept>

#include "yolo_io/cfg.hpp"
#include "yolo_io/errors.hpp"

namespace yolo_io {

namespace {

void json_append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

}  // namespace

// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or values
// above U+10FFFF): what a JSON string holds.
bool valid_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t n = 0;
        std::uint32_t cp = 0;
        if (c < 0x80) {
            ++i;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1Fu;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0Fu;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07u;
        } else {
            return false;
        }
        if (i + n >= s.size()) return false;
        for (std::size_t k = 1; k <= n; ++k) {
            const auto d = static_cast<unsigned char>(s[i + k]);
            if ((d & 0xC0u) != 0x80u) return false;
            cp = (cp << 6) | (d & 0x3Fu);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10FFFF))) {
            return false;
        }
        i += n + 1;
    }
    return true;
}

void json_string(std::string& out, std::string_view s) {
    if (!valid_utf8(s)) {
        throw std::invalid_argument("safetensors header text must be UTF-8: \"" + printable(s) +
                                    "\"");
    }
    out += '"';
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (ch == '"' || ch == '\\') {
            out += '\\';
            out += ch;
        } else if (c < 0x20) {
            static constexpr char hex[] = "0123456789abcdef";
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 15u];
        } else {
            out += ch;
        }
    }
    out += '"';
}

void JsonReader::fail(const std::string& what) const {
    throw FormatError(context_ + what + " (at byte " + std::to_string(base_ + pos_) + ")");
}

void JsonReader::expect(char c, const char* what) {
    if (peek() != c) {
        fail(std::string("expected ") + what + ", found " + found());
    }
    ++pos_;
}

std::string JsonReader::found() const {
    if (pos_ >= s_.size()) return "the end of the header";
    return "\"" + printable(s_.substr(pos_, 16)) + "\"";
}

std::string JsonReader::quote_text(std::string_view s) { return printable(s); }

bool JsonReader::literal_null() {
    if (peek() == 'n' && s_.substr(pos_, 4) == "null") {
        pos_ += 4;
        return true;
    }
    return false;
}

bool JsonReader::close_or_comma(char close, const char* what) {
    const char c = peek();
    ++pos_;
    if (c == close) return false;
    if (c != ',') {
        --pos_;
        fail(std::string("expected ',' or '") + close + "' in " + what + ", found " + found());
    }
    return true;
}

std::string JsonReader::string() {
    expect('"', "a string");
    std::string out;
    const std::size_t start = pos_;
    while (true) {
        if (pos_ >= s_.size()) fail("has an unterminated string");
        const char c = s_[pos_++];
        if (c == '"') break;
        if (static_cast<unsigned char>(c) < 0x20) fail("has a control character in a string");
        if (c != '\\') {
            out += c;
            continue;
        }
        if (pos_ >= s_.size()) fail("has an unterminated string");
        const char e = s_[pos_++];
        switch (e) {
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case '/': out += '/'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'u': {
                std::uint32_t cp = hex4();
                if (cp >= 0xDC00 && cp <= 0xDFFF) fail("has a lone low surrogate \\u escape");
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (s_.substr(pos_, 2) != "\\u") fail("has a lone high surrogate \\u escape");
                    pos_ += 2;
                    const std::uint32_t lo = hex4();
                    if (lo < 0xDC00 || lo > 0xDFFF) fail("has a lone high surrogate \\u escape");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                json_append_utf8(out, cp);
                break;
            }
            default:
                fail(std::string("has an invalid escape \\") + printable(std::string_view(&e, 1)));
        }
    }
    if (!valid_utf8(s_.substr(start, pos_ - 1 - start))) fail("has a string that is not UTF-8");
    return out;
}

std::uint64_t JsonReader::integer(const char* what) {
    ws();
    const std::size_t start = pos_;
    std::uint64_t v = 0;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
        const auto d = static_cast<std::uint64_t>(s_[pos_] - '0');
        if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) {
            fail(std::string("has ") + what + " too large for 64 bits");
        }
        v = v * 10 + d;
        ++pos_;
    }
    if (pos_ == start) fail(std::string("expected ") + what + " (an integer >= 0), found " + found());
    if (pos_ - start > 1 && s_[start] == '0') fail("has an integer with a leading zero");
    if (pos_ < s_.size() && (s_[pos_] == '.' || s_[pos_] == 'e' || s_[pos_] == 'E')) {
        fail(std::string("expected ") + what + " (an integer >= 0), found a fraction");
    }
    return v;
}

std::uint32_t JsonReader::hex4() {
    if (pos_ + 4 > s_.size()) fail("has a truncated \\u escape");
    std::uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
        const char c = s_[pos_++];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= static_cast<std::uint32_t>(c - '0');
        else if (c >= 'a' && c <= 'f') v |= static_cast<std::uint32_t>(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= static_cast<std::uint32_t>(c - 'A' + 10);
        else fail("has an invalid \\u escape");
    }
    return v;
}
}  // namespace yolo_io
