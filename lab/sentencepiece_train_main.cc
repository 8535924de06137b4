// stave_spm_train: libsentencepiece's trainer, run by `stave train` in a child process (see
// TrainSentencePiece in lab/sentencepiece_training.h). Arguments are the trainer's own flags.
#include <sentencepiece_trainer.h>

#include <iostream>
#include <string>
#include <unordered_map>

int main(int argc, char** argv) {
  // "--name=value" arguments as a map (paths may contain spaces).
  std::unordered_map<std::string, std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const auto eq = a.find('=');
    if (a.rfind("--", 0) != 0 || eq == std::string::npos) {
      std::cerr << "stave_spm_train: expected --name=value, got " << a << "\n";
      return 2;
    }
    args[a.substr(2, eq - 2)] = a.substr(eq + 1);
  }
  auto status = sentencepiece::SentencePieceTrainer::Train(args);
  if (!status.ok()) {
    std::cerr << "stave_spm_train: " << status.ToString() << "\n";
    return 1;
  }
  return 0;
}
