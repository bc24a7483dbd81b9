// A private temporary directory for a test's files (configuration files,
// logs): made with mkdtemp(3) under the system's temporary directory and
// removed, with everything in it, by the destructor unless keep() was called.
//
// Header-only, so that programs compiling single support sources
// (tests/chaos) need nothing more.
//
// Thread safety: none; one thread owns it.
#pragma once

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

namespace gilmour::test {

class TempDir {
 public:
  TempDir() = default;
  ~TempDir() {
    if (!path_.empty() && !keep_) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  /// Makes `<tmp>/<prefix>XXXXXX` (at most once); false, with error(), when
  /// mkdtemp failed.
  bool make(const std::string& prefix) {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "XXXXXX")).string();
    if (!::mkdtemp(tmpl.data())) {
      error_ = "cannot make a directory " + tmpl + ": " + std::strerror(errno);
      return false;
    }
    path_ = tmpl;
    return true;
  }
  /// The directory (empty before make() succeeded).
  const std::string& path() const noexcept { return path_; }
  const std::string& error() const noexcept { return error_; }
  /// Leaves the directory in place (to look at the logs of a failed run).
  void keep() noexcept { keep_ = true; }

 private:
  std::string path_;
  std::string error_;
  bool keep_ = false;
};

}  // namespace gilmour::test
