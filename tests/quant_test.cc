// core/quant: formats (known-answer blocks, round trips, 16-bit conversions against F16C,
// bit-exactness against llama.cpp's own files when the shared data is present) and Matmul of
// every type on every instruction-set level this CPU has, against a double-precision reference.
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/quant/quant.h"
#include "core/quant/quant_internal.h"
#include "tests/shared_data.h"

namespace stave::quant {
namespace {

using internal::Isa;

constexpr WeightType kAllTypes[] = {WeightType::kF32, WeightType::kF16, WeightType::kBF16,
                                    WeightType::kQ8_0, WeightType::kQ4_0};

std::vector<uint8_t> Quantize(WeightType type, const std::vector<float>& x, int64_t rows,
                              int64_t cols) {
  std::vector<uint8_t> out(RowBytes(type, cols) * rows);
  QuantizeRows(type, x.data(), out.data(), rows, cols);
  return out;
}

std::vector<float> Dequantize(WeightType type, const std::vector<uint8_t>& q, int64_t rows,
                              int64_t cols) {
  std::vector<float> out(rows * cols);
  DequantizeRows(type, q.data(), out.data(), rows, cols);
  return out;
}

float BitsToFloat(uint32_t u) { return internal::BitsFloat(u); }

TEST(QuantFormat, NamesBlocksAndRowBytes) {
  EXPECT_STREQ(WeightTypeName(WeightType::kF32), "f32");
  EXPECT_STREQ(WeightTypeName(WeightType::kF16), "f16");
  EXPECT_STREQ(WeightTypeName(WeightType::kBF16), "bf16");
  EXPECT_STREQ(WeightTypeName(WeightType::kQ8_0), "q8_0");
  EXPECT_STREQ(WeightTypeName(WeightType::kQ4_0), "q4_0");
  EXPECT_EQ(BlockColumns(WeightType::kF32), 1);
  EXPECT_EQ(BlockColumns(WeightType::kBF16), 1);
  EXPECT_EQ(BlockColumns(WeightType::kQ8_0), 32);
  EXPECT_EQ(BlockColumns(WeightType::kQ4_0), 32);
  EXPECT_EQ(RowBytes(WeightType::kF32, 768), 3072u);
  EXPECT_EQ(RowBytes(WeightType::kF16, 7), 14u);
  EXPECT_EQ(RowBytes(WeightType::kBF16, 768), 1536u);
  EXPECT_EQ(RowBytes(WeightType::kQ8_0, 768), 24u * 34u);
  EXPECT_EQ(RowBytes(WeightType::kQ4_0, 768), 24u * 18u);
  EXPECT_THROW(RowBytes(WeightType::kQ8_0, 48), std::invalid_argument);
  EXPECT_THROW(RowBytes(WeightType::kQ4_0, 33), std::invalid_argument);
}

// ---- 16-bit floats --------------------------------------------------------------------------

TEST(QuantFormat, HalfKnownValues) {
  using internal::FloatToHalf;
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(FloatToHalf(65519.0f), 0x7bff);
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7c00);  // the tie above the largest half rounds to inf
  EXPECT_EQ(FloatToHalf(INFINITY), 0x7c00);
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -25)), 0x0000);  // tie to even: zero
  EXPECT_EQ(FloatToHalf(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(FloatToHalf(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 units: tie to even 2
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie to even (down)
  EXPECT_EQ(FloatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie to even (up)
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalf(NAN) & 0x7e00, 0x7e00);
  EXPECT_EQ(internal::HalfToFloat(0x3555), 0x1.554p-2f);
  EXPECT_EQ(internal::HalfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(internal::HalfToFloat(0xfbff), -65504.0f);
  EXPECT_TRUE(std::isinf(internal::HalfToFloat(0x7c00)));
  EXPECT_TRUE(std::isnan(internal::HalfToFloat(0x7e00)));
}

__attribute__((target("f16c"))) float F16cToFloat(uint16_t h) { return _cvtsh_ss(h); }
__attribute__((target("f16c"))) uint16_t F16cFromFloat(float f) { return _cvtss_sh(f, 0); }

// The portable conversions against the hardware's (every half; fp32 values of every exponent).
TEST(QuantFormat, HalfMatchesF16c) {
  if (!__builtin_cpu_supports("f16c")) GTEST_SKIP() << "no F16C on this CPU";
  for (uint32_t h = 0; h < 65536; ++h) {
    const float a = internal::HalfToFloat(static_cast<uint16_t>(h)), b = F16cToFloat(h);
    if (std::isnan(b)) {
      EXPECT_TRUE(std::isnan(a)) << h;
    } else {
      ASSERT_EQ(internal::FloatBits(a), internal::FloatBits(b)) << std::hex << h;
    }
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 2000000; ++i) {
    uint32_t u = rng();
    if (i % 2) u = (u & 0x8fffffff) | 0x30000000;  // bias toward half's range (2^-31..2^32)
    const float f = BitsToFloat(u);
    if (std::isnan(f)) continue;
    ASSERT_EQ(internal::FloatToHalf(f), F16cFromFloat(f)) << std::hex << u;
  }
}

TEST(QuantFormat, Bf16RoundsToNearestEven) {
  using internal::FloatToBf16;
  EXPECT_EQ(FloatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(FloatToBf16(BitsToFloat(0x3f808000)), 0x3f80);  // tie, even stays
  EXPECT_EQ(FloatToBf16(BitsToFloat(0x3f818000)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(FloatToBf16(BitsToFloat(0x3f808001)), 0x3f81);
  EXPECT_EQ(FloatToBf16(BitsToFloat(0x00000001)), 0x0000);  // subnormal kept (rounds to 0 here)
  EXPECT_EQ(FloatToBf16(BitsToFloat(0x00018000)), 0x0002);  // subnormal, not flushed
  EXPECT_EQ(FloatToBf16(BitsToFloat(0x7f7fffff)), 0x7f80);  // overflow to inf
  EXPECT_EQ(FloatToBf16(BitsToFloat(0x7f800001)), 0x7fc0);  // signalling NaN made quiet
  EXPECT_EQ(internal::Bf16ToFloat(0xc040), -3.0f);
  // Round trip: within half a bf16 ulp (2^-8 relative to the exponent).
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 10.0f);
  for (int i = 0; i < 100000; ++i) {
    const float x = dist(rng);
    const float y = internal::Bf16ToFloat(FloatToBf16(x));
    int e;
    std::frexp(x, &e);
    ASSERT_LE(std::fabs(x - y), std::ldexp(1.0f, e - 9)) << x;
  }
}

TEST(QuantFormat, F16RoundTripWithinHalfUlp) {
  std::mt19937 rng(4);
  std::normal_distribution<float> dist(0.0f, 4.0f);
  std::vector<float> x(4096);
  for (auto& v : x) v = dist(rng);
  const auto y = Dequantize(WeightType::kF16, Quantize(WeightType::kF16, x, 64, 64), 64, 64);
  for (size_t i = 0; i < x.size(); ++i) {
    int e;
    std::frexp(x[i], &e);
    const float half_ulp = std::ldexp(1.0f, std::max(e, -13) - 12);
    ASSERT_LE(std::fabs(x[i] - y[i]), half_ulp) << x[i];
  }
  const auto z = Dequantize(WeightType::kBF16, Quantize(WeightType::kBF16, x, 1, 4096), 1, 4096);
  const auto f = Dequantize(WeightType::kF32, Quantize(WeightType::kF32, x, 1, 4096), 1, 4096);
  EXPECT_EQ(f, x);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(internal::FloatToBf16(x[i]) << 16, internal::FloatBits(z[i]));
}

// ---- Q8_0 / Q4_0 known answers -------------------------------------------------------------

TEST(QuantFormat, Q8_0KnownBlock) {
  // amax 127 -> d = 1 (fp16 0x3c00); q = roundf(x): halves away from zero, as llama.cpp.
  std::vector<float> x = {127, -127, 0.5f, -0.5f, 1.5f, 2.5f, -2.5f, 3.49f, 0, 0.49f, -100.5f, 42};
  x.resize(32, 0.0f);
  for (int j = 12; j < 32; ++j) x[j] = static_cast<float>(j - 20);
  const auto q = Quantize(WeightType::kQ8_0, x, 1, 32);
  ASSERT_EQ(q.size(), 34u);
  EXPECT_EQ(q[0], 0x00);
  EXPECT_EQ(q[1], 0x3c);
  const int8_t expect[12] = {127, -127, 1, -1, 2, 3, -3, 3, 0, 0, -101, 42};
  for (int j = 0; j < 12; ++j) EXPECT_EQ(static_cast<int8_t>(q[2 + j]), expect[j]) << j;
  for (int j = 12; j < 32; ++j) EXPECT_EQ(static_cast<int8_t>(q[2 + j]), j - 20) << j;
  // A second block with amax 2.54: d = 0.02, in fp16 0x251f (exponent -6: 9 << 10 = 0x2400,
  // mantissa 0.28 * 1024 = 286.7 -> 287 = 0x11f); q from the fp32 d.
  std::vector<float> y(32, 0.0f);
  y[5] = -2.54f;
  y[6] = 0.031f;   // 1.55 -> 2
  y[7] = 0.011f;   // 0.55 -> 1
  y[8] = -0.029f;  // -1.45 -> -1
  const auto r = Quantize(WeightType::kQ8_0, y, 1, 32);
  EXPECT_EQ(r[0] | r[1] << 8, internal::FloatToHalf(2.54f / 127.0f));
  EXPECT_EQ(r[0] | r[1] << 8, 0x251f);
  EXPECT_EQ(static_cast<int8_t>(r[2 + 5]), -127);
  EXPECT_EQ(static_cast<int8_t>(r[2 + 6]), 2);
  EXPECT_EQ(static_cast<int8_t>(r[2 + 7]), 1);
  EXPECT_EQ(static_cast<int8_t>(r[2 + 8]), -1);
  EXPECT_EQ(static_cast<int8_t>(r[2 + 0]), 0);
  // Dequantize: d * q.
  const auto back = Dequantize(WeightType::kQ8_0, q, 1, 32);
  for (int j = 0; j < 12; ++j) EXPECT_EQ(back[j], expect[j]);
}

TEST(QuantFormat, Q4_0KnownBlock) {
  // The largest magnitude is -8 -> d = -8 / -8 = 1 (0x3c00); q = min(15, (int8)(x + 8.5)).
  std::vector<float> x(32, 0.0f);
  const float lo[16] = {-8, 7, 7.6f, 0, 0.5f, -0.5f, -3.2f, 1.49f, -7.5f, 6.4f, 2, -1, 3, -4, 5, -6};
  const int qlo[16] = {0, 15, 15, 8, 9, 8, 5, 9, 1, 14, 10, 7, 11, 4, 13, 2};
  for (int j = 0; j < 16; ++j) x[j] = lo[j];
  for (int j = 16; j < 32; ++j) x[j] = static_cast<float>(j - 24);  // -8..7 -> q 0..15
  const auto q = Quantize(WeightType::kQ4_0, x, 1, 32);
  ASSERT_EQ(q.size(), 18u);
  EXPECT_EQ(q[0], 0x00);
  EXPECT_EQ(q[1], 0x3c);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(q[2 + j], qlo[j] | (j << 4)) << j;
  const auto back = Dequantize(WeightType::kQ4_0, q, 1, 32);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(back[j], qlo[j] - 8) << j;
  for (int j = 16; j < 32; ++j) EXPECT_EQ(back[j], j - 24) << j;
  // A positive maximum gives a negative d: 8 -> d = -1 (0xbc00), 8 -> q 0, -8 -> 16.5 -> 15.
  std::vector<float> y(32, 0.0f);
  y[0] = 8;
  y[1] = -8;
  y[17] = 3;
  const auto r = Quantize(WeightType::kQ4_0, y, 1, 32);
  EXPECT_EQ(r[0], 0x00);
  EXPECT_EQ(r[1], 0xbc);
  EXPECT_EQ(r[2 + 0], 0x80);  // low nibble q(8) = 0, high nibble q(y[16] = 0) = 8
  EXPECT_EQ(r[2 + 1], 0x5f);  // low q(-8) = 15 (clamped), high q(3) = (int8)(5.5) = 5
  // Hand-made bytes decode as d * (nibble - 8): d = 0.5 (0x3800).
  std::vector<uint8_t> blk(18, 0x88);
  blk[0] = 0x00;
  blk[1] = 0x38;
  blk[2] = 0xf0;
  const auto v = Dequantize(WeightType::kQ4_0, blk, 1, 32);
  EXPECT_EQ(v[0], -4.0f);
  EXPECT_EQ(v[16], 3.5f);
  EXPECT_EQ(v[1], 0.0f);
}

// |x - deq(x)| <= |d| / 2 per block (the fp32 scale; plus what storing d as fp16 moves q * d);
// Q4_0's top code is clamped to 15, so x / d in [7.5, 8] is off by up to |d|.
TEST(QuantFormat, BlockRoundTripWithinHalfStep) {
  std::mt19937 rng(11);
  for (WeightType type : {WeightType::kQ8_0, WeightType::kQ4_0}) {
    for (float scale : {1e-3f, 1.0f, 300.0f}) {
      std::normal_distribution<float> dist(0.0f, scale);
      const int64_t rows = 16, cols = 256;
      std::vector<float> x(rows * cols);
      for (auto& v : x) v = dist(rng);
      for (int64_t i = 0; i < cols; i += 37) x[i] = 0.0f;  // and an all-zero block:
      for (int64_t i = cols; i < cols + 32; ++i) x[i] = 0.0f;
      const auto q = Quantize(type, x, rows, cols);
      const auto y = Dequantize(type, q, rows, cols);
      const size_t block_bytes = type == WeightType::kQ8_0 ? 34 : 18;
      for (int64_t b = 0; b < rows * cols / 32; ++b) {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; ++j)
          if (std::fabs(x[b * 32 + j]) > amax) amax = std::fabs(x[b * 32 + j]), max = x[b * 32 + j];
        const float d = type == WeightType::kQ8_0 ? amax / 127 : max / -8;
        const float d16 = internal::HalfToFloat(q[b * block_bytes] | q[b * block_bytes + 1] << 8);
        const float qmax = type == WeightType::kQ8_0 ? 127 : 8;
        for (int j = 0; j < 32; ++j) {
          const float xv = x[b * 32 + j];
          const bool clamped = type == WeightType::kQ4_0 && d != 0 && xv / d > 7.5f;
          const float bound = (clamped ? 1.0f : 0.5f) * std::fabs(d) * (1 + 1e-6f) +
                              qmax * std::fabs(d - d16) + 1e-30f;
          ASSERT_LE(std::fabs(xv - y[b * 32 + j]), bound)
              << WeightTypeName(type) << " block " << b << " element " << j << " x " << xv;
        }
      }
    }
  }
}

// ---- llama.cpp's files: our quantizers produce their bytes ---------------------------------

// Just enough GGUF (v2/v3) to list tensors: name, type, dims, data.
struct TinyGguf {
  struct Tensor {
    uint32_t type;
    std::vector<uint64_t> dims;
    const uint8_t* data;
  };
  std::vector<uint8_t> bytes;
  std::map<std::string, Tensor> tensors;

  explicit TinyGguf(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
    size_t pos = 0;
    auto take = [&](size_t k) {
      if (pos + k > bytes.size()) throw std::runtime_error("truncated gguf");
      const uint8_t* p = bytes.data() + pos;
      pos += k;
      return p;
    };
    auto u32 = [&] { uint32_t v; std::memcpy(&v, take(4), 4); return v; };
    auto u64 = [&] { uint64_t v; std::memcpy(&v, take(8), 8); return v; };
    auto str = [&] { const uint64_t n = u64(); return std::string(reinterpret_cast<const char*>(take(n)), n); };
    if (u32() != 0x46554747) throw std::runtime_error("not gguf");
    u32();  // version
    const uint64_t n_tensors = u64(), n_kv = u64();
    uint64_t alignment = 32;
    const size_t scalar_size[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    for (uint64_t i = 0; i < n_kv; ++i) {
      const std::string key = str();
      const uint32_t type = u32();
      if (type == 8) {
        str();
      } else if (type == 9) {
        const uint32_t et = u32();
        const uint64_t count = u64();
        for (uint64_t e = 0; e < count; ++e) {
          if (et == 8) str();
          else take(scalar_size[et]);
        }
      } else {
        const uint8_t* p = take(scalar_size[type]);
        if (key == "general.alignment") std::memcpy(&alignment, p, 4), alignment &= 0xffffffff;
      }
    }
    std::vector<std::pair<std::string, std::pair<Tensor, uint64_t>>> infos;
    for (uint64_t i = 0; i < n_tensors; ++i) {
      Tensor t;
      const std::string name = str();
      const uint32_t nd = u32();
      for (uint32_t k = 0; k < nd; ++k) t.dims.push_back(u64());
      t.type = u32();
      infos.push_back({name, {t, u64()}});
    }
    const size_t data = (pos + alignment - 1) / alignment * alignment;
    for (auto& [name, info] : infos) {
      info.first.data = bytes.data() + data + info.second;
      tensors[name] = info.first;
    }
  }
};

constexpr uint32_t kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ4_0 = 2, kGgmlQ8_0 = 8, kGgmlBf16 = 30;

// Quantizes every F32 tensor of `f32_file` that `other_file` stores as `ggml_type` and compares
// the bytes; returns how many tensors matched.
int CompareWithLlamaCpp(const std::string& f32_file, const std::string& other_file,
                        uint32_t ggml_type, WeightType type) {
  const TinyGguf ref(::stave::testing::SharedPath(f32_file));
  const TinyGguf other(::stave::testing::SharedPath(other_file));
  int compared = 0;
  for (const auto& [name, t] : other.tensors) {
    if (t.type != ggml_type) continue;
    const auto it = ref.tensors.find(name);
    if (it == ref.tensors.end() || it->second.type != kGgmlF32) continue;
    const int64_t cols = static_cast<int64_t>(t.dims[0]);
    int64_t rows = 1;
    for (size_t k = 1; k < t.dims.size(); ++k) rows *= static_cast<int64_t>(t.dims[k]);
    std::vector<float> x(rows * cols);
    std::memcpy(x.data(), it->second.data, x.size() * 4);
    const auto q = Quantize(type, x, rows, cols);
    EXPECT_EQ(std::memcmp(q.data(), t.data, q.size()), 0) << name << " as " << WeightTypeName(type);
    ++compared;
  }
  return compared;
}

TEST(QuantFormat, MatchesLlamaCppQ8_0) {
  SKIP_UNLESS_SHARED("models/gguf/rsmall-Q8_0.gguf");
  EXPECT_GT(CompareWithLlamaCpp("models/gguf/rsmall-f32.gguf", "models/gguf/rsmall-Q8_0.gguf",
                                kGgmlQ8_0, WeightType::kQ8_0),
            0);
}

TEST(QuantFormat, MatchesLlamaCppQ4_0) {
  SKIP_UNLESS_SHARED("models/gguf/rsmall-Q4_0.gguf");
  EXPECT_GT(CompareWithLlamaCpp("models/gguf/rsmall-f32.gguf", "models/gguf/rsmall-Q4_0.gguf",
                                kGgmlQ4_0, WeightType::kQ4_0),
            0);
}

TEST(QuantFormat, MatchesLlamaCppF16AndBf16) {
  SKIP_UNLESS_SHARED("models/gguf/rsmall-F16.gguf");
  SKIP_UNLESS_SHARED("models/gguf/stories260K-BF16.gguf");
  EXPECT_GT(CompareWithLlamaCpp("models/gguf/rsmall-f32.gguf", "models/gguf/rsmall-F16.gguf",
                                kGgmlF16, WeightType::kF16),
            0);
  EXPECT_GT(CompareWithLlamaCpp("models/gguf/stories260K.gguf", "models/gguf/stories260K-BF16.gguf",
                                kGgmlBf16, WeightType::kBF16),
            0);
}

// ---- Matmul ----------------------------------------------------------------------------------

// Every level this CPU has, restoring the detected one afterwards.
class QuantMatmul : public ::testing::Test {
 protected:
  void SetUp() override { at::set_num_threads(2); }
  void TearDown() override { internal::SetIsaForTesting(internal::DetectedIsa()); }
  static std::vector<Isa> Levels() {
    std::vector<Isa> levels;
    for (int i = 0; i <= static_cast<int>(internal::DetectedIsa()); ++i)
      levels.push_back(static_cast<Isa>(i));
    return levels;
  }
};

// The activations as the SIMD kernels of Q8_0/Q4_0 see them: per block of 32, scale amax / 127
// (fp32), round to nearest even.
std::vector<float> QuantizedActivations(const std::vector<float>& x, int64_t rows, int64_t d) {
  std::vector<float> out(x.size());
  for (int64_t b = 0; b < rows * d / 32; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    const float dx = amax / 127.0f, id = dx != 0.0f ? 1.0f / dx : 0.0f;
    for (int j = 0; j < 32; ++j) out[b * 32 + j] = dx * std::nearbyint(x[b * 32 + j] * id);
  }
  return out;
}

std::vector<float> Bf16Activations(const std::vector<float>& x) {
  std::vector<float> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = internal::Bf16ToFloat(internal::FloatToBf16(x[i]));
  return out;
}

void CheckMatmul(WeightType type, Isa isa, int64_t n, int64_t d, int64_t rows, bool accumulate,
                 std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> wf(n * d), x(rows * d), out(rows * n), init(rows * n);
  for (auto& v : wf) v = dist(rng);
  for (auto& v : x) v = dist(rng);
  for (auto& v : init) v = dist(rng);
  // Some structure: a row of W of zeros, an activation block of zeros, a large outlier.
  for (int64_t k = 0; k < d; ++k) wf[(n / 2) * d + k] = 0.0f;
  for (int64_t k = 0; k < std::min<int64_t>(32, d); ++k) x[(rows - 1) * d + k] = 0.0f;
  x[d / 2] = 25.0f;
  const auto wq = Quantize(type, wf, n, d);
  const auto w = Dequantize(type, wq, n, d);  // the weights Matmul actually multiplies
  out = init;
  Matmul(type, wq.data(), n, d, x.data(), rows, out.data(), accumulate);

  // What the kernel's arithmetic should equal up to fp32 rounding: the exact activations for the
  // float paths and the portable path, int8-quantized ones for the SIMD Q8_0/Q4_0 kernels,
  // bf16-rounded ones for the vdpbf16ps path.
  const bool quant = type == WeightType::kQ8_0 || type == WeightType::kQ4_0;
  std::vector<float> xk = x;
  if (internal::Int8Activations(type, isa, rows)) xk = QuantizedActivations(x, rows, d);
  EXPECT_EQ(internal::Int8Activations(type, isa, rows),
            quant && isa != Isa::kScalar &&
                !(type == WeightType::kQ8_0 && rows == 1 && isa >= Isa::kAvx512));
  if (type == WeightType::kBF16 && isa == Isa::kAvx512Bf16 && rows >= internal::kBf16DotMinRows)
    xk = Bf16Activations(x);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < n; ++i) {
      double exact = 0, kernel = 0, mag = 0, xerr = 0;
      for (int64_t k = 0; k < d; ++k) {
        const double wv = w[i * d + k];
        exact += wv * x[r * d + k];
        kernel += wv * xk[r * d + k];
        mag += std::fabs(wv * xk[r * d + k]) + std::fabs(wv * x[r * d + k]);
        xerr += std::fabs(wv) * std::fabs(x[r * d + k] - xk[r * d + k]);
      }
      const double base = accumulate ? init[r * n + i] : 0.0;
      const double got = out[r * n + i];
      // fp32 accumulation over d products: generous for rounding (relative 2e-5 of the sum of
      // magnitudes), still far below one product's size (~1/d of it), so a wrong or missing
      // element fails.
      const double tol = 2e-5 * mag + 1e-5 * std::fabs(base) + 1e-30;
      ASSERT_NEAR(got, base + kernel, tol)
          << WeightTypeName(type) << " on " << internal::IsaName(isa) << " n " << n << " d " << d
          << " rows " << rows << " acc " << accumulate << " at [" << r << ", " << i << "]";
      // And the activation rounding stays within its own bound against the exact product.
      ASSERT_NEAR(got, base + exact, tol + xerr);
    }
}

TEST_F(QuantMatmul, EveryTypeEveryLevelOddShapes) {
  std::mt19937 rng(1234);
  for (Isa isa : Levels()) {
    ASSERT_TRUE(internal::SetIsaForTesting(isa));
    ASSERT_EQ(internal::ActiveIsa(), isa);
    for (WeightType type : kAllTypes)
      for (int64_t d : {32, 64, 96, 768})
        for (int64_t n : {1, 3, 17, 33, 100})
          for (int64_t rows : {1, 2, 7, 9, 64, 65, 130}) {
            if (d == 768 && rows > 9 && n < 33) continue;  // keeps the double reference quick
            for (bool acc : {false, true}) CheckMatmul(type, isa, n, d, rows, acc, rng);
          }
    std::printf("[ levels ] checked %s\n", internal::IsaName(isa));
  }
}

// Float types take any d (block of 1): tails of the vector loops.
TEST_F(QuantMatmul, FloatTypesOddD) {
  std::mt19937 rng(99);
  for (Isa isa : Levels()) {
    ASSERT_TRUE(internal::SetIsaForTesting(isa));
    for (WeightType type : {WeightType::kF32, WeightType::kF16, WeightType::kBF16})
      for (int64_t d : {1, 7, 17, 33, 47, 100})
        for (int64_t rows : {1, 3, 8, 9})
          CheckMatmul(type, isa, 13, d, rows, rows % 2 == 1, rng);
  }
}

// A large matrix: several cache tiles and both threads, every row checked.
TEST_F(QuantMatmul, LargeMatrixAllLevels) {
  std::mt19937 rng(5);
  for (Isa isa : Levels()) {
    ASSERT_TRUE(internal::SetIsaForTesting(isa));
    for (WeightType type : kAllTypes) CheckMatmul(type, isa, 1029, 256, 3, false, rng);
  }
}

TEST_F(QuantMatmul, RejectsBadShapes) {
  std::vector<float> x(48), out(4);
  std::vector<uint8_t> w(4096);
  EXPECT_THROW(Matmul(WeightType::kQ8_0, w.data(), 1, 48, x.data(), 1, out.data(), false),
               std::invalid_argument);
  EXPECT_THROW(Matmul(WeightType::kQ4_0, w.data(), 1, 16, x.data(), 1, out.data(), false),
               std::invalid_argument);
  EXPECT_THROW(Matmul(WeightType::kF32, w.data(), 1, 0, x.data(), 1, out.data(), false),
               std::invalid_argument);
  // rows or n of 0: nothing written.
  out.assign(4, 7.0f);
  Matmul(WeightType::kF32, w.data(), 0, 8, x.data(), 1, out.data(), false);
  Matmul(WeightType::kF32, w.data(), 1, 8, x.data(), 0, out.data(), false);
  EXPECT_EQ(out[0], 7.0f);
}

TEST_F(QuantMatmul, LevelHook) {
  EXPECT_FALSE(internal::SetIsaForTesting(static_cast<Isa>(static_cast<int>(internal::DetectedIsa()) + 1)));
  EXPECT_EQ(internal::ActiveIsa(), internal::DetectedIsa());
  EXPECT_TRUE(internal::SetIsaForTesting(Isa::kScalar));
  EXPECT_EQ(internal::ActiveIsa(), Isa::kScalar);
  std::printf("[ levels ] detected %s\n", internal::IsaName(internal::DetectedIsa()));
}

}  // namespace
}  // namespace stave::quant
