#include "gguf/gguf.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <sstream>

#include "base/error.h"

namespace hearth::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian uint32
constexpr uint32_t kMaxDims = 4;         // GGML_MAX_DIMS
constexpr uint64_t kMaxStringLength = uint64_t{1} << 30;

constexpr TypeTraits kTypeTraits[] = {
    {TensorType::kF32, "F32", 1, 4},        {TensorType::kF16, "F16", 1, 2},
    {TensorType::kQ4_0, "Q4_0", 32, 18},    {TensorType::kQ4_1, "Q4_1", 32, 20},
    {TensorType::kQ5_0, "Q5_0", 32, 22},    {TensorType::kQ5_1, "Q5_1", 32, 24},
    {TensorType::kQ8_0, "Q8_0", 32, 34},    {TensorType::kQ8_1, "Q8_1", 32, 36},
    {TensorType::kQ2_K, "Q2_K", 256, 84},   {TensorType::kQ3_K, "Q3_K", 256, 110},
    {TensorType::kQ4_K, "Q4_K", 256, 144},  {TensorType::kQ5_K, "Q5_K", 256, 176},
    {TensorType::kQ6_K, "Q6_K", 256, 210},  {TensorType::kQ8_K, "Q8_K", 256, 292},
    {TensorType::kIQ4_NL, "IQ4_NL", 32, 18}, {TensorType::kIQ4_XS, "IQ4_XS", 256, 136},
    {TensorType::kBF16, "BF16", 1, 2},      {TensorType::kMXFP4, "MXFP4", 32, 17},
    {TensorType::kI8, "I8", 1, 1},          {TensorType::kI16, "I16", 1, 2},
    {TensorType::kI32, "I32", 1, 4},        {TensorType::kI64, "I64", 1, 8},
    {TensorType::kF64, "F64", 1, 8},
};

size_t ScalarSize(ValueType type) {
  switch (type) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kBool:
      return 1;
    case ValueType::kUint16:
    case ValueType::kInt16:
      return 2;
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kFloat32:
      return 4;
    case ValueType::kUint64:
    case ValueType::kInt64:
    case ValueType::kFloat64:
      return 8;
    default:
      return 0;  // string / array: variable
  }
}

bool IsKnownValueType(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::kFloat64); }

template <typename T>
T LoadLE(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // x86/ARM hosts are little-endian, as GGUF is
  return v;
}

// Reads the file front to back; every read is bounds-checked and failures name what was being
// read and at which byte offset.
class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size, const std::string& path)
      : data_(data), size_(size), path_(path) {}

  uint64_t position() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  const uint8_t* Take(uint64_t n, const std::string& what) {
    if (n > remaining()) {
      Fail("file is truncated: " + what + " needs " + std::to_string(n) + " bytes at offset " +
           std::to_string(pos_) + " but only " + std::to_string(remaining()) + " remain");
    }
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  template <typename T>
  T Read(const std::string& what) {
    return LoadLE<T>(Take(sizeof(T), what));
  }
  std::string_view ReadString(const std::string& what) {
    uint64_t length = Read<uint64_t>(what + " length");
    if (length > kMaxStringLength) {
      Fail(what + " has an absurd length of " + std::to_string(length) + " bytes");
    }
    const uint8_t* p = Take(length, what);
    return {reinterpret_cast<const char*>(p), static_cast<size_t>(length)};
  }

  [[noreturn]] void Fail(const std::string& what) const {
    ThrowInvalidInput("invalid GGUF file '" + path_ + "': " + what,
                      "the file is damaged or not a GGUF model; download it again");
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& path_;
};

void ReadScalar(Cursor& cur, ValueType type, Value& v, const std::string& what) {
  v.type = type;
  switch (type) {
    case ValueType::kUint8:
      v.as_uint = cur.Read<uint8_t>(what);
      break;
    case ValueType::kInt8:
      v.as_int = cur.Read<int8_t>(what);
      break;
    case ValueType::kUint16:
      v.as_uint = cur.Read<uint16_t>(what);
      break;
    case ValueType::kInt16:
      v.as_int = cur.Read<int16_t>(what);
      break;
    case ValueType::kUint32:
      v.as_uint = cur.Read<uint32_t>(what);
      break;
    case ValueType::kInt32:
      v.as_int = cur.Read<int32_t>(what);
      break;
    case ValueType::kUint64:
      v.as_uint = cur.Read<uint64_t>(what);
      break;
    case ValueType::kInt64:
      v.as_int = cur.Read<int64_t>(what);
      break;
    case ValueType::kFloat32:
      v.as_float = cur.Read<float>(what);
      break;
    case ValueType::kFloat64:
      v.as_float = cur.Read<double>(what);
      break;
    case ValueType::kBool: {
      uint8_t b = cur.Read<uint8_t>(what);
      if (b > 1) cur.Fail(what + " is a bool with value " + std::to_string(b));
      v.as_bool = b != 0;
      break;
    }
    case ValueType::kString:
      v.as_string = cur.ReadString(what);
      break;
    case ValueType::kArray:
      break;  // handled by the caller
  }
  // Mirror unsigned/signed so that is_integer() users can read either field.
  if (type == ValueType::kUint8 || type == ValueType::kUint16 || type == ValueType::kUint32 ||
      type == ValueType::kUint64) {
    v.as_int = static_cast<int64_t>(v.as_uint);
  } else if (type == ValueType::kInt8 || type == ValueType::kInt16 || type == ValueType::kInt32 ||
             type == ValueType::kInt64) {
    v.as_uint = static_cast<uint64_t>(v.as_int);
  }
}

int64_t ElementAsInt(const Value& v, uint64_t i) {
  const uint8_t* p = v.elements + i * ScalarSize(v.element_type);
  switch (v.element_type) {
    case ValueType::kUint8:
    case ValueType::kBool:
      return LoadLE<uint8_t>(p);
    case ValueType::kInt8:
      return LoadLE<int8_t>(p);
    case ValueType::kUint16:
      return LoadLE<uint16_t>(p);
    case ValueType::kInt16:
      return LoadLE<int16_t>(p);
    case ValueType::kUint32:
      return LoadLE<uint32_t>(p);
    case ValueType::kInt32:
      return LoadLE<int32_t>(p);
    case ValueType::kUint64:
      return static_cast<int64_t>(LoadLE<uint64_t>(p));
    case ValueType::kInt64:
      return LoadLE<int64_t>(p);
    default:
      return 0;
  }
}

bool IsIntegerType(ValueType t) {
  switch (t) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kUint16:
    case ValueType::kInt16:
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kUint64:
    case ValueType::kInt64:
      return true;
    default:
      return false;
  }
}

}  // namespace

const char* ValueTypeName(ValueType type) {
  static const char* const kNames[] = {"uint8",   "int8",  "uint16", "int16",  "uint32",
                                       "int32",   "float32", "bool", "string", "array",
                                       "uint64",  "int64", "float64"};
  auto i = static_cast<uint32_t>(type);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

const TypeTraits* FindTypeTraits(uint32_t type_id) {
  for (const auto& t : kTypeTraits) {
    if (static_cast<uint32_t>(t.type) == type_id) return &t;
  }
  return nullptr;
}

std::string TensorTypeName(uint32_t type_id) {
  const TypeTraits* t = FindTypeTraits(type_id);
  return t ? t->name : "type#" + std::to_string(type_id);
}

bool Value::is_integer() const { return IsIntegerType(type); }

std::string Value::Describe() const {
  std::ostringstream out;
  switch (type) {
    case ValueType::kString:
      out << '"' << as_string.substr(0, 80) << (as_string.size() > 80 ? "…" : "") << '"';
      break;
    case ValueType::kBool:
      out << (as_bool ? "true" : "false");
      break;
    case ValueType::kFloat32:
    case ValueType::kFloat64:
      out << as_float;
      break;
    case ValueType::kArray: {
      out << '[' << ValueTypeName(element_type) << " x " << count;
      uint64_t shown = std::min<uint64_t>(count, 8);
      if (shown > 0) out << ": ";
      for (uint64_t i = 0; i < shown; ++i) {
        if (i) out << ", ";
        if (element_type == ValueType::kString) {
          out << '"' << strings[i].substr(0, 20) << '"';
        } else if (element_type == ValueType::kFloat32) {
          out << LoadLE<float>(elements + 4 * i);
        } else if (element_type == ValueType::kFloat64) {
          out << LoadLE<double>(elements + 8 * i);
        } else {
          out << ElementAsInt(*this, i);
        }
      }
      if (count > shown) out << ", …";
      out << ']';
      break;
    }
    default:
      if (type == ValueType::kUint64 || type == ValueType::kUint32 || type == ValueType::kUint16 ||
          type == ValueType::kUint8) {
        out << as_uint;
      } else {
        out << as_int;
      }
  }
  return out.str();
}

int64_t TensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

const TypeTraits& TensorInfo::traits() const { return *FindTypeTraits(type_id); }

File File::Open(const std::string& path) { return Parse(MappedFile::Open(path)); }

void File::Fail(const std::string& what) const {
  ThrowInvalidInput("invalid GGUF file '" + path() + "': " + what,
                    "the file is damaged or not a GGUF model; download it again");
}

// Longer than 150 lines on purpose: one front-to-back pass over untrusted bytes, where every
// count, length and offset is checked before the next one is derived from it; keeping the pass in
// one place keeps each offset's provenance (and its check) visible.
File File::Parse(MappedFile mapped) {
  File file;
  file.mapped_ = std::move(mapped);
  const std::string& path = file.mapped_.path();
  Cursor cur(file.mapped_.data(), file.mapped_.size(), path);

  if (file.mapped_.size() < 4 || LoadLE<uint32_t>(file.mapped_.data()) != kMagic) {
    ThrowInvalidInput("'" + path + "' is not a GGUF file (wrong magic bytes)",
                      "pass a .gguf model file such as the ones llama.cpp and Ollama use");
  }
  cur.Take(4, "magic");
  file.version_ = cur.Read<uint32_t>("version");
  if (file.version_ == 1) {
    cur.Fail("GGUF version 1 is obsolete and not supported (convert it with a current llama.cpp)");
  }
  if (file.version_ != 2 && file.version_ != 3) {
    bool swapped = (file.version_ & 0xFFFF) == 0 && (file.version_ >> 24) <= 3;
    cur.Fail(swapped ? "big-endian GGUF files are not supported"
                     : "unsupported GGUF version " + std::to_string(file.version_) +
                           " (hearth reads versions 2 and 3)");
  }
  int64_t n_tensors = cur.Read<int64_t>("tensor count");
  int64_t n_kv = cur.Read<int64_t>("metadata count");
  // Every key/value pair takes at least 8 (key length) + 4 (type) + 1 bytes and every tensor
  // info at least 8 + 4 + 8 + 4 + 8, so counts beyond what the file could hold are rejected
  // before anything is allocated.
  if (n_kv < 0 || static_cast<uint64_t>(n_kv) > cur.remaining() / 13) {
    cur.Fail("absurd metadata count " + std::to_string(n_kv) + " for a file of " +
             std::to_string(file.mapped_.size()) + " bytes");
  }
  if (n_tensors < 0 || static_cast<uint64_t>(n_tensors) > cur.remaining() / 32) {
    cur.Fail("absurd tensor count " + std::to_string(n_tensors) + " for a file of " +
             std::to_string(file.mapped_.size()) + " bytes");
  }

  file.metadata_.reserve(static_cast<size_t>(n_kv));
  for (int64_t i = 0; i < n_kv; ++i) {
    std::string key(cur.ReadString("key of metadata entry " + std::to_string(i)));
    if (key.empty()) cur.Fail("metadata entry " + std::to_string(i) + " has an empty key");
    if (file.metadata_index_.count(key)) cur.Fail("duplicate metadata key '" + key + "'");
    uint32_t type = cur.Read<uint32_t>("type of key '" + key + "'");
    if (!IsKnownValueType(type)) {
      cur.Fail("key '" + key + "' has unknown value type " + std::to_string(type));
    }
    Value v;
    auto vt = static_cast<ValueType>(type);
    if (vt == ValueType::kArray) {
      v.type = ValueType::kArray;
      uint32_t et = cur.Read<uint32_t>("element type of key '" + key + "'");
      if (!IsKnownValueType(et)) {
        cur.Fail("array '" + key + "' has unknown element type " + std::to_string(et));
      }
      v.element_type = static_cast<ValueType>(et);
      if (v.element_type == ValueType::kArray) {
        cur.Fail("array '" + key + "' contains nested arrays, which GGUF readers do not support");
      }
      v.count = cur.Read<uint64_t>("length of array '" + key + "'");
      if (v.element_type == ValueType::kString) {
        if (v.count > cur.remaining() / 8) {
          cur.Fail("array '" + key + "' claims " + std::to_string(v.count) +
                   " strings, more than the file can hold");
        }
        v.strings.reserve(static_cast<size_t>(v.count));
        for (uint64_t j = 0; j < v.count; ++j) {
          v.strings.push_back(cur.ReadString("element " + std::to_string(j) + " of '" + key + "'"));
        }
      } else {
        size_t es = ScalarSize(v.element_type);
        if (v.count > cur.remaining() / es) {
          cur.Fail("array '" + key + "' claims " + std::to_string(v.count) +
                   " elements, more than the file can hold");
        }
        v.elements = cur.Take(v.count * es, "array '" + key + "'");
        if (v.element_type == ValueType::kBool) {
          for (uint64_t j = 0; j < v.count; ++j) {
            if (v.elements[j] > 1) cur.Fail("array '" + key + "' has a bool that is not 0 or 1");
          }
        }
      }
    } else {
      ReadScalar(cur, vt, v, "value of key '" + key + "'");
    }
    file.metadata_index_.emplace(key, file.metadata_.size());
    file.metadata_.emplace_back(std::move(key), std::move(v));
  }

  if (const Value* a = file.Find("general.alignment")) {
    if (!a->is_integer() || a->as_uint == 0 || a->as_uint > (1u << 16) ||
        (a->as_uint & (a->as_uint - 1)) != 0) {
      cur.Fail("general.alignment must be a power of two up to 65536, got " + a->Describe());
    }
    file.alignment_ = static_cast<uint32_t>(a->as_uint);
  }
  if (auto split = file.GetInt("split.count"); split && *split > 1) {
    ThrowInvalidInput("'" + path + "' is one part of a split GGUF model (" +
                          std::to_string(*split) + " files); split files are not supported",
                      "merge them into one file first: llama-gguf-split --merge FIRST.gguf OUT.gguf");
  }

  file.tensors_.reserve(static_cast<size_t>(n_tensors));
  for (int64_t i = 0; i < n_tensors; ++i) {
    TensorInfo t;
    t.name = std::string(cur.ReadString("name of tensor " + std::to_string(i)));
    const std::string where = "tensor '" + t.name + "'";
    if (t.name.empty()) cur.Fail("tensor " + std::to_string(i) + " has an empty name");
    if (file.tensor_index_.count(t.name)) cur.Fail("duplicate " + where);
    uint32_t n_dims = cur.Read<uint32_t>("dimension count of " + where);
    if (n_dims == 0 || n_dims > kMaxDims) {
      cur.Fail(where + " has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
    }
    int64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      int64_t ne = cur.Read<int64_t>("shape of " + where);
      if (ne <= 0) cur.Fail(where + " has a non-positive dimension " + std::to_string(ne));
      if (n_elements > std::numeric_limits<int64_t>::max() / ne) {
        cur.Fail(where + " has a shape whose element count overflows");
      }
      n_elements *= ne;
      t.shape.push_back(ne);
    }
    t.type_id = cur.Read<uint32_t>("type of " + where);
    const TypeTraits* traits = FindTypeTraits(t.type_id);
    if (!traits) {
      cur.Fail(where + " has unknown or unsupported type id " + std::to_string(t.type_id));
    }
    if (t.shape[0] % traits->block_size != 0) {
      cur.Fail(where + " has row length " + std::to_string(t.shape[0]) +
               ", not a multiple of the " + traits->name + " block size " +
               std::to_string(traits->block_size));
    }
    uint64_t n_blocks = static_cast<uint64_t>(n_elements) / traits->block_size;
    if (n_blocks > std::numeric_limits<uint64_t>::max() / traits->type_size) {
      cur.Fail(where + " is absurdly large");
    }
    t.n_bytes = n_blocks * traits->type_size;
    t.offset = cur.Read<uint64_t>("offset of " + where);
    if (t.offset % file.alignment_ != 0) {
      cur.Fail(where + " is misaligned: offset " + std::to_string(t.offset) +
               " is not a multiple of " + std::to_string(file.alignment_));
    }
    file.tensor_index_.emplace(t.name, file.tensors_.size());
    file.tensors_.push_back(std::move(t));
  }

  uint64_t end_of_infos = cur.position();
  file.data_offset_ = (end_of_infos + file.alignment_ - 1) / file.alignment_ * file.alignment_;
  const uint64_t size = file.mapped_.size();
  if (!file.tensors_.empty() && file.data_offset_ > size) {
    cur.Fail("file is truncated: the tensor data section is missing");
  }
  const uint64_t blob = size > file.data_offset_ ? size - file.data_offset_ : 0;

  std::vector<const TensorInfo*> by_offset;
  for (TensorInfo& t : file.tensors_) {
    if (t.offset > blob || t.n_bytes > blob - t.offset) {
      cur.Fail("file is truncated: tensor '" + t.name + "' needs bytes " +
               std::to_string(file.data_offset_ + t.offset) + ".." +
               std::to_string(file.data_offset_ + t.offset + t.n_bytes) + " but the file has " +
               std::to_string(size));
    }
    t.data = file.mapped_.data() + file.data_offset_ + t.offset;
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo& prev = *by_offset[i - 1];
    if (prev.offset + prev.n_bytes > by_offset[i]->offset) {
      cur.Fail("tensors '" + prev.name + "' and '" + by_offset[i]->name + "' overlap");
    }
  }
  return file;
}

const Value* File::Find(std::string_view key) const {
  auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].second;
}

std::optional<int64_t> File::GetInt(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) return std::nullopt;
  if (v->is_integer()) return v->as_int;
  if (v->type == ValueType::kBool) return v->as_bool ? 1 : 0;
  Fail("key '" + std::string(key) + "' should be an integer but is a " + ValueTypeName(v->type));
}

std::optional<double> File::GetFloat(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) return std::nullopt;
  if (v->type == ValueType::kFloat32 || v->type == ValueType::kFloat64) return v->as_float;
  if (v->is_integer()) return static_cast<double>(v->as_int);
  Fail("key '" + std::string(key) + "' should be a number but is a " + ValueTypeName(v->type));
}

std::optional<bool> File::GetBool(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) return std::nullopt;
  if (v->type == ValueType::kBool) return v->as_bool;
  if (v->is_integer()) return v->as_int != 0;
  Fail("key '" + std::string(key) + "' should be a bool but is a " + ValueTypeName(v->type));
}

std::optional<std::string_view> File::GetString(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) return std::nullopt;
  if (v->type == ValueType::kString) return v->as_string;
  Fail("key '" + std::string(key) + "' should be a string but is a " + ValueTypeName(v->type));
}

std::optional<std::vector<int64_t>> File::GetIntArray(std::string_view key) const {
  const Value* v = Find(key);
  if (!v || !v->is_array()) return std::nullopt;
  if (!IsIntegerType(v->element_type) && v->element_type != ValueType::kBool) {
    Fail("array '" + std::string(key) + "' should hold integers but holds " +
         ValueTypeName(v->element_type));
  }
  std::vector<int64_t> out(static_cast<size_t>(v->count));
  for (uint64_t i = 0; i < v->count; ++i) out[i] = ElementAsInt(*v, i);
  return out;
}

std::optional<std::vector<float>> File::GetFloatArray(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) return std::nullopt;
  if (!v->is_array() ||
      (v->element_type != ValueType::kFloat32 && v->element_type != ValueType::kFloat64)) {
    Fail("key '" + std::string(key) + "' should be an array of floats");
  }
  std::vector<float> out(static_cast<size_t>(v->count));
  for (uint64_t i = 0; i < v->count; ++i) {
    out[i] = v->element_type == ValueType::kFloat32
                 ? LoadLE<float>(v->elements + 4 * i)
                 : static_cast<float>(LoadLE<double>(v->elements + 8 * i));
  }
  return out;
}

const std::vector<std::string_view>* File::GetStringArray(std::string_view key) const {
  const Value* v = Find(key);
  if (!v) return nullptr;
  if (!v->is_array() || v->element_type != ValueType::kString) {
    Fail("key '" + std::string(key) + "' should be an array of strings");
  }
  return &v->strings;
}

int64_t File::RequireInt(std::string_view key) const {
  auto v = GetInt(key);
  if (!v) Fail("required key '" + std::string(key) + "' is missing");
  return *v;
}

double File::RequireFloat(std::string_view key) const {
  auto v = GetFloat(key);
  if (!v) Fail("required key '" + std::string(key) + "' is missing");
  return *v;
}

std::string_view File::RequireString(std::string_view key) const {
  auto v = GetString(key);
  if (!v) Fail("required key '" + std::string(key) + "' is missing");
  return *v;
}

const TensorInfo* File::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

// ---------------------------------------------------------------------------------------------
// Writer

namespace {

// resize + memcpy rather than insert: GCC 12 reports false stringop-overflow warnings for
// vector<uint8_t>::insert of small ranges.
void AppendBytes(std::vector<uint8_t>& out, const void* p, size_t n) {
  if (n == 0) return;
  size_t at = out.size();
  out.resize(at + n);
  std::memcpy(out.data() + at, p, n);
}

template <typename T>
void Append(std::vector<uint8_t>& out, T value) {
  AppendBytes(out, &value, sizeof(T));
}

void AppendString(std::vector<uint8_t>& out, std::string_view s) {
  Append<uint64_t>(out, s.size());
  AppendBytes(out, s.data(), s.size());
}

std::vector<uint8_t> Typed(ValueType type) {
  std::vector<uint8_t> out;
  Append<uint32_t>(out, static_cast<uint32_t>(type));
  return out;
}

}  // namespace

void Writer::Put(std::string key, std::vector<uint8_t> encoded) {
  for (Entry& e : entries_) {
    if (e.key == key) {
      e.encoded = std::move(encoded);
      return;
    }
  }
  entries_.push_back({std::move(key), std::move(encoded)});
}

void Writer::SetUint32(std::string key, uint32_t value) {
  auto e = Typed(ValueType::kUint32);
  Append(e, value);
  Put(std::move(key), std::move(e));
}
void Writer::SetInt32(std::string key, int32_t value) {
  auto e = Typed(ValueType::kInt32);
  Append(e, value);
  Put(std::move(key), std::move(e));
}
void Writer::SetFloat32(std::string key, float value) {
  auto e = Typed(ValueType::kFloat32);
  Append(e, value);
  Put(std::move(key), std::move(e));
}
void Writer::SetBool(std::string key, bool value) {
  auto e = Typed(ValueType::kBool);
  Append<uint8_t>(e, value ? 1 : 0);
  Put(std::move(key), std::move(e));
}
void Writer::SetString(std::string key, std::string value) {
  auto e = Typed(ValueType::kString);
  AppendString(e, value);
  Put(std::move(key), std::move(e));
}
void Writer::SetInt32Array(std::string key, std::span<const int32_t> values) {
  auto e = Typed(ValueType::kArray);
  Append<uint32_t>(e, static_cast<uint32_t>(ValueType::kInt32));
  Append<uint64_t>(e, values.size());
  for (int32_t v : values) Append(e, v);
  Put(std::move(key), std::move(e));
}
void Writer::SetFloat32Array(std::string key, std::span<const float> values) {
  auto e = Typed(ValueType::kArray);
  Append<uint32_t>(e, static_cast<uint32_t>(ValueType::kFloat32));
  Append<uint64_t>(e, values.size());
  for (float v : values) Append(e, v);
  Put(std::move(key), std::move(e));
}
void Writer::SetBoolArray(std::string key, std::span<const bool> values) {
  auto e = Typed(ValueType::kArray);
  Append<uint32_t>(e, static_cast<uint32_t>(ValueType::kBool));
  Append<uint64_t>(e, values.size());
  for (bool v : values) Append<uint8_t>(e, v ? 1 : 0);
  Put(std::move(key), std::move(e));
}
void Writer::SetStringArray(std::string key, std::span<const std::string> values) {
  auto e = Typed(ValueType::kArray);
  Append<uint32_t>(e, static_cast<uint32_t>(ValueType::kString));
  Append<uint64_t>(e, values.size());
  for (const std::string& v : values) AppendString(e, v);
  Put(std::move(key), std::move(e));
}

void Writer::CopyValue(const File& from, std::string_view key) {
  const Value* v = from.Find(key);
  if (!v) return;
  std::vector<uint8_t> e = Typed(v->type);
  auto append_scalar = [&](ValueType t, const Value& s) {
    switch (t) {
      case ValueType::kUint8: Append<uint8_t>(e, static_cast<uint8_t>(s.as_uint)); break;
      case ValueType::kInt8: Append<int8_t>(e, static_cast<int8_t>(s.as_int)); break;
      case ValueType::kUint16: Append<uint16_t>(e, static_cast<uint16_t>(s.as_uint)); break;
      case ValueType::kInt16: Append<int16_t>(e, static_cast<int16_t>(s.as_int)); break;
      case ValueType::kUint32: Append<uint32_t>(e, static_cast<uint32_t>(s.as_uint)); break;
      case ValueType::kInt32: Append<int32_t>(e, static_cast<int32_t>(s.as_int)); break;
      case ValueType::kUint64: Append<uint64_t>(e, s.as_uint); break;
      case ValueType::kInt64: Append<int64_t>(e, s.as_int); break;
      case ValueType::kFloat32: Append<float>(e, static_cast<float>(s.as_float)); break;
      case ValueType::kFloat64: Append<double>(e, s.as_float); break;
      case ValueType::kBool: Append<uint8_t>(e, s.as_bool ? 1 : 0); break;
      case ValueType::kString: AppendString(e, s.as_string); break;
      case ValueType::kArray: break;
    }
  };
  if (v->is_array()) {
    Append<uint32_t>(e, static_cast<uint32_t>(v->element_type));
    Append<uint64_t>(e, v->count);
    if (v->element_type == ValueType::kString) {
      for (std::string_view s : v->strings) AppendString(e, s);
    } else {
      AppendBytes(e, v->elements, v->count * ScalarSize(v->element_type));
    }
  } else {
    append_scalar(v->type, *v);
  }
  Put(std::string(key), std::move(e));
}

void Writer::AddTensor(std::string name, std::vector<int64_t> shape, uint32_t type_id,
                       std::span<const uint8_t> data) {
  auto bytes = std::make_shared<std::vector<uint8_t>>(data.begin(), data.end());
  uint64_t n = bytes->size();
  AddLazyTensor(std::move(name), std::move(shape), type_id, n,
                [bytes](std::span<uint8_t> out) {
                  if (!out.empty()) std::memcpy(out.data(), bytes->data(), out.size());
                });
}

void Writer::AddLazyTensor(std::string name, std::vector<int64_t> shape, uint32_t type_id,
                           uint64_t n_bytes, FillFn fill) {
  tensors_.push_back({std::move(name), std::move(shape), type_id, n_bytes, std::move(fill)});
}

std::vector<uint8_t> Writer::Header() const {
  std::vector<uint8_t> out;
  Append<uint32_t>(out, kMagic);
  Append<uint32_t>(out, 3);
  Append<int64_t>(out, static_cast<int64_t>(tensors_.size()));
  bool has_alignment_key = alignment_ != 32;
  Append<int64_t>(out, static_cast<int64_t>(entries_.size() + (has_alignment_key ? 1 : 0)));
  if (has_alignment_key) {
    AppendString(out, "general.alignment");
    Append<uint32_t>(out, static_cast<uint32_t>(ValueType::kUint32));
    Append<uint32_t>(out, alignment_);
  }
  for (const Entry& e : entries_) {
    AppendString(out, e.key);
    AppendBytes(out, e.encoded.data(), e.encoded.size());
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    AppendString(out, t.name);
    Append<uint32_t>(out, static_cast<uint32_t>(t.shape.size()));
    for (int64_t d : t.shape) Append<int64_t>(out, d);
    Append<uint32_t>(out, t.type_id);
    Append<uint64_t>(out, offset);
    offset += (t.n_bytes + alignment_ - 1) / alignment_ * alignment_;
  }
  out.resize((out.size() + alignment_ - 1) / alignment_ * alignment_, 0);
  return out;
}

void Writer::ForEachTensorData(
    const std::function<void(std::span<const uint8_t>)>& sink) const {
  std::vector<uint8_t> buffer;
  for (const Tensor& t : tensors_) {
    uint64_t padded = (t.n_bytes + alignment_ - 1) / alignment_ * alignment_;
    buffer.assign(padded, 0);
    t.fill(std::span<uint8_t>(buffer.data(), t.n_bytes));
    sink(buffer);
  }
}

std::vector<uint8_t> Writer::Serialize() const {
  std::vector<uint8_t> out = Header();
  ForEachTensorData([&](std::span<const uint8_t> bytes) {
    AppendBytes(out, bytes.data(), bytes.size());
  });
  return out;
}

void Writer::WriteFile(const std::string& path) const {
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) ThrowIo("cannot create '" + tmp + "': " + ErrnoText(errno), "check the directory");
  bool ok = true;
  auto write = [&](std::span<const uint8_t> bytes) {
    ok = ok && std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  };
  try {
    write(Header());
    ForEachTensorData(write);
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  int err = ok ? 0 : errno;
  ok = (std::fflush(f) == 0) && ok;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    if (err == 0) err = errno;
    std::remove(tmp.c_str());
    ThrowIo("cannot write '" + path + "': " + ErrnoText(err), "is the disk full?");
  }
}

}  // namespace hearth::gguf
