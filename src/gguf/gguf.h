// GGUF, the container of llama.cpp / Ollama model files: reading (memory-mapped, every offset,
// count and length validated against the file before use) and writing.
//
// Format: magic "GGUF", uint32 version (2 or 3), int64 n_tensors, int64 n_kv, then n_kv key/value
// pairs, n_tensors tensor infos, padding to `general.alignment`, and the tensor data blob.
// All integers little-endian. See ../shared/spec/gemma4-model.md §2.1.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/mapped_file.h"

namespace hearth::gguf {

enum class ValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};
const char* ValueTypeName(ValueType type);

// ggml tensor type ids as stored in GGUF tensor infos.
enum class TensorType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ4_NL = 20,
  kIQ4_XS = 23,
  kI8 = 24,  // plain integer / double tensors (e.g. token ids in reference files)
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kBF16 = 30,
  kMXFP4 = 39,
};

// Block geometry of a tensor type: `block_size` elements take `type_size` bytes.
struct TypeTraits {
  TensorType type;
  const char* name;
  uint32_t block_size;
  uint32_t type_size;
};
// nullptr for a type id this build does not know.
const TypeTraits* FindTypeTraits(uint32_t type_id);
// "Q4_K" or "type#77" for unknown ids.
std::string TensorTypeName(uint32_t type_id);

// One metadata value. Scalars are decoded; arrays keep a pointer into the mapped file
// (validated to lie inside it) plus, for string arrays, the decoded views.
struct Value {
  ValueType type = ValueType::kUint8;
  // Scalars: exactly one of these is meaningful, chosen by `type`.
  uint64_t as_uint = 0;
  int64_t as_int = 0;
  double as_float = 0;
  bool as_bool = false;
  std::string_view as_string;
  // Arrays.
  ValueType element_type = ValueType::kUint8;
  uint64_t count = 0;
  const uint8_t* elements = nullptr;         // packed numeric elements
  std::vector<std::string_view> strings;     // element_type == kString

  bool is_integer() const;
  bool is_array() const { return type == ValueType::kArray; }
  std::string Describe() const;  // short human-readable form, arrays abbreviated
};

struct TensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // ne[0] (contiguous, row length) first
  uint32_t type_id = 0;
  uint64_t offset = 0;  // relative to the data blob
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the mapped file

  int64_t n_elements() const;
  const TypeTraits& traits() const;  // valid: the reader rejects unknown types
};

class File {
 public:
  // Opens and validates `path`. Throws Error(kIo) if unreadable, Error(kInvalidInput) naming the
  // file and the key/tensor at fault if malformed. Split files are rejected with a clear message.
  static File Open(const std::string& path);
  // Parses bytes already in memory (tests, fuzzing); `name` appears in error messages.
  static File Parse(MappedFile mapped);

  const std::string& path() const { return mapped_.path(); }
  uint32_t version() const { return version_; }
  uint64_t size_bytes() const { return mapped_.size(); }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }

  const std::vector<std::pair<std::string, Value>>& metadata() const { return metadata_; }
  const Value* Find(std::string_view key) const;

  // Lenient typed getters (llama.cpp accepts any integer width where an integer is expected).
  // They return nullopt when the key is absent and throw Error(kInvalidInput) naming the key when
  // it is present with an incompatible type.
  std::optional<int64_t> GetInt(std::string_view key) const;
  std::optional<double> GetFloat(std::string_view key) const;
  std::optional<bool> GetBool(std::string_view key) const;
  std::optional<std::string_view> GetString(std::string_view key) const;
  // Integer / bool arrays as int64; a scalar integer is returned as nullopt (caller decides).
  std::optional<std::vector<int64_t>> GetIntArray(std::string_view key) const;
  std::optional<std::vector<float>> GetFloatArray(std::string_view key) const;
  const std::vector<std::string_view>* GetStringArray(std::string_view key) const;

  // Same, but a missing key is an error naming the key and the file.
  int64_t RequireInt(std::string_view key) const;
  double RequireFloat(std::string_view key) const;
  std::string_view RequireString(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* FindTensor(std::string_view name) const;

  // See MappedFile::DropPages: for tensor data copied elsewhere (repacked) and not read again.
  void DropPages(const void* begin, size_t n) const { mapped_.DropPages(begin, n); }

 private:
  [[noreturn]] void Fail(const std::string& what) const;

  MappedFile mapped_;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> metadata_;
  std::map<std::string, size_t, std::less<>> metadata_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

// Builds a GGUF file in memory. Used by `hearth quantize`/`make-model` and by tests that need
// deliberately broken files (see the Raw* hooks).
class Writer {
 public:
  void SetUint32(std::string key, uint32_t value);
  void SetInt32(std::string key, int32_t value);
  void SetFloat32(std::string key, float value);
  void SetBool(std::string key, bool value);
  void SetString(std::string key, std::string value);
  void SetInt32Array(std::string key, std::span<const int32_t> values);
  void SetFloat32Array(std::string key, std::span<const float> values);
  void SetBoolArray(std::string key, std::span<const bool> values);
  void SetStringArray(std::string key, std::span<const std::string> values);
  // Copies the value of `key` from another file (any type), keeping its exact encoding.
  void CopyValue(const File& from, std::string_view key);

  // Adds a tensor; `data` must hold exactly the bytes its shape and type need.
  void AddTensor(std::string name, std::vector<int64_t> shape, uint32_t type_id,
                 std::span<const uint8_t> data);
  // Adds a tensor of `n_bytes` whose bytes are produced only while the file is written, by
  // fill(out) with out.size() == n_bytes. Lets multi-gigabyte models be written tensor by tensor.
  using FillFn = std::function<void(std::span<uint8_t> out)>;
  void AddLazyTensor(std::string name, std::vector<int64_t> shape, uint32_t type_id,
                     uint64_t n_bytes, FillFn fill);

  void set_alignment(uint32_t alignment) { alignment_ = alignment; }

  std::vector<uint8_t> Serialize() const;
  // Writes to `path` through a temporary file and rename, so a crash never leaves half a file.
  // Holds at most one tensor's bytes in memory at a time.
  void WriteFile(const std::string& path) const;

 private:
  struct Entry {
    std::string key;
    std::vector<uint8_t> encoded;  // type id + value, as stored in the file
  };
  struct Tensor {
    std::string name;
    std::vector<int64_t> shape;
    uint32_t type_id;
    uint64_t n_bytes;
    FillFn fill;
  };
  void Put(std::string key, std::vector<uint8_t> encoded);
  std::vector<uint8_t> Header() const;  // everything before the first tensor's bytes
  // Calls sink(bytes) for each tensor's data and its padding, in file order.
  void ForEachTensorData(const std::function<void(std::span<const uint8_t>)>& sink) const;

  std::vector<Entry> entries_;
  std::vector<Tensor> tensors_;
  uint32_t alignment_ = 32;
};

}  // namespace hearth::gguf
