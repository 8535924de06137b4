// stave::quant::Matmul against the engine's fp32 products on the 110M model's shapes: per token,
// the 12 layers' projections (qkv [2304, 768], wo [768, 768], w1|w3 [4096, 768], w2 [768, 2048])
// plus the classifier [32000, 768], each layer with its own weights (1.3 GB in all, so decode
// reads them from memory as the engine does). fp32 baseline as core/linear.cc does it: at::mv for
// one row, stave::kernels::SmallBatchMatmul for 2-64 rows, at::mm (OpenBLAS) beyond.
//
//   build/bin/stave_quant_matmul_bench [--reps N] [--rows 1,16,64,128] [--levels] [--alt]
//
// Prints ms per token (time of one step over all matrices / rows) and speed-up vs fp32 (fp32 time
// / type time, measured in the same run), medians of N repetitions; 2 intra-op threads.
// --levels adds the table for every instruction-set level the CPU has (internal::Isa);
// --alt adds the measurement behind quant_matmul.cc's choice of activations for decode: Matmul
// against a decode product written here with fp32 activations and the weights widened to fp32 in
// registers. Matmul uses int8 activations for Q4_0; for Q8_0 decode it adopted this fp32 scheme
// after this comparison (figures in quant_matmul.cc), so the Q8_0 line now compares two
// fp32-activation kernels.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/quant/quant.h"
#include "core/quant/quant_internal.h"
#include "core/small_batch_matmul.h"

namespace {

using stave::quant::WeightType;
namespace qi = stave::quant::internal;

struct Shape {
  int64_t n, d;
};
constexpr int kLayers = 12;
const Shape kLayerShapes[] = {{2304, 768}, {768, 768}, {4096, 768}, {768, 2048}};
const Shape kClassifier = {32000, 768};

struct Matrix {
  Shape s;
  std::vector<float> f32;
  std::vector<uint8_t> q[5];  // by WeightType
};

std::vector<Matrix> MakeModel() {
  std::vector<Matrix> m;
  uint32_t seed = 12345;
  auto next = [&] {
    seed = seed * 1664525u + 1013904223u;
    return (static_cast<float>(seed >> 8) / 16777216.0f - 0.5f) * 0.04f;
  };
  auto add = [&](Shape s) {
    Matrix mat{s, std::vector<float>(s.n * s.d), {}};
    for (auto& v : mat.f32) v = next();
    for (WeightType t : {WeightType::kF16, WeightType::kBF16, WeightType::kQ8_0, WeightType::kQ4_0}) {
      auto& q = mat.q[static_cast<int>(t)];
      q.resize(stave::quant::RowBytes(t, s.d) * s.n);
      stave::quant::QuantizeRows(t, mat.f32.data(), q.data(), s.n, s.d);
    }
    m.push_back(std::move(mat));
  };
  for (int l = 0; l < kLayers; ++l)
    for (Shape s : kLayerShapes) add(s);
  add(kClassifier);
  return m;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median seconds of one step (all matrices) over reps, after one warm-up step.
double Time(const std::function<void()>& step, int reps) {
  step();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return Median(t);
}

// Seconds of each step per repetition, the steps run in turn within a repetition (one warm-up).
std::vector<std::vector<double>> TimeInterleaved(const std::vector<std::function<void()>>& steps,
                                                 int reps) {
  for (const auto& s : steps) s();
  std::vector<std::vector<double>> t(steps.size());
  for (int r = 0; r < reps; ++r)
    for (size_t k = 0; k < steps.size(); ++k) {
      const auto t0 = std::chrono::steady_clock::now();
      steps[k]();
      t[k].push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  return t;
}

struct Buffers {
  std::vector<float> x768, x2048, out;
  explicit Buffers(int64_t rows)
      : x768(rows * 768), x2048(rows * 2048), out(rows * kClassifier.n) {
    for (size_t i = 0; i < x768.size(); ++i) x768[i] = 0.01f * static_cast<float>(i % 97) - 0.4f;
    for (size_t i = 0; i < x2048.size(); ++i) x2048[i] = 0.01f * static_cast<float>(i % 89) - 0.4f;
  }
  float* X(int64_t d) { return d == 768 ? x768.data() : x2048.data(); }
};

void Fp32Step(std::vector<Matrix>& model, Buffers& b, int64_t rows) {
  for (auto& m : model) {
    float* x = b.X(m.s.d);
    if (rows == 1) {
      auto w = at::from_blob(m.f32.data(), {m.s.n, m.s.d});
      auto xv = at::from_blob(x, {m.s.d});
      auto o = at::from_blob(b.out.data(), {m.s.n});
      at::mv_out(o, w, xv);
    } else if (rows <= stave::kernels::kSmallBatchMaxRows) {
      stave::kernels::SmallBatchMatmul(x, m.f32.data(), b.out.data(), rows, m.s.n, m.s.d, false);
    } else {
      auto w = at::from_blob(m.f32.data(), {m.s.n, m.s.d});
      auto xm = at::from_blob(x, {rows, m.s.d});
      auto o = at::from_blob(b.out.data(), {rows, m.s.n});
      at::mm_out(o, xm, w.t());
    }
  }
}

void QuantStep(std::vector<Matrix>& model, Buffers& b, int64_t rows, WeightType t) {
  for (auto& m : model) {
    const void* w = t == WeightType::kF32 ? static_cast<const void*>(m.f32.data())
                                          : m.q[static_cast<int>(t)].data();
    stave::quant::Matmul(t, w, m.s.n, m.s.d, b.X(m.s.d), rows, b.out.data(), false);
  }
}

// GCC 12's _mm512_reduce_add_ps trips -Wmaybe-uninitialized inside its own header (bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// --alt: decode (one row) of Q8_0/Q4_0 keeping fp32 activations: each block's weights widened to
// fp32 in registers (vpmovsxbd / nibble unpack + vcvtdq2ps), two FMAs per 32 weights into a block
// sum, one FMA to scale it by d. AVX-512; same threading as Matmul.
__attribute__((target("avx512f,avx512bw,avx512vl,f16c,fma"))) void AltDecodeRows(
    WeightType t, const uint8_t* w, int64_t i0, int64_t i1, int64_t d, const float* x, float* out) {
  const int64_t nblk = d / 32;
  const size_t rb = stave::quant::RowBytes(t, d);
  for (int64_t i = i0; i < i1; ++i) {
    const uint8_t* row = w + i * rb;
    __m512 acc = _mm512_setzero_ps();
    for (int64_t k = 0; k < nblk; ++k) {
      // The same prefetch distance as Matmul's kernels (8 rows ahead), for a fair comparison.
      _mm_prefetch(reinterpret_cast<const char*>(row + 8 * rb + k * (t == WeightType::kQ8_0 ? 34 : 18)), _MM_HINT_T0);
      __m512 lo, hi;
      float dw;
      if (t == WeightType::kQ8_0) {
        const auto* blk = reinterpret_cast<const qi::BlockQ8_0*>(row) + k;
        lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->qs))));
        hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->qs + 16))));
        dw = _cvtsh_ss(blk->d);
      } else {
        const auto* blk = reinterpret_cast<const qi::BlockQ4_0*>(row) + k;
        const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->qs)));
        const __m512i eight = _mm512_set1_epi32(8), m4 = _mm512_set1_epi32(15);
        lo = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_and_si512(b, m4), eight));
        hi = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(b, 4), eight));
        dw = _cvtsh_ss(blk->d);
      }
      __m512 s = _mm512_mul_ps(lo, _mm512_loadu_ps(x + k * 32));
      s = _mm512_fmadd_ps(hi, _mm512_loadu_ps(x + k * 32 + 16), s);
      acc = _mm512_fmadd_ps(s, _mm512_set1_ps(dw), acc);
    }
    out[i] = _mm512_reduce_add_ps(acc);
  }
}

void AltStep(std::vector<Matrix>& model, Buffers& b, WeightType t) {
  for (auto& m : model) {
    const uint8_t* w = m.q[static_cast<int>(t)].data();
    const float* x = b.X(m.s.d);
    const int64_t n = m.s.n, d = m.s.d;
    at::parallel_for(0, n, std::max<int64_t>(64, (1 << 16) / d), [&](int64_t lo, int64_t hi) {
      AltDecodeRows(t, w, lo, hi, d, x, b.out.data());
    });
  }
}

std::string LoadAverage() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

std::string CpuModel() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 7, threads = 2;
  bool levels = false, alt = false;
  std::vector<int64_t> row_counts = {1, 16, 64, 128};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (a == "--rows" && i + 1 < argc) {
      row_counts.clear();
      for (char* p = argv[++i]; *p;) {
        row_counts.push_back(std::strtol(p, &p, 10));
        if (*p == ',') ++p;
      }
    } else if (a == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (a == "--levels") {
      levels = true;
    } else if (a == "--alt") {
      alt = true;
    } else {
      std::fprintf(stderr, "usage: %s [--reps N] [--threads T] [--rows 1,16,64,128] [--levels] [--alt]\n", argv[0]);
      return 2;
    }
  }
  at::set_num_threads(threads);
  std::printf("CPU: %s, %d intra-op threads, detected level %s, load average %s\n",
              CpuModel().c_str(), at::get_num_threads(), qi::IsaName(qi::DetectedIsa()),
              LoadAverage().c_str());
  std::printf("building the 110M shapes (12 layers + classifier, 109.5 M weights per type)...\n");
  auto model = MakeModel();

  const WeightType types[] = {WeightType::kF32, WeightType::kF16, WeightType::kBF16,
                              WeightType::kQ8_0, WeightType::kQ4_0};
  std::vector<qi::Isa> isas = {qi::DetectedIsa()};
  if (levels)
    for (int l = static_cast<int>(qi::DetectedIsa()) - 1; l >= 0; --l) isas.push_back(static_cast<qi::Isa>(l));
  for (qi::Isa isa : isas) {
    qi::SetIsaForTesting(isa);
    std::printf("\nlevel %s: ms per token (speed-up vs the engine's fp32 path), median of %d\n",
                qi::IsaName(isa), reps);
    std::printf("%-6s %14s", "rows", "fp32 engine");
    for (WeightType t : types) std::printf(" %18s", stave::quant::WeightTypeName(t));
    std::printf("\n");
    for (int64_t rows : row_counts) {
      if (isa == qi::Isa::kScalar && rows > 16) continue;  // the portable path is for correctness
      Buffers b(rows);
      // Interleaved: every repetition times fp32 and then each type, so load from other
      // processes hits all of them alike; the speed-up is the median of per-repetition ratios.
      std::vector<std::function<void()>> steps = {[&] { Fp32Step(model, b, rows); }};
      for (WeightType t : types) steps.push_back([&, t] { QuantStep(model, b, rows, t); });
      const auto times = TimeInterleaved(steps, reps);
      const double base = Median(times[0]) / rows;
      std::printf("%-6ld %11.3f ms", static_cast<long>(rows), base * 1e3);
      for (size_t k = 1; k < steps.size(); ++k) {
        std::vector<double> ratio;
        for (int r = 0; r < reps; ++r) ratio.push_back(times[0][r] / times[k][r]);
        std::printf(" %9.3f (%5.2fx)", Median(times[k]) / rows * 1e3, Median(ratio));
      }
      std::printf("\n");
      std::fflush(stdout);
    }
  }
  qi::SetIsaForTesting(qi::DetectedIsa());

  if (alt && static_cast<int>(qi::DetectedIsa()) >= static_cast<int>(qi::Isa::kAvx512)) {
    std::printf("\ndecode (rows 1): Matmul (q4_0: int8 activations; q8_0: fp32) vs this file's "
                "fp32-activation kernel, ms per token, median of %d\n", reps);
    Buffers b(1);
    const double base = Time([&] { Fp32Step(model, b, 1); }, reps);
    for (WeightType t : {WeightType::kQ8_0, WeightType::kQ4_0}) {
      const double i8 = Time([&] { QuantStep(model, b, 1, t); }, reps);
      const double f32 = Time([&] { AltStep(model, b, t); }, reps);
      std::printf("%-5s Matmul %7.3f ms (%5.2fx)   fp32 act %7.3f ms (%5.2fx)   fp32 engine %7.3f ms\n",
                  stave::quant::WeightTypeName(t), i8 * 1e3, base / i8, f32 * 1e3, base / f32,
                  base * 1e3);
    }
  }
  std::printf("\nload average at the end: %s (other processes on the same cores make the\n"
              "2-thread figures unreliable: each parallel region waits for both threads)\n",
              LoadAverage().c_str());
  return 0;
}
