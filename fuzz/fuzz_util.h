// What the fuzz targets count as a finding, shared by every fuzz_<parser>.cpp.
//
// A parser that rejects its input throws one of hearth's documented errors (ConfigError, IoError, FormatError,
// ResourceError; serve::ApiError for request bodies, which the request target catches itself): for most fuzz
// inputs that is the expected outcome, not a finding. Anything else that leaves the parser is reported on stderr
// and aborts, so that libFuzzer saves the input as a crash: a plain hearth::Error (an internal bug, exit code 1), a
// standard exception of another type (std::out_of_range, nlohmann::json::type_error, std::bad_alloc, ...) or an
// unknown exception. A violated invariant of a successful parse (fuzz_require) is a finding too. Crashes,
// sanitizer reports, leaks, timeouts and runaway memory are caught by libFuzzer and the sanitizers themselves.
#pragma once

#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <typeinfo>

#include "core/error.h"

namespace hearth::fuzz {

[[noreturn]] inline void fuzz_fail(const char* target, const std::string& what, const char* detail) {
  std::fprintf(stderr, "\n=== fuzz_%s: FINDING: %s: %s\n", target, what.c_str(), detail);
  std::abort();
}

// A violated invariant of a parse that succeeded (a tensor outside the input, a negative dimension, ...).
inline void fuzz_require(bool ok, const char* target, const char* invariant) {
  if (!ok) fuzz_fail(target, "invariant violated", invariant);
}

// The dynamic type of an exception, demangled ("std::out_of_range").
inline std::string fuzz_type_name(const std::exception& e) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(typeid(e).name(), nullptr, nullptr, &status),
                                              std::free);
  return status == 0 && name ? name.get() : typeid(e).name();
}

// HEARTH_FUZZ_VERBOSE=1 in the environment: print why each rejected input was rejected (for checking seeds:
// `fuzz_<parser> -runs=0 DIR`).
inline bool fuzz_verbose() {
  static const bool verbose = std::getenv("HEARTH_FUZZ_VERBOSE") != nullptr;
  return verbose;
}

// Runs `body` (one parse of one input); returns normally when it succeeds or throws a documented hearth error,
// aborts (a finding) for anything else.
template <class Body>
void fuzz_expect_errors(const char* target, Body&& body) {
  try {
    body();
  } catch (const Error& e) {
    switch (e.exit_code()) {
      case ExitCode::kUsage:
      case ExitCode::kIo:
      case ExitCode::kFormat:
      case ExitCode::kResource:
        if (fuzz_verbose()) std::fprintf(stderr, "fuzz_%s: rejected: %s\n", target, e.what());
        return;
      default: fuzz_fail(target, fuzz_type_name(e) + " (internal error, exit code 1)", e.what());
    }
  } catch (const std::exception& e) {
    fuzz_fail(target, fuzz_type_name(e) + " escaped", e.what());
  } catch (...) {
    fuzz_fail(target, "an exception of unknown type escaped", "");
  }
}

// Reads every byte of [p, p + n), so that AddressSanitizer checks a range a parser handed out.
inline volatile unsigned char fuzz_sink;
inline void fuzz_touch(const void* p, size_t n) {
  const auto* bytes = static_cast<const unsigned char*>(p);
  unsigned char x = 0;
  for (size_t i = 0; i < n; ++i) x ^= bytes[i];
  fuzz_sink = x;
}

// `text` with bytes outside printable ASCII (and backslashes, quotes) as \xNN, for messages.
inline std::string fuzz_escape(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
      out += static_cast<char>(c);
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out;
}

inline std::string_view fuzz_bytes(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace hearth::fuzz
