// --cache-type f16|q8_0|q4_0 (and llama.cpp's -ctk/-ctv, --cache-type-k/--cache-type-v) for the
// commands that run a model: the storage of the KV cache's keys and values
// (model::ContextOptions::cache_type_k / _v). Header-only because src/cli builds only main.cpp,
// commands.cpp and *_command.cpp.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "base/error.h"
#include "model/config.h"

namespace hearth::cli {

struct CacheTypeFlags {
  model::KvType k = model::KvType::kF16;
  model::KvType v = model::KvType::kF16;
  bool given = false;  // any of the flags was on the command line

  // Precise mode keeps its F32 cache: a cache type with it is refused rather than ignored.
  void CheckPrecise(bool precise) const {
    if (precise && given) {
      ThrowUsage("--cache-type does not apply with --precise: precise mode keeps an F32 KV cache",
                 "drop one of the two");
    }
  }
  // "q8_0", or "q8_0/f16" when keys and values differ.
  std::string Describe() const {
    return k == v ? model::KvTypeName(k)
                  : std::string(model::KvTypeName(k)) + "/" + model::KvTypeName(v);
  }
};

inline model::KvType ParseCacheType(const std::string& flag, const std::string& value) {
  model::KvType type = model::KvType::kF16;
  if (!model::ParseKvType(value, &type)) {
    ThrowUsage(flag + " " + value + ": unknown KV cache type",
               std::string("use one of ") + model::kKvTypeChoices);
  }
  return type;
}

inline void AddCacheTypeFlags(CLI::App* cmd, CacheTypeFlags* f) {
  const std::string choices = model::kKvTypeChoices;
  cmd->add_option_function<std::string>(
      "--cache-type",
      [f](const std::string& value) {
        f->k = f->v = ParseCacheType("--cache-type", value);
        f->given = true;
      },
      "KV cache type for keys and values: " + choices +
          " (default f16; q8_0 halves the cache's memory, q4_0 quarters it, at a small cost in "
          "accuracy)");
  // llama.cpp's -ctk / -ctv (main() spells them as these) set one of the two.
  cmd->add_option_function<std::string>(
         "--cache-type-k",
         [f](const std::string& value) {
           f->k = ParseCacheType("--cache-type-k", value);
           f->given = true;
         },
         "KV cache type for the keys alone (-ctk): " + choices)
      ->group("llama.cpp compatibility");
  cmd->add_option_function<std::string>(
         "--cache-type-v",
         [f](const std::string& value) {
           f->v = ParseCacheType("--cache-type-v", value);
           f->given = true;
         },
         "KV cache type for the values alone (-ctv): " + choices)
      ->group("llama.cpp compatibility");
}

}  // namespace hearth::cli
