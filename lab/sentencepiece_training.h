// Training a SentencePiece tokenizer (stave train), with libsentencepiece's trainer run as its own
// program, stave_spm_train (lab/sentencepiece_train_main.cc).
#pragma once

#include <string>
#include <vector>

namespace stave {

// Trains a SentencePiece model with libsentencepiece's trainer. `args` is its command-line form
// ("--input=... --model_prefix=... --vocab_size=..."). Empty string on success, else the error.
//
// The trainer runs in a child process (stave_spm_train, next to the executable): it writes to
// std::cerr, and inside the deep-bound plugin (core/sentencepiece_shim.h) that is libstdc++'s own,
// never initialised copy of the stream (the executable holds the live one), which crashes.
// It runs in `working_dir`, against which relative paths in `args` resolve.
std::string TrainSentencePiece(const std::vector<std::string>& args, const std::string& working_dir);
inline constexpr char kSentencePieceTrainerName[] = "stave_spm_train";

}  // namespace stave
