// The one error type of hearth. Every failure a user can cause is an Error with a class (which
// decides the exit code), a message saying what went wrong, and a hint saying what to do. The CLI
// prints it as `hearth: error: <message> (<hint>)`.
#pragma once

#include <stdexcept>
#include <string>

namespace hearth {

// Exit codes are part of the interface (documented in README.md); never renumber.
enum class ErrorClass : int {
  kUsage = 2,         // bad command line: unknown flag, missing argument, bad value
  kInvalidInput = 3,  // an input file or message is malformed or unsupported
  kIo = 4,            // a file or socket could not be opened, read or written
  kInternal = 5,      // a bug in hearth: an invariant did not hold
  kResource = 6,      // not enough memory, context too small for the request
};

class Error : public std::runtime_error {
 public:
  Error(ErrorClass error_class, std::string message, std::string hint = {})
      : std::runtime_error(std::move(message)), class_(error_class), hint_(std::move(hint)) {}

  ErrorClass error_class() const { return class_; }
  int exit_code() const { return static_cast<int>(class_); }
  const std::string& hint() const { return hint_; }

  // "<message> (<hint>)" or just "<message>" when there is no hint.
  std::string Describe() const;

 private:
  ErrorClass class_;
  std::string hint_;
};

// Shorthands for the common classes.
[[noreturn]] void ThrowInvalidInput(std::string message, std::string hint = {});
[[noreturn]] void ThrowIo(std::string message, std::string hint = {});
[[noreturn]] void ThrowUsage(std::string message, std::string hint = {});

// The errno text for the last failed system call, e.g. "No such file or directory".
std::string ErrnoText(int errnum);

}  // namespace hearth
