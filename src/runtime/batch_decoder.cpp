#include "runtime/batch_decoder.h"

#include <algorithm>

#include "mambacpp/error.h"

namespace mambacpp {

namespace {

// Samples the next token of a request from its logits; returns false when it finished.
bool sample_next(DecodeRequest& r, int32_t& token) {
  if (static_cast<int64_t>(r.output.size()) >= r.max_tokens) return false;
  token = r.sampler.sample(r.logits);
  if (token == r.eos) return false;
  r.sampler.accept(token);
  r.output.push_back(token);
  if (r.on_token && !r.on_token(token)) return false;
  return static_cast<int64_t>(r.output.size()) < r.max_tokens;
}

}  // namespace

void decode_requests(const Model& model, std::vector<DecodeRequest*>& requests, int64_t max_batch,
                     ThreadPool& pool) {
  if (max_batch <= 0) throw Error("batch size must be positive, got " + std::to_string(max_batch));
  const int64_t V = model.config().padded_vocab_size;
  size_t next_waiting = 0;
  std::vector<DecodeRequest*> active;
  std::vector<int32_t> tokens;
  std::vector<State*> states;
  std::vector<float> logits;

  for (;;) {
    while (static_cast<int64_t>(active.size()) < max_batch && next_waiting < requests.size())
      active.push_back(requests[next_waiting++]);
    if (active.empty()) return;

    // Sample one token per active request; those that still need logits step together.
    std::vector<DecodeRequest*> stepping;
    tokens.clear();
    states.clear();
    for (DecodeRequest* r : active) {
      int32_t token = -1;
      if (sample_next(*r, token)) {
        stepping.push_back(r);
        tokens.push_back(token);
        states.push_back(&r->state);
      } else {
        r->done = true;
      }
    }

    logits.resize(static_cast<size_t>(tokens.size() * V));
    model.forward_batch(tokens, states, logits.data(), pool);
    for (size_t i = 0; i < stepping.size(); ++i)
      std::copy(logits.begin() + i * V, logits.begin() + (i + 1) * V, stepping[i]->logits.begin());

    std::erase_if(active, [](DecodeRequest* r) { return r->done; });
  }
}

}  // namespace mambacpp
