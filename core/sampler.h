// Next-token selection from logits: greedy (temperature 0), or sampling with temperature, top-k and
// top-p (nucleus), reproducible for a given seed.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace stave {

struct SamplingParams {
  float temperature = 0.0f;  // 0 = greedy
  int top_k = 0;             // 0 = no limit
  float top_p = 1.0f;        // (0, 1]; 1 = no limit
  uint64_t seed = 0;
};

absl::Status ValidateSamplingParams(const SamplingParams& p);

// The candidate set sampling draws from, most probable first, as (token, probability) with
// probabilities renormalised over the set: the top_k most probable (all when 0), then the
// smallest prefix of those whose probability reaches top_p.
std::vector<std::pair<int, float>> NucleusCandidates(std::span<const float> probs, int top_k,
                                                     float top_p);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  int Sample(std::span<const float> logits);

 private:
  double Uniform();  // [0, 1), from the seeded engine, identical on every platform
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<float> probs_;
};

}  // namespace stave
