// Model loading: open the GGUF (memory-mapped), read the configuration, bind the weights.
#include "model/model.h"

#include "gguf/gguf.h"
#include "model/weights.h"

namespace hearth::model {

struct Model::FileHolder {
  gguf::File file;
};

Model::Model() = default;
Model::~Model() = default;

std::unique_ptr<Model> Model::Load(const std::string& path) {
  return FromFile(gguf::File::Open(path));
}

std::unique_ptr<Model> Model::FromFile(gguf::File file) {
  std::unique_ptr<Model> m(new Model());
  m->file_ = std::make_unique<FileHolder>(FileHolder{std::move(file)});
  m->config_ = ReadConfig(m->file_->file);
  m->weights_ = std::make_unique<Weights>(BindWeights(m->file_->file, m->config_));
  m->repacked_ = RepackWeights(*m->weights_, m->config_, m->file_->file);
  return m;
}

const gguf::File& Model::file() const { return file_->file; }

uint64_t Model::weight_bytes() const {
  uint64_t total = 0;
  for (const auto& t : file_->file.tensors()) total += t.n_bytes;
  return total;
}

}  // namespace hearth::model
