#include "core/compute_threads.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <ATen/Parallel.h>

namespace stave {

void ReexecWithShortOpenMpSpin(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr) return;
  // The resolved path, not /proc/self/exe itself: the process name (ps, pgrep, top) comes from the
  // executed file's name and would read "exe".
  std::error_code ec;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec || self.empty()) return;
  if (setenv("GOMP_SPINCOUNT", std::to_string(kOpenMpSpinCount).c_str(), 1) != 0) return;
  execv(self.c_str(), argv);
  // exec failed (no /proc, say): run on with libgomp's defaults; the variable set above keeps a
  // child process from trying again.
}

namespace {

// cgroup v2 "cpu.max": "max 100000" (no limit) or "QUOTA PERIOD"; 0 when unlimited or unknown.
int CgroupCpuLimit() {
  std::ifstream in("/sys/fs/cgroup/cpu.max");
  std::string quota;
  double period = 0;
  if (!(in >> quota >> period) || quota == "max" || period <= 0) return 0;
  const double cpus = std::atof(quota.c_str()) / period;
  return cpus > 0 ? std::max(1, static_cast<int>(std::ceil(cpus))) : 0;
}

}  // namespace

int UsableCpus() {
  int cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cpus = std::max(1, CPU_COUNT(&set));
  const int limit = CgroupCpuLimit();
  return limit > 0 ? std::min(cpus, limit) : cpus;
}

int64_t ApproxParameters(const ModelConfig& c) {
  const int64_t dim = c.dim, kv_dim = c.n_heads > 0 ? int64_t{c.dim} / c.n_heads * c.n_kv_heads : dim;
  const int64_t per_layer = dim * dim * 2 + dim * kv_dim * 2 + dim * int64_t{c.hidden_dim} * 3;
  return per_layer * c.n_layers + int64_t{c.vocab_size} * dim * 2;
}

int AutoThreads(const ModelConfig& config) {
  return ApproxParameters(config) < kParallelMinParameters ? 1 : UsableCpus();
}

void ConfigureThreads(int threads) { at::set_num_threads(threads > 0 ? threads : UsableCpus()); }

int ConfigureThreadsFor(int requested, const ModelConfig& config) {
  const int threads = requested > 0 ? requested : AutoThreads(config);
  at::set_num_threads(threads);
  return threads;
}

}  // namespace stave
