#include "base/error.h"

#include <cstring>

namespace hearth {

std::string Error::Describe() const {
  std::string text = what();
  if (!hint_.empty()) text += " (" + hint_ + ")";
  return text;
}

void ThrowInvalidInput(std::string message, std::string hint) {
  throw Error(ErrorClass::kInvalidInput, std::move(message), std::move(hint));
}
void ThrowIo(std::string message, std::string hint) {
  throw Error(ErrorClass::kIo, std::move(message), std::move(hint));
}
void ThrowUsage(std::string message, std::string hint) {
  throw Error(ErrorClass::kUsage, std::move(message), std::move(hint));
}

std::string ErrnoText(int errnum) {
  char buffer[256];
  // GNU strerror_r returns a pointer that may or may not be `buffer`.
  return strerror_r(errnum, buffer, sizeof(buffer));
}

}  // namespace hearth
