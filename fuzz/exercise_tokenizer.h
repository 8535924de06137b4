// What both tokenizer fuzz targets do with a tokenizer that loaded: encode fixed texts (ASCII,
// multi-byte UTF-8, invalid UTF-8, whitespace runs, digits, a special-token spelling) plus `extra`
// with and without BOS, then decode every id; every id must lie inside the vocabulary.
#pragma once

#include <initializer_list>
#include <string_view>

#include "core/tokenizer.h"
#include "fuzz/fuzz_check.h"

inline void ExerciseTokenizer(const stave::Tokenizer& tok, std::string_view extra) {
  const int vocab = tok.vocab_size();
  FUZZ_CHECK(vocab > 0);
  for (std::string_view text : {std::string_view("Hello world, it's 2024!  \n\tok <|endoftext|>"),
                                std::string_view("\xc3\xa9t\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80"),
                                std::string_view("\xff\xfe\x80 bad\xc3"), std::string_view(""), extra}) {
    for (bool bos : {false, true}) {
      int prev = -1;
      for (int id : tok.Encode(text, bos)) {
        FUZZ_CHECK(id >= 0 && id < vocab);
        (void)tok.DecodeToken(prev, id);
        prev = id;
      }
    }
  }
}
