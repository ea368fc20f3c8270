// hearth error types and the exit codes they map to.
//
// Library code reports every failure by throwing one of these; it never calls exit(). apps/main.cpp is the
// only place that catches them and turns them into a process exit code (documented in docs/cli.md).
// Messages read "<where>: <what>; expected <x>, got <y>" and name the file, key, line or field involved.
#pragma once

#include <stdexcept>
#include <string>

namespace hearth {

// Process exit codes. Stable: scripts and cron jobs depend on them.
enum class ExitCode : int {
  kOk = 0,
  kInternal = 1,      // a bug in hearth
  kUsage = 2,         // bad command line, recipe or config value
  kIo = 3,            // file missing, unreadable or unwritable
  kFormat = 4,        // model, tokenizer or data file malformed or unsupported
  kResource = 5,      // out of memory, no CUDA device, disk full
  kDistributed = 6,   // data-parallel training: another worker stopped, hung past the timeout, or was unreachable
  kInterrupted = 130  // SIGINT
};

// Base class. Thrown directly it means an internal error (exit 1).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
  virtual ExitCode exit_code() const noexcept { return ExitCode::kInternal; }
};

// Bad user input on the command line, in a recipe or in a config value (exit 2).
class ConfigError : public Error {
 public:
  using Error::Error;
  ExitCode exit_code() const noexcept override { return ExitCode::kUsage; }
};

// A file could not be opened, read or written (exit 3).
class IoError : public Error {
 public:
  using Error::Error;
  ExitCode exit_code() const noexcept override { return ExitCode::kIo; }
};

// A file's content is malformed or of an unsupported kind (exit 4).
class FormatError : public Error {
 public:
  using Error::Error;
  ExitCode exit_code() const noexcept override { return ExitCode::kFormat; }
};

// Not enough memory, no such device, disk full (exit 5).
class ResourceError : public Error {
 public:
  using Error::Error;
  ExitCode exit_code() const noexcept override { return ExitCode::kResource; }
};

// Data-parallel training: a collective failed because another worker has gone (its own error says why), did not
// answer within the timeout, or could not be reached (exit 6).
class DistributedError : public Error {
 public:
  using Error::Error;
  ExitCode exit_code() const noexcept override { return ExitCode::kDistributed; }
};

// The user asked us to stop (SIGINT/SIGTERM) (exit 130).
class InterruptedError : public Error {
 public:
  using Error::Error;
  ExitCode exit_code() const noexcept override { return ExitCode::kInterrupted; }
};

}  // namespace hearth
