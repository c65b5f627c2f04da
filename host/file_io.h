// Whole-file reads and crash-safe writes: atomic replace (temp, fsync, rename) and fsync'd appends.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace safnet {

// Reads the whole file; throws naming the path if it cannot be opened or read.
std::vector<std::uint8_t> read_file(const std::string& path);
// Writes `path` atomically: a temp file beside it, fsync, rename, fsync of the directory.
// On any failure the previous file is untouched.
void write_file_atomic(const std::string& path, const void* data, std::size_t size);
void write_file_atomic(const std::string& path, const std::string& text);
// Appends one line (a '\n' is added) and fsyncs, so a finished record survives a kill.
void append_line_durable(const std::string& path, const std::string& line);
bool file_exists(const std::string& path);

}  // namespace safnet
