// stave train-router: train MoICE routers with the model frozen; writes a router checkpoint.
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "client/flags.h"
#include "client/progress.h"
#include "core/compute_threads.h"
#include "core/model.h"
#include "core/position_config.h"
#include "lab/router_training.h"

namespace stave::cli {
namespace {

struct TrainOptions {
  std::string model, tokenizer, data, eval_data, expert_bases, out;
  RouterTrainingOptions train;
  int eval_sequences = 32, threads = 0;
};

absl::Status RunTrain(TrainOptions o) {
  if (auto status = CheckWritable(o.out, "--out"); !status.ok()) return status;  // before training
  ConfigureThreads(o.threads);
  auto bases = ParseBaseList(o.expert_bases, "--expert-bases");
  if (!bases.ok()) return bases.status();
  o.train.expert_bases = *bases;
  auto model = Model::Load(o.model, o.tokenizer);
  if (!model.ok()) return model.status();
  // Plain text (or "text" JSONL) is one token stream scored everywhere; prompt/completion JSONL
  // is separate examples scored on the completion (router_training.h says when that matters).
  const Tokenizer& tokenizer = *(*model)->tokenizer();
  auto data = ReadRouterData(o.data, tokenizer);
  if (!data.ok()) return data.status();
  if (data->scored())
    std::fprintf(stderr, "train-router: %zu prompt/completion examples (scored on completions), %d steps x %d examples\n",
                 data->examples.size(), o.train.steps, o.train.batch * o.train.grad_accum);
  else
    std::fprintf(stderr, "train-router: %zu training tokens, %d steps x %d sequences x %d tokens\n",
                 data->stream.size(), o.train.steps, o.train.batch * o.train.grad_accum, o.train.seq_len);
  const bool evaluate = !o.eval_data.empty();
  RouterData held_out;
  if (evaluate) {
    auto read = ReadRouterData(o.eval_data, tokenizer);
    if (!read.ok()) return read.status();
    held_out = *std::move(read);
  }
  auto held_out_loss = [&](const MoiceRouters& routers) {
    return held_out.scored() ? EvaluateLoss(**model, routers, held_out.examples, o.eval_sequences)
                             : EvaluateLoss(**model, routers, held_out.stream, o.train.seq_len, o.eval_sequences);
  };
  double before = 0;
  if (evaluate) {
    auto untrained = MoiceRouters::Random((*model)->config(), o.train.expert_bases, o.train.top_k, o.train.seed);
    auto loss = held_out_loss(untrained);
    if (!loss.ok()) return loss.status();
    before = *loss;
    std::fprintf(stderr, "held-out loss with untrained routers: %.4f\n", before);
  }
  ProgressBar bar("train-router");
  auto progress = [&bar](const TrainingProgress& p) {
    bar.Update(p.step, p.steps, absl::StrFormat("step %d/%d  loss %.4f  aux %.4f  %.0f tokens/s", p.step,
                                                p.steps, p.loss, p.aux, p.tokens_per_s));
  };
  auto routers = data->scored() ? TrainRouters(**model, data->examples, o.train, progress)
                                : TrainRouters(**model, data->stream, o.train, progress);
  if (!routers.ok()) return routers.status();
  auto status = routers->Save(o.out, (*model)->config());
  if (!status.ok()) return status;
  std::fprintf(stderr, "wrote %s\n", o.out.c_str());
  if (evaluate) {
    auto after = held_out_loss(*routers);
    if (!after.ok()) return after.status();
    std::printf("held-out loss: untrained routers %.4f, trained %.4f\n", before, *after);
  }
  return absl::OkStatus();
}

}  // namespace

void AddTrainRouterCommand(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  auto* cmd = app.add_subcommand("train-router", "train MoICE routers (model frozen)");
  cmd->add_option("--model", o->model, "model to train routers for")->required();
  cmd->add_option("--tokenizer", o->tokenizer, "tokenizer (default: next to the model)");
  cmd->add_option("--data", o->data, "training data: a text file, JSONL with a \"text\" field, or JSONL with \"prompt\" and \"completion\" (scored on the completion)")->required();
  cmd->add_option("--eval-data", o->eval_data, "held-out data (same formats): loss is reported before and after");
  cmd->add_option("--expert-bases", o->expert_bases, "expert RoPE bases, the model's own first")->required();
  cmd->add_option("--top-k", o->train.top_k, "experts mixed per token and head")->required();
  cmd->add_option("--steps", o->train.steps, "optimiser steps")->capture_default_str();
  cmd->add_option("--batch", o->train.batch, "sequences per micro-batch")->capture_default_str();
  cmd->add_option("--grad-accum", o->train.grad_accum, "micro-batches per step")->capture_default_str();
  cmd->add_option("--seq-len", o->train.seq_len, "tokens per sequence (plain text; examples are their own length)")->capture_default_str();
  cmd->add_option("--lr", o->train.lr, "AdamW learning rate (constant)")->capture_default_str();
  cmd->add_option("--aux-coef", o->train.aux_coef, "load-balancing loss coefficient")->capture_default_str();
  cmd->add_option("--seed", o->train.seed, "seed for router init and data order")->capture_default_str();
  cmd->add_option("--eval-sequences", o->eval_sequences, "held-out sequences (or examples) evaluated")->capture_default_str();
  AddThreadsFlag(cmd, o->threads);
  cmd->add_option("--out", o->out, "router checkpoint to write (.safetensors)")->required();
  cmd->callback([o] { CommandStatus() = RunTrain(*o); });
}

}  // namespace stave::cli
