// FUZZ_CHECK: an invariant a parser promises on success (e.g. every tensor lies inside the file).
// A violation aborts, which libFuzzer reports as a crash with the input that caused it, and which
// fails the replay test.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                   \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)
