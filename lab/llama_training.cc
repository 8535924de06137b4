#include "lab/llama_training.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/str_cat.h"
#include "core/hf_checkpoint.h"
#include "core/linear.h"
#include "core/rope.h"
#include "core/text_file.h"
#include "lab/kv_retrieval.h"
#include "nlohmann/json.hpp"

namespace stave {
namespace {

constexpr int64_t kIgnore = -100;
constexpr int kPromoteEvery = 50;  // steps between adaptive-curriculum checks

// Appends `ids` to the row; each becomes a target of the position before it when `supervised`.
void Append(std::vector<int64_t>& row, std::vector<int64_t>& targets, const std::vector<int>& ids,
            bool supervised) {
  for (int id : ids) {
    targets.back() = supervised ? id : kIgnore;  // predicted at the previous position
    row.push_back(id);
    targets.push_back(kIgnore);
  }
}

// True with probability p (in steps of 1e-6), from one draw.
bool Chance(std::mt19937_64& rng, double p) { return static_cast<double>(rng() % 1000000) < p * 1000000; }

}  // namespace

KvTrainingBatch MakeKvTrainingBatch(const Tokenizer& tokenizer, const LlamaTrainingOptions& o,
                                    uint64_t seed, int64_t step, bool first_query_only) {
  std::mt19937_64 rng(MixSeed(seed, static_cast<uint64_t>(step)));
  int most = o.max_records;
  if (step <= o.hold_steps) {
    most = o.min_records;
  } else if (step < o.hold_steps + o.ramp_steps) {
    most = o.min_records +
           static_cast<int>((o.max_records - o.min_records) * (step - o.hold_steps) / o.ramp_steps);
  }
  const int records = o.min_records + static_cast<int>(rng() % (most - o.min_records + 1));
  std::vector<std::vector<int64_t>> rows, targets;
  size_t longest = 0;
  for (int b = 0; b < o.batch; ++b) {
    const int gold = static_cast<int>(rng() % records);
    const bool copy = !first_query_only && Chance(rng, o.copy_fraction);
    const uint64_t example_seed = rng();
    std::vector<int64_t> row, target;
    auto start = [&](const std::string& prompt) {
      auto ids = tokenizer.Encode(prompt, /*add_bos=*/true);
      row.assign(ids.begin(), ids.end());
      target.assign(row.size(), kIgnore);
    };
    if (copy) {
      // Any length up to --max-records, whatever the curriculum: with one length the copy is a
      // fixed-offset lookup (measured: perfect at 4 records, 40 % of tokens at 8), with many it
      // needs the induction circuit retrieval needs (find the current token earlier, copy what
      // followed).
      const int copy_records = 1 + static_cast<int>(example_seed % o.max_records);
      auto c = MakeKvCopyExample(copy_records, example_seed);
      start(c.prompt);
      Append(row, target, tokenizer.Encode(c.answer, false), true);
      Append(row, target, {2}, true);
    } else {
      auto ex = MakeKvRetrievalExample(records, gold, first_query_only ? 1 : o.queries, example_seed);
      start(ex.prompt);
      // Queries after the first may become reverse queries (the first stays the eval's format).
      std::map<std::string, int> value_count;
      for (const auto& r : ex.records) ++value_count[r.value];
      for (size_t q = 1; q < ex.answers.size(); ++q) {
        const KvRecord& record = ex.records[ex.queries[q]];
        if (value_count[record.value] == 1 && Chance(rng, o.reverse_fraction)) {
          auto reverse = KvReverseQuery(record);
          ex.between[q - 1] = reverse.between;
          ex.answers[q] = reverse.answer;
        }
      }
      for (size_t q = 0; q < ex.answers.size(); ++q) {
        Append(row, target, tokenizer.Encode(ex.answers[q], false), true);
        if (q + 1 < ex.answers.size()) {
          Append(row, target, tokenizer.Encode(ex.between[q], false), false);
        } else {
          // Decoding stops on EOS after the last answer; first_query_only rows stop scoring here.
          Append(row, target, {2}, !first_query_only);
        }
      }
    }
    if (o.loss_on_all && !first_query_only)
      for (size_t t = 0; t + 1 < row.size(); ++t) target[t] = row[t + 1];
    longest = std::max(longest, row.size());
    rows.push_back(std::move(row));
    targets.push_back(std::move(target));
  }
  auto tokens = torch::full({o.batch, static_cast<int64_t>(longest)}, 2, torch::kLong);
  auto tgt = torch::full({o.batch, static_cast<int64_t>(longest)}, kIgnore, torch::kLong);
  for (int b = 0; b < o.batch; ++b) {
    const auto n = static_cast<int64_t>(rows[b].size());
    tokens[b].narrow(0, 0, n).copy_(torch::tensor(rows[b]));
    tgt[b].narrow(0, 0, n).copy_(torch::tensor(targets[b]));
  }
  return {tokens, tgt};
}

namespace {

constexpr double kEmbeddingStd = 0.02;  // InitLlamaParameters' tensors without a planted head

// InitLlamaParameters' previous-token head (the header says why). The planted head's score
// margin grows with the square of the constant's share of the normalised input, so that share
// must survive training. With Normal(0, 0.02) token embeddings it did not: Adam moves every entry
// ~lr (1e-3) per step, the random dimensions grow tenfold within a few hundred steps, and with a
// constant of 0.3 or 1 the head faded to 0.5 attention (a run at constant 1: 0.98 -> 0.46 by step
// 750). A constant of 4 next to 0.02-std embeddings kept the head (1.00 at step 2250) but
// shrinks every token's own signal ~17x in each RMSNorm, and retrieval stayed at chance. So the
// token embeddings start at std 1 instead, next to a constant of 4: both shares then barely move
// under Adam's steps, and the same setup (seed 3) reached 98 % exact match at 12 records by step 2250 (which
// seeds leave the plateau, and when, still varies: docs/default-model.md). With
// tied embeddings that scale would make the initial logits ~sqrt(dim) large, hence the final
// norm's gain starts at 0.1 (logits of std ~1).
constexpr double kTokenEmbeddingStd = 1.0;
constexpr double kConstantEmbedding = 4.0;
constexpr double kOutputNormGain = 0.1;
constexpr double kAmplitude = 10.0;
constexpr int kPlanes = 8;  // highest-frequency RoPE planes used (the others barely rotate)

void PlantPreviousTokenHead(std::map<std::string, at::Tensor>& p, const ModelConfig& c) {
  torch::NoGradGuard no_grad;
  auto embedding = p.at("model.embed_tokens.weight");
  embedding.mul_(kTokenEmbeddingStd / kEmbeddingStd);
  embedding.select(1, 0).fill_(kConstantEmbedding);
  p.at("model.norm.weight").fill_(kOutputNormGain);
  // RMSNorm's output at dimension 0 for a token whose other dimensions have std
  // kTokenEmbeddingStd.
  const double rms = std::sqrt((kConstantEmbedding * kConstantEmbedding +
                                (c.dim - 1) * kTokenEmbeddingStd * kTokenEmbeddingStd) / c.dim);
  const double constant_in = kConstantEmbedding / rms;
  const int64_t hd = c.head_dim(), half = hd / 2;
  auto wq = p.at(LayerTensorName(0, "self_attn.q_proj.weight")).narrow(0, 0, hd);
  auto wk = p.at(LayerTensorName(0, "self_attn.k_proj.weight")).narrow(0, 0, hd);
  wq.zero_();
  wk.zero_();
  // RoPE rotates plane j (dims j and j + half) by position x theta_j: a query (a, 0) and a key
  // a (cos theta_j, sin theta_j) score a^2 cos((distance - 1) theta_j), largest at distance 1.
  for (int64_t j = 0; j < std::min<int64_t>(kPlanes, half); ++j) {
    const double theta = std::pow(c.rope_theta, -2.0 * j / hd);
    wq[j][0] = kAmplitude / constant_in;
    wk[j][0] = kAmplitude * std::cos(theta) / constant_in;
    wk[j + half][0] = kAmplitude * std::sin(theta) / constant_in;
  }
}

}  // namespace

std::map<std::string, at::Tensor> InitLlamaParameters(const ModelConfig& c, uint64_t seed,
                                                      double shared_embedding, bool previous_token_head) {
  torch::manual_seed(seed);
  const int64_t hd = c.head_dim();
  const double residual_std = 0.02 / std::sqrt(2.0 * c.n_layers);
  std::map<std::string, at::Tensor> p;
  auto normal = [](std::vector<int64_t> shape, double std) { return torch::randn(shape) * std; };
  p["model.embed_tokens.weight"] = normal({c.vocab_size, c.dim}, kEmbeddingStd);
  p["model.norm.weight"] = torch::ones({c.dim});
  for (int l = 0; l < c.n_layers; ++l) {
    auto name = [&](const char* s) { return LayerTensorName(l, s); };
    p[name("input_layernorm.weight")] = torch::ones({c.dim});
    p[name("post_attention_layernorm.weight")] = torch::ones({c.dim});
    p[name("self_attn.q_proj.weight")] = normal({c.n_heads * hd, c.dim}, 0.02);
    p[name("self_attn.k_proj.weight")] = normal({c.n_kv_heads * hd, c.dim}, 0.02);
    p[name("self_attn.v_proj.weight")] = normal({c.n_kv_heads * hd, c.dim}, 0.02);
    p[name("self_attn.o_proj.weight")] = normal({c.dim, c.n_heads * hd}, residual_std);
    p[name("mlp.gate_proj.weight")] = normal({c.hidden_dim, c.dim}, 0.02);
    p[name("mlp.up_proj.weight")] = normal({c.hidden_dim, c.dim}, 0.02);
    p[name("mlp.down_proj.weight")] = normal({c.dim, c.hidden_dim}, residual_std);
  }
  // Drawn last, so the other tensors are the same with or without it. Softmax ignores it at the
  // (tied) output: it adds the same logit to every token.
  if (shared_embedding > 0)
    p["model.embed_tokens.weight"] += normal({1, c.dim}, kEmbeddingStd * shared_embedding);
  if (previous_token_head) PlantPreviousTokenHead(p, c);
  for (auto& [_, t] : p) t.set_requires_grad(true);
  return p;
}

at::Tensor TrainingForward(const std::map<std::string, at::Tensor>& p, const ModelConfig& c,
                           const at::Tensor& tokens, std::vector<at::Tensor>* attention) {
  const int64_t B = tokens.size(0), T = tokens.size(1), hd = c.head_dim();
  const int64_t nh = c.n_heads, nkv = c.n_kv_heads;
  // Built per call, for the T positions used: T x head_dim angles are negligible next to the
  // matmuls, and nothing cached can go stale when the shape changes.
  const RopeTable rope = MakeRopeTable(c.rope_theta, static_cast<int>(hd), static_cast<int>(T), c.rope_scaling,
                                       c.rope_freq_divisors);
  auto cos = rope.cos.view({1, T, 1, hd});
  auto sin = rope.sin_signed.view({1, T, 1, hd});
  auto future = torch::ones({T, T}, torch::kBool).triu(1);

  auto x = torch::embedding(p.at("model.embed_tokens.weight"), tokens);  // [B, T, dim]
  for (int l = 0; l < c.n_layers; ++l) {
    auto w = [&](const char* s) -> const at::Tensor& { return p.at(LayerTensorName(l, s)); };
    auto h = RmsNorm(x, w("input_layernorm.weight"), c.norm_eps);
    auto q = ApplyRope(torch::matmul(h, w("self_attn.q_proj.weight").t()).view({B, T, nh, hd}), cos, sin);
    auto k = ApplyRope(torch::matmul(h, w("self_attn.k_proj.weight").t()).view({B, T, nkv, hd}), cos, sin);
    auto v = torch::matmul(h, w("self_attn.v_proj.weight").t()).view({B, T, nkv, hd});
    q = q.transpose(1, 2);  // [B, heads, T, hd]
    k = k.transpose(1, 2).repeat_interleave(nh / nkv, 1);
    v = v.transpose(1, 2).repeat_interleave(nh / nkv, 1);
    auto scores = torch::matmul(q, k.transpose(2, 3)) / std::sqrt(static_cast<double>(hd));
    auto probs = torch::softmax(scores.masked_fill(future, -INFINITY), -1);
    if (attention) attention->push_back(probs.detach());
    auto attn = torch::matmul(probs, v);
    x = x + torch::matmul(attn.transpose(1, 2).reshape({B, T, nh * hd}), w("self_attn.o_proj.weight").t());
    auto h2 = RmsNorm(x, w("post_attention_layernorm.weight"), c.norm_eps);
    auto gate = torch::silu(torch::matmul(h2, w("mlp.gate_proj.weight").t()));
    auto up = torch::matmul(h2, w("mlp.up_proj.weight").t());
    x = x + torch::matmul(gate * up, w("mlp.down_proj.weight").t());
  }
  x = RmsNorm(x, p.at("model.norm.weight"), c.norm_eps);
  return torch::matmul(x, p.at("model.embed_tokens.weight").t());
}

std::vector<double> PreviousTokenAttention(const std::vector<at::Tensor>& attention) {
  std::vector<double> per_layer;
  for (const auto& probs : attention) {  // [B, heads, T, T]
    const int64_t T = probs.size(-1);
    if (T < 2) {
      per_layer.push_back(0);
      continue;
    }
    // The subdiagonal: attention of position t to t - 1.
    auto previous = probs.diagonal(/*offset=*/-1, /*dim1=*/-2, /*dim2=*/-1);  // [B, heads, T - 1]
    per_layer.push_back(previous.mean(std::vector<int64_t>{0, 2}).max().item<double>());
  }
  return per_layer;
}

double ExactMatch(const at::Tensor& logits, const at::Tensor& targets) {
  auto supervised = targets.ne(kIgnore);
  auto wrong = logits.argmax(-1).ne(targets).logical_and(supervised);
  auto rows_with_targets = supervised.any(1);
  auto correct = wrong.any(1).logical_not().logical_and(rows_with_targets);
  return correct.sum().item<double>() / std::max<int64_t>(1, rows_with_targets.sum().item<int64_t>());
}

namespace {

// The options a resumed run must share with the saved one.
std::string OptionsFingerprint(const LlamaTrainingOptions& o) {
  const auto& c = o.shape;
  nlohmann::json j = {
      {"dim", c.dim}, {"hidden", c.hidden_dim}, {"layers", c.n_layers}, {"heads", c.n_heads},
      {"kv_heads", c.n_kv_heads}, {"vocab", c.vocab_size}, {"context", c.max_seq_len},
      {"theta", c.rope_theta}, {"steps", o.steps}, {"batch", o.batch}, {"lr", o.lr},
      {"min_lr_ratio", o.min_lr_ratio}, {"warmup", o.warmup}, {"weight_decay", o.weight_decay},
      {"clip", o.clip}, {"min_records", o.min_records}, {"max_records", o.max_records},
      {"queries", o.queries}, {"copy_fraction", o.copy_fraction}, {"reverse_fraction", o.reverse_fraction}, {"shared_embedding", o.shared_embedding}, {"previous_token_head", o.previous_token_head}, {"hold_steps", o.hold_steps}, {"promote_at", o.promote_at}, {"ramp_steps", o.ramp_steps}, {"loss_on_all", o.loss_on_all}, {"seed", o.seed}};
  return j.dump();
}

double LearningRate(const LlamaTrainingOptions& o, int step) {
  if (step <= o.warmup) return o.lr * step / std::max(1, o.warmup);
  const double progress = static_cast<double>(step - o.warmup) / std::max(1, o.steps - o.warmup);
  const double cosine = 0.5 * (1 + std::cos(M_PI * std::min(1.0, progress)));
  return o.lr * (o.min_lr_ratio + (1 - o.min_lr_ratio) * cosine);
}

struct Trainer {
  const Tokenizer& tokenizer;
  const LlamaTrainingOptions& o;
  std::string state_path, fingerprint_path;
  std::map<std::string, at::Tensor> params;
  std::unique_ptr<torch::optim::AdamW> optimizer;
  int cap = 0;  // adaptive curriculum: the most records per example so far

  void BuildOptimizer() {
    std::vector<at::Tensor> decay, no_decay;
    for (auto& [_, t] : params) (t.dim() == 2 ? decay : no_decay).push_back(t);
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                   torch::optim::AdamWOptions(o.lr).betas({0.9, 0.95}).weight_decay(o.weight_decay)));
    groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                      torch::optim::AdamWOptions(o.lr).betas({0.9, 0.95}).weight_decay(0)));
    optimizer = std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(o.lr));
  }

  void Save(int step) {
    torch::serialize::OutputArchive archive;
    for (auto& [name, t] : params) archive.write(name, t.detach());
    archive.write("step", torch::tensor(static_cast<int64_t>(step)));
    archive.write("records_cap", torch::tensor(static_cast<int64_t>(cap)));
    torch::serialize::OutputArchive opt;
    optimizer->save(opt);
    archive.write("optimizer", opt);
    const std::string tmp = state_path + ".tmp";
    archive.save_to(tmp);
    std::filesystem::rename(tmp, state_path);  // atomic: a crash never leaves a torn state
  }

  // The step the saved state reached (0 when there is none).
  absl::StatusOr<int> Resume() {
    if (!std::filesystem::exists(state_path)) return 0;
    auto read = ReadTextFile(fingerprint_path);
    const std::string saved = read.ok() ? *read : "(no " + fingerprint_path + ")";
    if (saved != OptionsFingerprint(o))
      return absl::FailedPreconditionError(absl::StrCat(
          state_path, " was saved with other options (", saved, "); use the same options or another --out"));
    torch::serialize::InputArchive archive;
    archive.load_from(state_path);
    torch::NoGradGuard no_grad;
    for (auto& [name, t] : params) {
      at::Tensor saved_t;
      archive.read(name, saved_t);
      t.copy_(saved_t);
    }
    at::Tensor step;
    archive.read("step", step);
    torch::serialize::InputArchive opt;
    archive.read("optimizer", opt);
    optimizer->load(opt);
    at::Tensor saved_cap;
    archive.read("records_cap", saved_cap);
    cap = static_cast<int>(saved_cap.item<int64_t>());
    return static_cast<int>(step.item<int64_t>());
  }

  // Greedy exact match on held-out examples of `records` records (examples: how many).
  // The training options for held-out examples of exactly `records` records.
  LlamaTrainingOptions HeldOutOptions(int records) const {
    LlamaTrainingOptions eval = o;
    eval.min_records = eval.max_records = records;
    eval.hold_steps = eval.ramp_steps = 0;
    return eval;
  }

  double HeldOutAccuracy(int records, int examples, uint64_t stream) {
    torch::NoGradGuard no_grad;
    LlamaTrainingOptions eval = HeldOutOptions(records);
    double correct = 0;
    int seen = 0;
    for (int64_t i = 0; seen < examples; ++i) {
      eval.batch = std::min(o.batch, examples - seen);
      auto batch = MakeKvTrainingBatch(tokenizer, eval, MixSeed(o.seed, stream), i, true);
      correct += ExactMatch(TrainingForward(params, o.shape, batch.tokens), batch.targets) * eval.batch;
      seen += eval.batch;
    }
    return correct / seen;
  }

  std::vector<double> HeldOutPreviousTokenAttention(int records) {
    torch::NoGradGuard no_grad;
    std::vector<at::Tensor> attention;
    auto batch = MakeKvTrainingBatch(tokenizer, HeldOutOptions(records), MixSeed(o.seed, 0x9E7), 0, true);
    TrainingForward(params, o.shape, batch.tokens, &attention);
    return PreviousTokenAttention(attention);
  }

  absl::StatusOr<Checkpoint> Run(const std::function<void(const LlamaTrainingProgress&)>& on_step) {
    params = InitLlamaParameters(o.shape, o.seed, o.shared_embedding, o.previous_token_head);
    cap = o.min_records;
    BuildOptimizer();
    auto resumed = Resume();
    if (!resumed.ok()) return resumed.status();
    {
      std::ofstream f(fingerprint_path);
      f << OptionsFingerprint(o);
    }
    std::vector<at::Tensor> all;
    for (auto& [_, t] : params) all.push_back(t);
    for (int step = *resumed + 1; step <= o.steps; ++step) {
      auto t0 = std::chrono::steady_clock::now();
      const double lr = LearningRate(o, step);
      for (auto& group : optimizer->param_groups())
        static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
      LlamaTrainingOptions now = o;
      if (o.promote_at > 0) {  // adaptive curriculum: records up to the current cap
        now.max_records = cap;
        now.hold_steps = now.ramp_steps = 0;
      }
      auto batch = MakeKvTrainingBatch(tokenizer, now, o.seed, step);
      auto logits = TrainingForward(params, o.shape, batch.tokens);
      auto loss = torch::nn::functional::cross_entropy(
          logits.view({-1, logits.size(-1)}), batch.targets.view(-1),
          torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnore));
      optimizer->zero_grad();
      loss.backward();
      torch::nn::utils::clip_grad_norm_(all, o.clip);
      optimizer->step();
      LlamaTrainingProgress p;
      p.step = step;
      p.steps = o.steps;
      p.loss = loss.item<double>();
      p.lr = lr;
      p.tokens_per_s = batch.tokens.numel() /
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (o.promote_at > 0 && cap < o.max_records && step % kPromoteEvery == 0 &&
          HeldOutAccuracy(cap, 64, MixSeed(0xCA9, step)) >= o.promote_at)
        ++cap;
      p.records_cap = o.promote_at > 0 ? cap : 0;
      if (o.eval_every > 0 && (step % o.eval_every == 0 || step == o.steps)) {
        p.eval_accuracy = HeldOutAccuracy(o.max_records, o.eval_examples, 0xE7A1);
        if (p.records_cap > 0 && cap < o.max_records)
          p.cap_accuracy = HeldOutAccuracy(cap, o.eval_examples, 0xE7A2);
        p.previous_token_attention = HeldOutPreviousTokenAttention(o.promote_at > 0 ? cap : o.max_records);
      }
      if ((o.checkpoint_every > 0 && step % o.checkpoint_every == 0) || step == o.steps) {
        Save(step);
        // The model so far, servable while training goes on.
        if (!export_dir.empty()) {
          auto status = SaveHfCheckpoint(Snapshot(), export_dir);
          if (!status.ok()) return status;
        }
        p.checkpointed = true;
      }
      if (on_step) on_step(p);
    }
    return Snapshot();
  }

  Checkpoint Snapshot() const {
    Checkpoint ckpt;
    ckpt.config = o.shape;
    for (auto& [name, t] : params) ckpt.tensors[name] = t.detach().clone();
    ckpt.source = state_path;
    return ckpt;
  }
  std::string export_dir;
};

}  // namespace

absl::StatusOr<Checkpoint> TrainLlama(const Tokenizer& tokenizer, const LlamaTrainingOptions& options,
                                      const std::string& state_dir,
                                      const std::function<void(const LlamaTrainingProgress&)>& on_step,
                                      const std::string& export_dir) {
  const auto& c = options.shape;
  auto status = ValidateConfig(c, "training shape");
  if (!status.ok()) return status;
  if (c.vocab_size != tokenizer.vocab_size())
    return absl::InvalidArgumentError(absl::StrCat("vocab ", c.vocab_size, " differs from the tokenizer's ",
                                                   tokenizer.vocab_size()));
  if (options.steps < 1 || options.batch < 1 || options.min_records < 1 ||
      options.max_records < options.min_records || options.max_records > kKvMaxRecords || options.queries < 1)
    return absl::InvalidArgumentError(absl::StrCat(
        "steps, batch, queries and min-records must be >= 1 and min-records <= max-records <= ", kKvMaxRecords));
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot create ", state_dir, ": ", ec.message()));
  Trainer trainer{tokenizer, options, state_dir + "/train_state.pt", state_dir + "/train_state.json",
                  {}, nullptr, 0, export_dir};
  try {
    // Longest training sequence must fit the context.
    LlamaTrainingOptions longest = options;
    longest.min_records = options.max_records;
    auto probe = MakeKvTrainingBatch(tokenizer, longest, options.seed, 0);
    if (probe.tokens.size(1) > c.max_seq_len)
      return absl::InvalidArgumentError(absl::StrCat("examples of ", options.max_records, " records take ",
                                                     probe.tokens.size(1), " tokens, more than the context ",
                                                     c.max_seq_len, ": lower --max-records or raise --context"));
    return trainer.Run(on_step);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("training failed: ", e.what_without_backtrace()));
  }
}

}  // namespace stave
