// libsentencepiece behind a plain-std, virtual-only interface, implemented in a plugin library
// (libstave_sentencepiece.so) that is dlopen()ed with RTLD_LOCAL | RTLD_DEEPBIND.
//
// Why: Debian's libsentencepiece bundles its own protobuf-lite and exports those symbols, while
// LibTorch (and later gRPC) load the system libprotobuf. Linked into one program, the two
// interpose each other and libprotobuf crashes in its static initialisers. Kept in a deep-bound
// local scope, sentencepiece uses its own copy and nothing else sees it. Calls go through the
// vtable, so no symbol of the plugin but the factory is looked up. (Its header also declares
// `namespace absl { using std::string_view; }`, clashing with Abseil: only the plugin includes it.)
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

// The sanitizer runtimes refuse dlopen(RTLD_DEEPBIND) (ASan dies in its dlopen interceptor), and
// loading the plugin without it is not safe (the protobuf interposition above). So sanitizer
// builds (`make sanitize`) have no SentencePiece: Load answers an error saying so, and the tests
// of SentencePiece models skip on kSentencePieceAvailable.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define STAVE_SENTENCEPIECE_UNAVAILABLE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define STAVE_SENTENCEPIECE_UNAVAILABLE 1
#endif
#endif

namespace stave {

#ifdef STAVE_SENTENCEPIECE_UNAVAILABLE
inline constexpr bool kSentencePieceAvailable = false;
#else
inline constexpr bool kSentencePieceAvailable = true;
#endif

class SentencePieceShim {
 public:
  // nullptr and *error set when the plugin or the model cannot be loaded.
  static std::unique_ptr<SentencePieceShim> Load(const std::string& path, std::string* error);
  virtual ~SentencePieceShim() = default;

  virtual std::vector<int> Encode(std::string_view text) const = 0;
  virtual int piece_size() const = 0;
  virtual int bos_id() const = 0;
  virtual bool is_control(int id) const = 0;
  virtual bool is_unknown(int id) const = 0;
  virtual bool is_byte(int id) const = 0;
  virtual std::string id_to_piece(int id) const = 0;
  virtual float score(int id) const = 0;
};

// `name` in the running executable's directory (build/bin, or the image's bin dir): where the
// plugin and lab/'s trainer program are found.
std::string NextToExecutable(const std::string& name);

// The plugin's one exported symbol.
extern "C" typedef SentencePieceShim* (*SentencePieceFactory)(const char* path, std::string* error);
inline constexpr char kSentencePieceFactorySymbol[] = "stave_sentencepiece_load";

inline constexpr char kSentencePiecePluginName[] = "libstave_sentencepiece.so";

}  // namespace stave
