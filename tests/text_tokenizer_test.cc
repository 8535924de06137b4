#include <gtest/gtest.h>
#include "core/text/gguf_tokenizer.h"
