#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <thread>

#include "base/cpu_cores.h"
#include "base/error.h"
#include "convert/convert.h"
#include "convert/internal.h"
#include "gguf/gguf.h"
#include "tensor/tensor.h"

namespace hearth::convert {

int BlockIndex(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  int layer = 0;
  size_t i = 4;
  if (i >= name.size() || !std::isdigit(static_cast<unsigned char>(name[i]))) return -1;
  while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i]))) {
    layer = layer * 10 + (name[i] - '0');
    ++i;
  }
  return layer;
}

void ConvertRows(uint32_t from_type, const uint8_t* src, uint32_t to_type, uint8_t* dst,
                 int64_t row_length, int64_t rows, tensor::ThreadPool& pool) {
  const size_t src_row = tensor::RowBytes(from_type, row_length);
  const size_t dst_row = tensor::RowBytes(to_type, row_length);
  pool.ParallelFor(rows, [&](int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(row_length));
    for (int64_t r = begin; r < end; ++r) {
      tensor::DequantizeRow(from_type, src + static_cast<size_t>(r) * src_row, row.data(),
                            row_length);
      tensor::QuantizeRow(to_type, row.data(), dst + static_cast<size_t>(r) * dst_row, row_length);
    }
  });
}

int ResolveThreads(int threads) {
  if (threads > 0) return threads;
  return AvailablePhysicalCores();
}

void QuantizeModel(const QuantizeOptions& options) {
  if (!options.preset) ThrowUsage("no target type given", "pick one of " + PresetNames());
  auto in = std::make_shared<gguf::File>(gguf::File::Open(options.input));
  const std::string arch(in->GetString("general.architecture").value_or(""));
  const int n_layers = static_cast<int>(in->GetInt(arch + ".block_count").value_or(0));
  const int n_experts = static_cast<int>(in->GetInt(arch + ".expert_count").value_or(0));

  gguf::Writer writer;
  for (const auto& [key, value] : in->metadata()) {
    if (key == "general.alignment") continue;  // the writer sets its own
    writer.CopyValue(*in, key);
  }
  writer.SetUint32("general.file_type", options.preset->ftype);
  writer.SetUint32("general.quantization_version", 2);

  int attn_v_count = 0;
  for (const auto& t : in->tensors()) attn_v_count += t.name.find("attn_v.weight") != std::string::npos;

  auto pool = std::make_shared<tensor::ThreadPool>(ResolveThreads(options.threads));
  int attn_v_index = 0;
  const int total = static_cast<int>(in->tensors().size());
  int done = 0;
  for (const gguf::TensorInfo& t : in->tensors()) {
    TensorRole role{t.name, t.shape, BlockIndex(t.name), n_layers, 0, attn_v_count, n_experts};
    if (t.name.find("attn_v.weight") != std::string::npos) role.attn_v_index = attn_v_index++;
    uint32_t target = t.type_id;
    if (IsQuantizable(role)) {
      if (!tensor::IsSupportedType(t.type_id)) {
        ThrowInvalidInput("cannot re-encode tensor '" + t.name + "' of '" + options.input +
                              "': its type " + gguf::TensorTypeName(t.type_id) +
                              " is not supported",
                          "quantize from an F32, F16 or BF16 file");
      }
      target = ChooseType(*options.preset, role);
      if (!tensor::HasQuantizer(target)) {
        ThrowInvalidInput("no quantizer for " + gguf::TensorTypeName(target) + " (tensor '" +
                              t.name + "')",
                          "pick another preset: " + PresetNames());
      }
    }
    const int64_t row_length = t.shape[0];
    const int64_t rows = t.n_elements() / row_length;
    const uint64_t n_bytes = target == t.type_id
                                 ? t.n_bytes
                                 : tensor::RowBytes(target, row_length) * static_cast<uint64_t>(rows);
    const gguf::TensorInfo* source = &t;
    Progress progress = options.progress;
    int index = ++done;
    writer.AddLazyTensor(t.name, t.shape, target, n_bytes,
                         [in, pool, source, target, row_length, rows, progress, index,
                          total](std::span<uint8_t> out) {
                           if (progress) progress(source->name, index, total);
                           if (target == source->type_id) {
                             std::memcpy(out.data(), source->data, out.size());
                           } else {
                             ConvertRows(source->type_id, source->data, target, out.data(),
                                         row_length, rows, *pool);
                           }
                         });
  }
  writer.WriteFile(options.output);
}

}  // namespace hearth::convert
