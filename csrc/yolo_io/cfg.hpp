// The .cfg text reader: darknet's exact line grammar (spec section 1) with the
// line of every section and option kept for diagnostics.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace yolo_io {

// One `key=value` line. `has_value` is false for a line without `=`, which
// darknet stores with a NULL value: it shadows later copies of the key and
// reads as absent. Views point into CfgText::buffer.
struct CfgOption {
    std::string_view key;
    std::string_view value;
    int line = 0;
    bool has_value = true;
};

// One `[section]`; `name` is the whole stripped header line, e.g. "[net]".
struct CfgSection {
    std::string_view name;
    int line = 0;
    std::vector<CfgOption> options;
};

// Something darknet would print and go on with. Kept, reported as a warning.
struct Diagnostic {
    int line = 0;
    std::string message;
};

// The most warnings a parse keeps: a hostile cfg of millions of bad lines
// must not make millions of messages. Past it, add_diagnostic() drops them
// and the Config's last warning says so.
constexpr std::size_t kMaxDiagnostics = 1000;
inline void add_diagnostic(std::vector<Diagnostic>& out, int line, std::string message) {
    if (out.size() < kMaxDiagnostics) out.push_back({line, std::move(message)});
}

struct CfgText {
    std::string path;  // for messages; "<string>" for text passed directly
    std::string source;  // the text as given, byte for byte (what an export stores)
    // The stripped lines, back to back; every view above points into it. A
    // unique_ptr so that moving a CfgText never moves the characters.
    std::unique_ptr<std::string> buffer;
    std::vector<CfgSection> sections;
    std::vector<Diagnostic> diagnostics;
};

// Splits `text` into sections exactly as darknet's read_cfg()/fgetl()/strip()/
// read_option() do. A leading UTF-8 byte-order mark, which darknet would take
// for part of the first line, is skipped with a diagnostic. Throws CfgError
// for an option before the first section, and for a .weights file.
CfgText read_cfg_text(std::string_view text, const std::string& path);

// Cfg bytes as a message shows them, so that what it shows is what the file
// holds: printable ASCII and visible UTF-8 as they are; tab, LF and CR as \t,
// \n, \r; other control bytes and bytes that are not UTF-8 as \xNN; C1
// controls and invisible or blank code points (U+00A0, U+00AD, U+200B-U+200F,
// U+2060, U+FEFF, ...) as \uXXXX. Bytes past `limit` are not shown: a
// "... (N more bytes)" ends the text instead, so that a 1 MB line does not
// make a 1 MB message.
std::string printable(std::string_view bytes, std::size_t limit = 200);

// Whether `head`, the first bytes of a file, starts as a cfg does: after an
// optional UTF-8 byte-order mark and blank or comment lines, a line whose
// first character is '['. A control byte on the way (but tab, CR, LF) means
// a binary file, not a cfg.
bool starts_like_cfg(std::string_view head);

// The largest cfg text read: 16 MiB, as a file (read_text_file) or as text
// (read_cfg_text). Real cfgs are tens of kilobytes, the most layers a cfg
// may have (kMaxCfgLayers) a few megabytes.
constexpr std::int64_t kMaxCfgBytes = std::int64_t{16} << 20;

// The most layers a cfg may have (sections after [net]): real models have up
// to about a thousand, and each planned layer takes a few kilobytes.
constexpr std::int64_t kMaxCfgLayers = 100000;
// The most options (key=value lines) in a cfg: real ones have at most tens
// of thousands; each takes ~40 bytes, so lines alone cannot take much memory.
constexpr std::int64_t kMaxCfgOptions = 1000000;

// Reads a whole cfg file into memory: a regular file, or a pipe or FIFO read
// to its end (a FIFO with no writer reads as empty; nothing blocks on the
// open). Throws std::system_error (errno) when it cannot be opened or read or
// is a directory (EISDIR), and a CfgError for a device or a socket (refused
// before it is opened) or more than kMaxCfgBytes.
std::string read_text_file(const std::string& path);

// darknet's atoi()/atof() on an option value: leading sign and digits, stop at
// the first other character, 0 when there are none. atoi saturates to int32
// (C leaves overflow undefined; we never wrap).
std::int64_t c_atoi(std::string_view s);
double c_atof(std::string_view s);
// Whether atoi(s) is outside int32 (c_atoi() saturated it); then `wrapped` is
// what glibc's atoi gives, (int)strtol(s): the low 32 bits of the long,
// itself saturated at 64 bits.
bool atoi_out_of_range(std::string_view s, std::int64_t& wrapped);

}  // namespace yolo_io
