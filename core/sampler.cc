#include "core/sampler.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace stave {

absl::Status ValidateSamplingParams(const SamplingParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0)
    return absl::InvalidArgumentError(
        absl::StrCat("temperature must be a finite number >= 0, got ", p.temperature));
  if (p.top_k < 0) return absl::InvalidArgumentError("top_k must be >= 0");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f))
    return absl::InvalidArgumentError(absl::StrCat("top_p must be in (0, 1], got ", p.top_p));
  return absl::OkStatus();
}

std::vector<std::pair<int, float>> NucleusCandidates(std::span<const float> probs, int top_k,
                                                     float top_p) {
  const int n = static_cast<int>(probs.size());
  std::vector<std::pair<int, float>> c;
  c.reserve(n);
  // Without top-k, tokens below (1 - top_p) / (n - 1) can never be in the nucleus (run.c's
  // pre-filter): it keeps the sort small for large vocabularies.
  const float cutoff = (top_k == 0 && top_p < 1.0f && n > 1) ? (1.0f - top_p) / (n - 1) : 0.0f;
  for (int i = 0; i < n; ++i)
    if (probs[i] >= cutoff) c.emplace_back(i, probs[i]);
  auto by_prob = [](const auto& a, const auto& b) {
    return a.second > b.second || (a.second == b.second && a.first < b.first);
  };
  if (top_k > 0 && top_k < static_cast<int>(c.size())) {
    std::partial_sort(c.begin(), c.begin() + top_k, c.end(), by_prob);
    c.resize(top_k);
  } else {
    std::sort(c.begin(), c.end(), by_prob);
  }
  double total = 0;
  for (const auto& e : c) total += e.second;
  if (top_p < 1.0f) {
    double cumulative = 0;
    size_t keep = c.size();
    for (size_t i = 0; i < c.size(); ++i) {
      cumulative += c[i].second / total;
      if (cumulative >= top_p) {
        keep = i + 1;
        break;
      }
    }
    c.resize(keep);
    total = 0;
    for (const auto& e : c) total += e.second;
  }
  for (auto& e : c) e.second = static_cast<float>(e.second / total);
  return c;
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

double Sampler::Uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

int Sampler::Sample(std::span<const float> logits) {
  const int n = static_cast<int>(logits.size());
  if (params_.temperature == 0.0f) {
    // First maximum, as the reference runner's argmax.
    return static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  probs_.resize(n);
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    probs_[i] = std::exp((logits[i] - max_logit) / params_.temperature);
    sum += probs_[i];
  }
  for (auto& p : probs_) p = static_cast<float>(p / sum);
  const double r = Uniform();
  if (params_.top_k == 0 && params_.top_p >= 1.0f) {
    double cumulative = 0;
    for (int i = 0; i < n; ++i) {
      cumulative += probs_[i];
      if (r < cumulative) return i;
    }
    return n - 1;  // rounding
  }
  auto candidates = NucleusCandidates(probs_, params_.top_k, params_.top_p);
  double cumulative = 0;
  for (const auto& [token, p] : candidates) {
    cumulative += p;
    if (r < cumulative) return token;
  }
  return candidates.back().first;
}

}  // namespace stave
