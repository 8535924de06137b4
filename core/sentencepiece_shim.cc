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

// The plugin, opened once; nullptr and *error set when it cannot be loaded.
void* PluginHandle(std::string* error) {
  static std::string load_error;
  static void* handle = [] {
    const std::string plugin = PluginPath();
    void* h = dlopen(plugin.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (h == nullptr) load_error = std::string("cannot load the sentencepiece plugin: ") + dlerror();
    return h;
  }();
  if (handle == nullptr) *error = load_error;
  return handle;
}

template <typename Fn>
Fn PluginSymbol(const char* name, std::string* error) {
  void* handle = PluginHandle(error);
  if (handle == nullptr) return nullptr;
  auto fn = reinterpret_cast<Fn>(dlsym(handle, name));
  if (fn == nullptr) *error = PluginPath() + " lacks " + name;
  return fn;
}

}  // namespace

std::unique_ptr<SentencePieceShim> SentencePieceShim::Load(const std::string& path,
                                                           std::string* error) {
  auto factory = PluginSymbol<SentencePieceFactory>(kSentencePieceFactorySymbol, error);
  if (factory == nullptr) return nullptr;
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
