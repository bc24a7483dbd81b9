// What the multi-process Redis deployments for tests (cluster_topology.hpp,
// sentinel_topology.hpp) share: a temporary directory for their
// configuration files, removed after the derived class killed its
// processes, and why start() failed.
//
// Thread safety: none; one test thread drives it.
#pragma once

#include <string>

#include "support/temp_dir.hpp"

namespace gilmour::test {

class Topology {
 public:
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  /// Why start() failed.
  const std::string& error() const { return error_; }

 protected:
  Topology() = default;
  /// Runs after the derived destructor killed the processes: removes the
  /// directory.
  ~Topology() = default;

  /// Makes the directory for configuration files (`<tmp>/<prefix>XXXXXX`);
  /// false (with error()) when it could not.
  bool make_dir(const std::string& prefix) {
    if (dir_.make(prefix)) return true;
    error_ = dir_.error();
    return false;
  }
  /// The directory made by make_dir().
  const std::string& dir() const { return dir_.path(); }

  std::string error_;

 private:
  TempDir dir_;
};

}  // namespace gilmour::test
