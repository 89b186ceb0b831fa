// JSON as the safetensors header holds it: a writer of strings and a strict
// reader (RFC 8259 strings with their escapes and UTF-8 checked, integers
// >= 0 that fit 64 bits, objects without repeated keys, arrays). Values the
// schema does not use (floats, booleans) are not read. Used by
// safetensors.cpp for the header and the metadata it stores.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>

namespace yolo_io {

// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or values
// above U+10FFFF): what a JSON string holds.
bool valid_utf8(std::string_view s);

// Appends `s` as a JSON string. Throws std::invalid_argument (naming the text)
// when `s` is not UTF-8.
void json_string(std::string& out, std::string_view s);

// A strict reader over `text`. fail() throws FormatError with `context`
// followed by what is wrong and the byte offset (`base` + position), e.g.
// "x.safetensors is not a valid safetensors file: its JSON header " +
// "expected ':' (at byte 17)".
class JsonReader {
  public:
    JsonReader(std::string_view text, std::string context, std::size_t base)
        : s_(text), context_(std::move(context)), base_(base) {}

    [[noreturn]] void fail(const std::string& what) const;

    // Skips whitespace; true at the end of the text.
    bool at_end() {
        ws();
        return pos_ == s_.size();
    }
    // The next character after whitespace, '\0' at the end.
    char peek() {
        ws();
        return pos_ < s_.size() ? s_[pos_] : '\0';
    }
    // Reads `c` or fails naming `what` was expected.
    void expect(char c, const char* what);
    // The text at the position, for messages.
    std::string found() const;
    // Reads `null` if it is next.
    bool literal_null();
    std::string string();
    // A JSON integer >= 0 (no sign, fraction or exponent) that fits 64 bits.
    std::uint64_t integer(const char* what);

    // Calls member(key) for each "key": of an object, rejecting duplicates;
    // member() reads the value.
    template <class F>
    void object(const char* what, F member) {
        expect('{', what);
        std::unordered_set<std::string> seen;
        if (peek() == '}') {
            ++pos_;
            return;
        }
        while (true) {
            std::string key = string();
            if (!seen.insert(key).second) fail("repeats the key \"" + quote_text(key) + "\"");
            expect(':', "':'");
            member(key);
            if (!close_or_comma('}', what)) return;
        }
    }

    // Calls item() for each value of an array; item() reads it.
    template <class F>
    void array(const char* what, F item) {
        expect('[', what);
        if (peek() == ']') {
            ++pos_;
            return;
        }
        while (true) {
            item();
            if (!close_or_comma(']', what)) return;
        }
    }

  private:
    void ws() {
        while (pos_ < s_.size() &&
               (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
            ++pos_;
        }
    }
    // After a member or item: false at `close`, true after a ',', else fails.
    bool close_or_comma(char close, const char* what);
    static std::string quote_text(std::string_view s);
    std::uint32_t hex4();

    std::string_view s_;
    std::string context_;
    std::size_t base_ = 0;
    std::size_t pos_ = 0;
};

}  // namespace yolo_io
