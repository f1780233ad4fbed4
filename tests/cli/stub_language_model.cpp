// A LanguageModel whose every member throws, linked only into the test copy of the program
// that is built while src/train/language_model.cpp does not exist yet. It lets the train
// command's input checks, which run before any model is built, be tested on their own.
#include "mambacpp/error.h"
#include "train/language_model.h"

namespace mambacpp::train {

struct LanguageModel::Impl {};

namespace {
[[noreturn]] void not_built() { throw Error("LanguageModel is not built in this test program"); }
}  // namespace

LanguageModel LanguageModel::initialize(const ModelConfig&, uint64_t) { not_built(); }
LanguageModel LanguageModel::load(const std::string&) { not_built(); }
LanguageModel::LanguageModel(LanguageModel&&) noexcept = default;
LanguageModel& LanguageModel::operator=(LanguageModel&&) noexcept = default;
LanguageModel::~LanguageModel() = default;
double LanguageModel::loss(const int32_t*, int64_t, int64_t, bool, ThreadPool&) { not_built(); }
void LanguageModel::save(const std::string&) const { not_built(); }
std::vector<Parameter>& LanguageModel::parameters() { not_built(); }
const std::vector<Parameter>& LanguageModel::parameters() const { not_built(); }
const ModelConfig& LanguageModel::config() const { not_built(); }
void LanguageModel::zero_grad() { not_built(); }

}  // namespace mambacpp::train
