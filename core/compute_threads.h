// How many threads a forward pass uses and how they wait for each other: the two choices that
// decide whether a busy neighbour on the same cores costs its fair share or collapses decode.
//
// Measured (docs/benchmarks.md, "Shared cores"): with GNU OpenMP's default spin-wait, a 110M
// model decoding on 2 threads next to two busy processes fell from ~70-87 to 2.4 tokens/s,
// because every barrier spins out its time slice waiting for a thread that is not running.
// Capping the spin (GOMP_SPINCOUNT) before blocking keeps idle speed and turns that into a
// proportional share. Models so small that one op lasts microseconds run faster on one thread.
#pragma once

#include <cstdint>

#include "core/model_config.h"

namespace stave {

// libgomp reads its wait policy once, when it is loaded (before main), so the only way to set it
// for this process is to run it again with the variable set. Unless the user chose a policy
// (OMP_WAIT_POLICY or GOMP_SPINCOUNT in the environment), sets GOMP_SPINCOUNT to
// kOpenMpSpinCount and re-executes its own executable with the same arguments; returns only if it
// did not re-execute (policy already chosen, or exec failed: then the process runs as before).
// Call first thing in main().
inline constexpr int kOpenMpSpinCount = 1000;
void ReexecWithShortOpenMpSpin(char** argv);

// CPUs this process may run on: its affinity mask, capped by a cgroup v2 CPU quota (a container
// limited to 2 CPUs on a 64-core node gets 2).
int UsableCpus();

// Below this many weights one matrix product lasts microseconds, and splitting it over threads
// costs more in fork/join than it saves (stories260K: 1 thread decodes ~25% faster than 2).
inline constexpr int64_t kParallelMinParameters = 4'000'000;
// The approximate weight count of a model of this shape (embeddings, attention, MLP, head).
int64_t ApproxParameters(const ModelConfig& config);
// The thread count --threads 0 means for a model: 1 below kParallelMinParameters, else
// UsableCpus().
int AutoThreads(const ModelConfig& config);

// Sets LibTorch's intra-op thread count (it defaults to 1 here); 0 = UsableCpus().
void ConfigureThreads(int threads);
// Once the model is known: `requested` threads, or AutoThreads(config) for 0; returns the count set.
int ConfigureThreadsFor(int requested, const ModelConfig& config);

}  // namespace stave
