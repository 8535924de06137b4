#include "core/sentencepiece_shim.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>

namespace stave {

std::string NextToExecutable(const std::string& name) {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return name;
  return (exe.parent_path() / name).string();
}

namespace {

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

}  // namespace stave
