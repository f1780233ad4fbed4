#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "mambacpp/model.h"
#include "mambacpp/sampler.h"

namespace mambacpp {

// One sequence to continue: its state after the prompt, the logits of its last token, and
// its own sampler. decode_requests() appends the generated ids to `output`; the state it
// leaves has read every output token but the last.
struct DecodeRequest {
  State state;
  std::vector<float> logits;  // [padded_vocab] of the last token read
  Sampler sampler;
  int64_t max_tokens = 0;
  int32_t eos = -1;           // stops (without output) when sampled; -1: none
  // Called with each output token; returning false finishes the request (a stop string).
  std::function<bool(int32_t)> on_token;

  std::vector<int32_t> output;
  bool done = false;
};

// Advances the requests together, up to `max_batch` at a time, one token per request per
// step, with one pass over the weights per step for the whole batch. A finished request
// (max_tokens or EOS) leaves the batch and the next waiting one joins. A request's tokens
// never depend on which others share its batch.
void decode_requests(const Model& model, std::vector<DecodeRequest*>& requests, int64_t max_batch,
                     ThreadPool& pool);

}  // namespace mambacpp
