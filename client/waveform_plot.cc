#include "client/waveform_plot.h"

#include <plplot.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/waveform.h"

namespace stave::cli {
namespace {

absl::Status WriteCsv(const std::string& path, const std::vector<std::vector<double>>& curves,
                      const std::vector<double>& envelope, const std::vector<double>& bases) {
  std::ofstream out(path);
  if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", path));
  out << "distance";
  for (double b : bases) out << ",f_" << b;
  out << ",envelope\n";
  for (size_t m = 0; m < envelope.size(); ++m) {
    out << m;
    for (const auto& c : curves) out << "," << c[m];
    out << "," << envelope[m] << "\n";
  }
  return out ? absl::OkStatus() : absl::DataLossError(absl::StrCat("failed writing ", path));
}

absl::Status Plot(const std::string& path, const std::string& device, int head_dim,
                  const std::vector<std::vector<double>>& curves, const std::vector<double>& envelope,
                  const std::vector<double>& bases, const Stave& stave) {
  const int n = static_cast<int>(envelope.size());
  std::vector<PLFLT> x(n);
  for (int m = 0; m < n; ++m) x[m] = m;
  double lo = *std::min_element(envelope.begin(), envelope.end()), hi = envelope[0];
  for (const auto& c : curves) lo = std::min(lo, *std::min_element(c.begin(), c.end()));
  // Zoom on the part where the troughs are: the peak at m = 0 (sqrt(d)) would flatten the rest.
  double top = std::min(hi, std::max(2.0, 1.6 * *std::max_element(envelope.begin() + n / 20, envelope.end())));

  plsdev(device.c_str());
  plsfnam(path.c_str());
  plspage(0, 0, 1400, 800, 0, 0);
  plscolbg(255, 255, 255);
  plscol0(15, 0, 0, 0);  // colour 15 black: axes and labels
  plinit();
  plcol0(15);
  plenv(0, n - 1, lo - 0.1 * (top - lo), top, 0, 0);
  pllab("relative distance m (tokens)", "f#db#u(m)",
        absl::StrCat("RoPE waveform, head dim ", head_dim, "; shortest stave (circle) ",
                     absl::StrFormat("%.3f", stave.value), " at m=", stave.distance).c_str());

  std::vector<std::string> names;
  std::vector<PLINT> colors, styles;
  std::vector<PLFLT> widths;
  const PLINT palette[] = {1, 3, 9, 10, 11, 12, 13, 14, 2, 4, 5, 6, 7, 8};
  for (size_t i = 0; i < curves.size(); ++i) {
    PLINT color = palette[i % 14];
    plcol0(color);
    plwidth(1.0);
    std::vector<PLFLT> y(curves[i].begin(), curves[i].end());
    plline(n, x.data(), y.data());
    names.push_back(absl::StrCat("base ", bases[i]));
    colors.push_back(color);
    widths.push_back(1.0);
  }
  plcol0(15);
  plwidth(3.0);
  std::vector<PLFLT> env(envelope.begin(), envelope.end());
  plline(n, x.data(), env.data());
  names.push_back("upper envelope");
  colors.push_back(15);
  widths.push_back(3.0);
  // The shortest stave: a marker and its value.
  PLFLT sx = stave.distance, sy = stave.value;
  plcol0(1);
  plssym(0, 2.5);
  plpoin(1, &sx, &sy, 4);

  const int entries = static_cast<int>(names.size());
  std::vector<const char*> texts;
  for (const auto& s : names) texts.push_back(s.c_str());
  std::vector<PLINT> opts(entries, PL_LEGEND_LINE), text_colors(entries, 15), box(entries, 0),
      symbol_numbers(entries, 0);
  std::vector<PLFLT> zeros(entries, 0), scales(entries, 1);
  std::vector<const char*> symbols(entries, "");
  styles.assign(entries, 1);
  PLFLT legend_w, legend_h;
  plwidth(1.0);
  pllegend(&legend_w, &legend_h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX, PL_POSITION_RIGHT | PL_POSITION_TOP | PL_POSITION_INSIDE,
           0.01, 0.01, 0.08, 0, 15, 1, 0, 0, entries, opts.data(), 1.0, 0.8, 2.0, 0.0, text_colors.data(),
           texts.data(), box.data(), box.data(), zeros.data(), zeros.data(), colors.data(), styles.data(),
           widths.data(), box.data(), scales.data(), symbol_numbers.data(), symbols.data());
  plend();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec) || std::filesystem::file_size(path, ec) == 0)
    return absl::InternalError(absl::StrCat("PLplot did not write ", path, " (is plplot-driver-cairo installed?)"));
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteWaveform(const std::string& path, int head_dim, const std::vector<double>& bases,
                           int max_distance) {
  if (head_dim <= 0 || head_dim % 2) return absl::InvalidArgumentError("--head-dim must be a positive even number");
  if (max_distance < 10) return absl::InvalidArgumentError("--max-distance must be at least 10");
  if (bases.empty()) return absl::InvalidArgumentError("--bases: give at least one base");
  for (double b : bases)
    if (!(b > 1)) return absl::InvalidArgumentError("--bases: every base must be > 1");
  std::vector<std::vector<double>> curves;
  std::vector<double> envelope(max_distance + 1, -1e300);
  for (double b : bases) {
    curves.push_back(WaveformCurve(b, head_dim, 0, max_distance));
    for (int m = 0; m <= max_distance; ++m) envelope[m] = std::max(envelope[m], curves.back()[m]);
  }
  const std::string ext = absl::AsciiStrToLower(std::filesystem::path(path).extension().string());
  if (ext == ".csv") return WriteCsv(path, curves, envelope, bases);
  if (ext != ".png" && ext != ".svg")
    return absl::InvalidArgumentError(absl::StrCat("--out: unknown format '", ext, "' (use .png, .svg or .csv)"));
  const Stave stave = ShortestStave(bases, head_dim, 0, max_distance);
  return Plot(path, ext == ".png" ? "pngcairo" : "svgcairo", head_dim, curves, envelope, bases, stave);
}

}  // namespace stave::cli
