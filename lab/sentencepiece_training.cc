#include "lab/sentencepiece_training.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/sentencepiece_shim.h"

extern char** environ;

namespace stave {

std::string TrainSentencePiece(const std::vector<std::string>& args, const std::string& working_dir) {
  const std::string exe = NextToExecutable(kSentencePieceTrainerName);
  std::vector<char*> argv{const_cast<char*>(exe.c_str())};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addchdir_np(&actions, working_dir.c_str());
  pid_t pid = 0;
  const int err = posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return "cannot run " + exe + " in " + working_dir + ": " + std::strerror(err);
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return "waiting for " + exe + ": " + std::strerror(errno);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  return exe + " failed (exit status " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) +
         "); its error is printed above";
}

}  // namespace stave
