// Base64 (RFC 4648, standard alphabet) for media that travels inside JSON: data: URLs, OpenAI's
// input_audio, Ollama's images. Decoding is strict, because its input is untrusted.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hearth {

// With '=' padding.
std::string EncodeBase64(std::string_view bytes);
// Padding optional, no whitespace or other characters inside; false when malformed.
bool DecodeBase64(std::string_view in, std::vector<uint8_t>& out);

// The MIME type of image bytes by their signature: "image/png", "image/jpeg", "image/gif",
// "image/webp", "image/bmp"; "" when they are none of these.
std::string_view ImageMimeType(std::string_view bytes);

}  // namespace hearth
