#include "core/sentencepiece_shim.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace stave {
namespace {

// Next to the running executable (build/bin, or the image's bin dir), unless STAVE_SP_PLUGIN
// names it.
std::string PluginPath() {
  if (const char* env = std::getenv("STAVE_SP_PLUGIN")) return env;
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return kSentencePiecePluginName;
  return (exe.parent_path() / kSentencePiecePluginName).string();
}

}  // namespace

std::unique_ptr<SentencePieceShim> SentencePieceShim::Load(const std::string& path,
                                                           std::string* error) {
  static SentencePieceFactory factory = nullptr;
  static std::string load_error;
  static bool tried = false;
  if (!tried) {
    tried = true;
    const std::string plugin = PluginPath();
    void* handle = dlopen(plugin.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (handle == nullptr) {
      load_error = std::string("cannot load the sentencepiece plugin: ") + dlerror();
    } else {
      factory = reinterpret_cast<SentencePieceFactory>(dlsym(handle, kSentencePieceFactorySymbol));
      if (factory == nullptr) load_error = plugin + " lacks " + kSentencePieceFactorySymbol;
    }
  }
  if (factory == nullptr) {
    *error = load_error;
    return nullptr;
  }
  return std::unique_ptr<SentencePieceShim>(factory(path.c_str(), error));
}

}  // namespace stave
