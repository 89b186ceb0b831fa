// Exceptions thrown by the yolo_io core. The core throws only these and the
// standard ones (std::system_error for the file system, std::out_of_range,
// std::invalid_argument); csrc/bindings/ translates them to Python.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace yolo_io {

// Base of every yolo_io error.
class Error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// A .cfg text that darknet would refuse (or crash on). `line` is 1-based; 0
// means the problem is not tied to one line (e.g. an empty file).
class CfgError : public Error {
  public:
    CfgError(const std::string& message, std::string path, int line)
        : Error(message), path_(std::move(path)), line_(line) {}
    const std::string& path() const noexcept { return path_; }
    int line() const noexcept { return line_; }

  private:
    std::string path_;
    int line_;
};

// The one place that writes the "path:line: " prefix of a cfg message ("path: "
// when `line` is 0).
inline CfgError cfg_error(const std::string& path, int line, const std::string& message) {
    return CfgError(path + (line > 0 ? ":" + std::to_string(line) : std::string()) + ": " + message,
                    path, line);
}

// A .weights file that is not a darknet weights file at all (bad header, text,
// an archive, a big-endian host).
class FormatError : public Error {
  public:
    using Error::Error;
};

// The weights file and the cfg disagree on the number of bytes.
class WeightsSizeError : public FormatError {
  public:
    WeightsSizeError(const std::string& message, std::int64_t expected,
                     std::int64_t actual, int layer, int partial_layers)
        : FormatError(message), expected_(expected), actual_(actual),
          layer_(layer), partial_layers_(partial_layers) {}
    std::int64_t expected() const noexcept { return expected_; }
    std::int64_t actual() const noexcept { return actual_; }
    // Index of the first layer whose data crosses the end of the file, or -1.
    int layer() const noexcept { return layer_; }
    // Number of layers a file that ends on a layer boundary covers, or -1.
    int partial_layers() const noexcept { return partial_layers_; }

  private:
    std::int64_t expected_;
    std::int64_t actual_;
    int layer_;
    int partial_layers_;
};

}  // namespace yolo_io
