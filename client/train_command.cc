// stave train: trains a small Llama from scratch on generated key-value retrieval data (see
// core/kv_retrieval.h) and writes it as a Hugging Face directory with its own SentencePiece
// tokenizer. This is how models/default was made (its README has the exact command).
#include <malloc.h>

#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "client/commands.h"
#include "client/flags.h"
#include "client/progress.h"
#include "core/compute_threads.h"
#include "core/hf_checkpoint.h"
#include "lab/kv_retrieval.h"
#include "lab/llama_training.h"
#include "core/model.h"
#include "lab/sentencepiece_training.h"
#include "core/tokenizer.h"
#include "nlohmann/json.hpp"

namespace stave::cli {
namespace {

struct TrainOptions {
  std::string out, tokenizer, write_corpus;
  int tokenizer_examples = 20000, threads = 0;
  LlamaTrainingOptions train;
};

// SentencePiece reads list flags as CSV: each field quoted, its quotes doubled (the key pieces
// contain quotes).
std::string SentencePieceCsv(const std::vector<std::string>& fields) {
  std::vector<std::string> quoted;
  for (const auto& f : fields) quoted.push_back("\"" + absl::StrReplaceAll(f, {{"\"", "\"\""}}) + "\"");
  return absl::StrJoin(quoted, ",");
}

// Trains the SentencePiece model on a generated corpus, unless one is given or already there
// (a resumed run).
absl::StatusOr<std::string> EnsureTokenizer(const TrainOptions& o) {
  if (!o.tokenizer.empty()) return o.tokenizer;
  const std::string path = o.out + "/tokenizer.model";
  if (std::filesystem::exists(path)) {
    std::fprintf(stderr, "train: using %s\n", path.c_str());
    return path;
  }
  const std::string corpus_path = o.out + "/training/tokenizer_corpus.txt";
  {
    std::ofstream corpus(corpus_path);
    corpus << KvRetrievalCorpus(o.tokenizer_examples, o.train.min_records, o.train.max_records,
                                MixSeed(o.train.seed, 0x70C));
    if (!corpus) return absl::PermissionDeniedError(absl::StrCat("cannot write ", corpus_path));
  }
  std::fprintf(stderr, "train: training a %d-piece SentencePiece tokenizer on %d examples\n",
               o.train.shape.vocab_size, o.tokenizer_examples);
  // Identity normalisation and no dummy prefix: the text round-trips exactly and an answer
  // encoded on its own is tokenized as it is generated after the prompt. One thread: the trainer
  // is then deterministic. Pieces may span spaces; keys with their separator and values are
  // fixed pieces (KvTokenizerSymbols). Run inside --out with relative paths, because the model file records
  // its input and output paths: the same command then writes the same bytes wherever --out is.
  const std::string error = TrainSentencePiece(
      {"--input=training/tokenizer_corpus.txt", "--model_prefix=tokenizer",
       absl::StrCat("--vocab_size=", o.train.shape.vocab_size), "--model_type=unigram",
       "--character_coverage=1.0", "--normalization_rule_name=identity", "--add_dummy_prefix=false",
       "--remove_extra_whitespaces=false", "--byte_fallback=true", "--unk_id=0", "--bos_id=1",
       "--eos_id=2", "--pad_id=-1", "--num_threads=1", "--minloglevel=2",
       // --vocab is an upper bound: the corpus may not support that many pieces.
       "--hard_vocab_limit=false", "--split_by_whitespace=false",
       "--user_defined_symbols=" + SentencePieceCsv(KvTokenizerSymbols())},
      o.out);
  if (!error.empty()) return absl::InternalError(absl::StrCat("tokenizer training: ", error));
  std::filesystem::remove(o.out + "/tokenizer.vocab");
  return path;
}

// --write-corpus: generated examples (data for stave train-router), nothing trained. As text, or
// for a .jsonl path as one-query prompt/completion pairs (train-router then scores the answers
// only).
absl::Status WriteCorpus(const TrainOptions& o) {
  if (o.train.min_records < 1 || o.train.min_records > o.train.max_records || o.train.max_records > kKvMaxRecords)
    return absl::InvalidArgumentError(absl::StrCat("need 1 <= --min-records <= --max-records <= ", kKvMaxRecords));
  std::ofstream out(o.write_corpus);
  if (absl::EndsWith(o.write_corpus, ".jsonl")) {
    for (int i = 0; i < o.tokenizer_examples; ++i) {
      auto ex = RandomKvRetrievalExample(o.train.min_records, o.train.max_records, 1, MixSeed(o.train.seed, 0xC0, i));
      out << nlohmann::json{{"prompt", ex.prompt}, {"completion", ex.answers[0]}}.dump() << "\n";
    }
  } else {
    out << KvRetrievalCorpus(o.tokenizer_examples, o.train.min_records, o.train.max_records,
                             MixSeed(o.train.seed, 0xC0));
  }
  if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", o.write_corpus));
  std::fprintf(stderr, "train: wrote %d examples to %s\n", o.tokenizer_examples, o.write_corpus.c_str());
  return absl::OkStatus();
}

absl::Status RunTrain(TrainOptions o) {
  if (!o.write_corpus.empty()) return WriteCorpus(o);
  ConfigureThreads(o.threads);
  // Every step allocates the same large activations (attention scores are tens of MB). By
  // default glibc serves those with fresh mmaps and returns them at free, so each step spends
  // most of its time in the kernel zeroing pages (measured: 100 % system time, ~25 % slower).
  // Keep them on the heap and keep the heap.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
  std::error_code ec;
  std::filesystem::create_directories(o.out + "/training", ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot create ", o.out, ": ", ec.message()));
  auto tokenizer_path = EnsureTokenizer(o);
  if (!tokenizer_path.ok()) return tokenizer_path.status();
  auto tokenizer = LoadTokenizer(*tokenizer_path);
  if (!tokenizer.ok()) return tokenizer.status();
  o.train.shape.vocab_size = (*tokenizer)->vocab_size();
  if (*tokenizer_path != o.out + "/tokenizer.model")
    std::filesystem::copy_file(*tokenizer_path, o.out + "/tokenizer.model",
                               std::filesystem::copy_options::overwrite_existing);

  auto& shape = o.train.shape;
  shape.n_kv_heads = shape.n_heads;
  shape.tied_embeddings = true;
  shape.format = CheckpointFormat::kHuggingFace;
  const int64_t params = static_cast<int64_t>(shape.vocab_size) * shape.dim +
                         static_cast<int64_t>(shape.n_layers) *
                             (4LL * shape.dim * shape.dim + 3LL * shape.dim * shape.hidden_dim + 2 * shape.dim) +
                         shape.dim;
  std::fprintf(stderr, "train: %s, %.2fM parameters, %d steps x %d examples of %d-%d records\n",
               shape.ToString().c_str(), params / 1e6, o.train.steps, o.train.batch,
               o.train.min_records, o.train.max_records);
  const auto start = std::chrono::steady_clock::now();
  ProgressBar bar("train");
  auto ckpt = TrainLlama(**tokenizer, o.train, o.out + "/training", [&](const LlamaTrainingProgress& p) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::string line = absl::StrFormat("step %d/%d  loss %.4f  lr %.2g  %.0f tok/s  %.0f s", p.step, p.steps,
                                       p.loss, p.lr, p.tokens_per_s, elapsed);
    if (p.records_cap > 0) absl::StrAppend(&line, "  records <= ", p.records_cap);
    // Held-out results and checkpoints get a line of their own (kept in a log too).
    if (p.eval_accuracy >= 0) {
      absl::StrAppend(&line, absl::StrFormat("  held-out exact match %.1f%% at %d records", 100 * p.eval_accuracy,
                                             o.train.max_records));
      if (p.cap_accuracy >= 0)
        absl::StrAppend(&line, absl::StrFormat(", %.1f%% at %d", 100 * p.cap_accuracy, p.records_cap));
      if (!p.previous_token_attention.empty()) {
        absl::StrAppend(&line, "; previous-token attention by layer");
        for (double a : p.previous_token_attention) absl::StrAppend(&line, absl::StrFormat(" %.2f", a));
      }
    }
    if (p.checkpointed) absl::StrAppend(&line, "  (checkpoint saved)");
    if (p.eval_accuracy >= 0 || p.checkpointed) {
      bar.Note(absl::StrCat("train: ", line));
    } else {
      bar.Update(p.step, p.steps, line);
    }
  }, o.out);
  if (!ckpt.ok()) return ckpt.status();
  auto status = SaveHfCheckpoint(*ckpt, o.out);
  if (!status.ok()) return status;
  std::printf("wrote %s (config.json, model.safetensors, tokenizer.model)\n", o.out.c_str());
  return absl::OkStatus();
}

}  // namespace

void AddTrainCommand(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  // Defaults: the recipe that made models/default (its README has the command), except the
  // seed. Measured there: held-out exact match at 12 records 80 % by step 1250, 100 % by 4500.
  auto& s = o->train.shape;
  s.dim = 128;
  s.hidden_dim = 384;
  s.n_layers = 2;
  s.n_heads = 4;
  s.vocab_size = 512;
  s.max_seq_len = 1024;
  auto& t = o->train;
  t.steps = 12000;
  t.batch = 32;
  t.lr = 1e-3;
  t.min_records = 8;
  t.max_records = 12;
  t.hold_steps = 0;
  t.ramp_steps = 0;
  t.queries = 12;
  t.copy_fraction = 0;
  t.checkpoint_every = 500;
  t.eval_every = 250;
  auto* cmd = app.add_subcommand("train", "train a small Llama from scratch on key-value retrieval");
  auto* out = cmd->add_option("--out", o->out, "output directory (HF layout); holds the resumable training state");
  cmd->add_option("--write-corpus", o->write_corpus,
                  "only write --tokenizer-examples generated examples to this file (data for train-router): text, or prompt/completion JSONL for a .jsonl path")
      ->excludes(out);
  cmd->add_option("--tokenizer", o->tokenizer, "an existing SentencePiece model (default: train one)");
  cmd->add_option("--tokenizer-examples", o->tokenizer_examples, "examples in the tokenizer corpus")->capture_default_str();
  cmd->add_option("--dim", s.dim, "model width")->capture_default_str();
  cmd->add_option("--hidden", s.hidden_dim, "SwiGLU width")->capture_default_str();
  cmd->add_option("--layers", s.n_layers, "layers")->capture_default_str();
  cmd->add_option("--heads", s.n_heads, "attention heads")->capture_default_str();
  cmd->add_option("--vocab", s.vocab_size, "most tokenizer pieces (256 are byte fallbacks)")->capture_default_str();
  cmd->add_option("--context", s.max_seq_len, "context length written to config.json")->capture_default_str();
  cmd->add_option("--theta", s.rope_theta, "RoPE base")->capture_default_str();
  cmd->add_option("--steps", o->train.steps, "optimiser steps")->capture_default_str();
  cmd->add_option("--batch", o->train.batch, "examples per step")->capture_default_str();
  cmd->add_option("--lr", o->train.lr, "peak learning rate")->capture_default_str();
  cmd->add_option("--warmup", o->train.warmup, "warm-up steps")->capture_default_str();
  cmd->add_option("--weight-decay", o->train.weight_decay, "AdamW weight decay (matrices only)")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--min-records", o->train.min_records, "fewest records per example")->capture_default_str();
  cmd->add_option("--max-records", o->train.max_records, "most records per example")->capture_default_str();
  cmd->add_option("--queries", o->train.queries, "queries per training example")->capture_default_str();
  cmd->add_option("--hold-steps", o->train.hold_steps, "first steps with --min-records records only")->capture_default_str();
  cmd->add_option("--ramp-steps", o->train.ramp_steps, "then steps over which the most records per example grows to --max-records")->capture_default_str();
  cmd->add_flag("--loss-on-all,!--loss-on-answers", o->train.loss_on_all, "next-token loss on every position (default: answers only)");
  cmd->add_option("--promote-at", o->train.promote_at, "adaptive curriculum: one record more once held-out exact match reaches this (0 = off)")->capture_default_str();
  cmd->add_option("--reverse-fraction", o->train.reverse_fraction,
                  "share of later queries asked in reverse (value -> key): teaches the attention retrieval needs")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--shared-embedding", o->train.shared_embedding,
                  "a random vector in every token's initial embedding, this many times the 0.02 std (helps positional attention form)")
      ->check(CLI::Range(0.0, 100.0))
      ->capture_default_str();
  cmd->add_flag("--previous-token-head,!--no-previous-token-head", o->train.previous_token_head,
               "plant a previous-token head at initialisation (layer 0, head 0; trained like the rest): retrieval's first half, which training from random weights did not find here")
      ->capture_default_str();
  cmd->add_option("--copy-fraction", o->train.copy_fraction, "share of copying-task examples (teach matching and copying)")->capture_default_str();
  cmd->add_option("--checkpoint-every", o->train.checkpoint_every, "steps between saved states")->capture_default_str();
  cmd->add_option("--eval-every", o->train.eval_every, "steps between held-out checks")->capture_default_str();
  cmd->add_option("--seed", o->train.seed, "seed for weights, data and tokenizer corpus")->capture_default_str();
  AddThreadsFlag(cmd, o->threads);
  cmd->callback([o, out] {
    CommandStatus() = out->count() == 0 && o->write_corpus.empty()
                          ? absl::InvalidArgumentError("give --out DIR (or --write-corpus FILE)")
                          : RunTrain(*o);
  });
}

}  // namespace stave::cli
