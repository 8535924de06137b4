#include "core/text/gguf_tokenizer.h"
