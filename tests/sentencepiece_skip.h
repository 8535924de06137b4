// Skips a test that needs a SentencePiece model (tokenizer.model) in sanitizer builds, where the
// SentencePiece plugin cannot be loaded (it needs dlopen(RTLD_DEEPBIND); see
// core/sentencepiece_shim.h). Normal builds run these tests as always.
#pragma once

#include <gtest/gtest.h>

#include "core/sentencepiece_shim.h"

#define SKIP_UNLESS_SENTENCEPIECE()                                                                    \
  do {                                                                                                 \
    if (!::stave::kSentencePieceAvailable)                                                             \
      GTEST_SKIP() << "SentencePiece is not available in sanitizer builds (its plugin needs "          \
                      "dlopen(RTLD_DEEPBIND), which the sanitizer runtime refuses)";                    \
  } while (0)
