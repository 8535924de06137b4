#include "core/sentencepiece_shim.h"

#include <dlfcn.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

extern char** environ;

namespace stave {
namespace {

// `name` in the running executable's directory (build/bin, or the image's bin dir).
std::string NextToExecutable(const std::string& name) {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return name;
  return (exe.parent_path() / name).string();
}

// The plugin, unless STAVE_SP_PLUGIN names it.
std::string PluginPath() {
  if (const char* env = std::getenv("STAVE_SP_PLUGIN")) return env;
  return NextToExecutable(kSentencePiecePluginName);
}

}  // namespace

std::unique_ptr<SentencePieceShim> SentencePieceShim::Load(const std::string& path,
                                                           std::string* error) {
  // The plugin is opened and its factory looked up once.
  static std::string load_error;
  static SentencePieceFactory factory = [] {
    if (!kSentencePieceAvailable) {
      load_error = "SentencePiece is not available in sanitizer builds: its plugin needs "
                   "dlopen(RTLD_DEEPBIND), which the sanitizer runtime refuses (see sentencepiece_shim.h)";
      return SentencePieceFactory{nullptr};
    }
    const std::string plugin = PluginPath();
    void* handle = dlopen(plugin.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (handle == nullptr) {
      load_error = std::string("cannot load the sentencepiece plugin: ") + dlerror();
      return SentencePieceFactory{nullptr};
    }
    auto found = reinterpret_cast<SentencePieceFactory>(dlsym(handle, kSentencePieceFactorySymbol));
    if (found == nullptr) load_error = plugin + " lacks " + kSentencePieceFactorySymbol;
    return found;
  }();
  if (factory == nullptr) {
    *error = load_error;
    return nullptr;
  }
  return std::unique_ptr<SentencePieceShim>(factory(path.c_str(), error));
}

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
