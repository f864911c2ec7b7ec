// Files that hold keys: atomic writes with explicit permissions, and reads that refuse
// private files other users could read.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "cipherpulse/result.h"
#include "cipherpulse/secure.h"

namespace cipherpulse {

// kPrivateFileMode is the mode of every file holding a secret (0600).
inline constexpr unsigned kPrivateFileMode = 0600;
// kPublicFileMode is the mode of public key material (0644).
inline constexpr unsigned kPublicFileMode = 0644;

// write_file_atomic writes `data` to a temporary file beside `path` created with `mode`
// (never wider, whatever the umask), fsyncs it, renames it over `path` and fsyncs the
// directory, so a crash leaves either the old file or the new one. With `overwrite` false
// an existing `path` is an error (kIo) and nothing is written.
Status write_file_atomic(const std::filesystem::path& path, std::span<const std::uint8_t> data,
                         unsigned mode, bool overwrite);
Status write_file_atomic(const std::filesystem::path& path, std::string_view data, unsigned mode,
                         bool overwrite);

// read_file reads a whole file of at most `max_bytes` bytes.
Result<std::string> read_file(const std::filesystem::path& path, std::size_t max_bytes = 16u << 20);

// read_private_file reads a file holding a secret. Refused (kPermission) when group or
// others have any access to it, or when it is not a regular file; the message says how to
// fix the mode. The bytes are returned in wiping storage.
Result<SecretBytes> read_private_file(const std::filesystem::path& path,
                                      std::size_t max_bytes = 1u << 20);

}  // namespace cipherpulse
