#include "lab/waveform_plot.h"

#include <plplot.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/waveform.h"
#include "lab/plot_style.h"

namespace stave {
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
  const WaveformLayout layout = LayoutWaveform(n - 1, lo - 0.1 * (top - lo), top, stave.distance, stave.value);

  plsdev(device.c_str());
  plsfnam(path.c_str());
  plspage(0, 0, 1400, 800, 0, 0);
  plscolbg(255, 255, 255);
  plscol0(15, 0, 0, 0);  // colour 15 black: axes, labels, the envelope and the marker
  for (size_t i = 0; i < kSeriesColors.size(); ++i)
    plscol0(static_cast<PLINT>(i + 1), kSeriesColors[i].r, kSeriesColors[i].g, kSeriesColors[i].b);
  plinit();
  pladv(0);
  plvpor(layout.plot.x0, layout.plot.x1, layout.plot.y0, layout.plot.y1);
  plwind(layout.x_min, layout.x_max, layout.y_min, layout.y_max);
  plcol0(15);
  plbox("bcnst", 0, 0, "bcnstv", 0, 0);
  pllab("relative distance m (tokens)", "f#db#u(m)",
        absl::StrCat("RoPE waveform, head dim ", head_dim, "; shortest stave (circle) ",
                     absl::StrFormat("%.3f", stave.value), " at m=", stave.distance).c_str());

  std::vector<std::string> names;
  std::vector<PLINT> colors, styles, opts;
  std::vector<PLFLT> widths;
  for (size_t i = 0; i < curves.size(); ++i) {
    const SeriesStyle style = SeriesStyleFor(static_cast<int>(i));
    const PLINT color = static_cast<PLINT>(1 + i % kSeriesColors.size());
    plcol0(color);
    pllsty(style.line_style);
    plwidth(1.0);
    std::vector<PLFLT> y(curves[i].begin(), curves[i].end());
    plline(n, x.data(), y.data());
    names.push_back(absl::StrCat("base ", bases[i]));
    colors.push_back(color);
    styles.push_back(style.line_style);
    widths.push_back(1.5);
    opts.push_back(PL_LEGEND_LINE);
  }
  pllsty(1);
  plcol0(15);
  plwidth(3.0);
  std::vector<PLFLT> env(envelope.begin(), envelope.end());
  plline(n, x.data(), env.data());
  names.push_back("upper envelope");
  colors.push_back(15);
  styles.push_back(1);
  widths.push_back(3.0);
  opts.push_back(PL_LEGEND_LINE);
  // The shortest stave: a black circle, drawn last so no curve hides it.
  PLFLT sx = stave.distance, sy = stave.value;
  plwidth(2.0);
  plssym(0, 2.5);
  plpoin(1, &sx, &sy, 4);
  names.push_back("shortest stave");
  colors.push_back(15);
  styles.push_back(1);
  widths.push_back(0);
  opts.push_back(PL_LEGEND_SYMBOL);

  // In a viewport of its own right of the plot area: inside it the legend covered the curves.
  plvpor(layout.legend_x0, 0.995, layout.plot.y0, layout.plot.y1);
  plwind(0, 1, 0, 1);
  const int entries = static_cast<int>(names.size());
  std::vector<const char*> texts, symbols(entries, "\u25CB");  // a circle, as the marker
  for (const auto& s : names) texts.push_back(s.c_str());
  std::vector<PLINT> text_colors(entries, 15), zeros_i(entries, 0), symbol_numbers(entries, 1);
  std::vector<PLFLT> zeros(entries, 0), scales(entries, 1.5);
  PLFLT legend_w, legend_h;
  plwidth(1.0);
  pllegend(&legend_w, &legend_h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
           PL_POSITION_LEFT | PL_POSITION_TOP | PL_POSITION_INSIDE, 0.0, 0.0, 0.2, 0, 15, 1, 0, 0,
           entries, opts.data(), 0.6, 0.8, 2.0, 0.0, text_colors.data(), texts.data(), zeros_i.data(),
           zeros_i.data(), zeros.data(), zeros.data(), colors.data(), styles.data(), widths.data(),
           colors.data(), scales.data(), symbol_numbers.data(), symbols.data());
  plend();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec) || std::filesystem::file_size(path, ec) == 0)
    return absl::InternalError(absl::StrCat("PLplot did not write ", path, " (is plplot-driver-cairo installed?)"));
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckWaveformArgs(const std::string& path, int head_dim, const std::vector<double>& bases,
                               int max_distance) {
  if (head_dim <= 0 || head_dim % 2) return absl::InvalidArgumentError("--head-dim must be a positive even number");
  if (max_distance < 10) return absl::InvalidArgumentError("--max-distance must be at least 10");
  if (bases.empty()) return absl::InvalidArgumentError("--bases: give at least one base");
  for (double b : bases)
    if (!(b > 1)) return absl::InvalidArgumentError("--bases: every base must be > 1");
  const std::string ext = absl::AsciiStrToLower(std::filesystem::path(path).extension().string());
  if (ext != ".csv" && ext != ".png" && ext != ".svg")
    return absl::InvalidArgumentError(absl::StrCat("--out: unknown format '", ext, "' (use .png, .svg or .csv)"));
  return absl::OkStatus();
}

absl::Status WriteWaveform(const std::string& path, int head_dim, const std::vector<double>& bases,
                           int max_distance) {
  if (auto status = CheckWaveformArgs(path, head_dim, bases, max_distance); !status.ok()) return status;
  const std::string ext = absl::AsciiStrToLower(std::filesystem::path(path).extension().string());
  std::vector<std::vector<double>> curves;
  std::vector<double> envelope(max_distance + 1, -1e300);
  for (double b : bases) {
    curves.push_back(WaveformCurve(b, head_dim, 0, max_distance));
    for (int m = 0; m <= max_distance; ++m) envelope[m] = std::max(envelope[m], curves.back()[m]);
  }
  if (ext == ".csv") return WriteCsv(path, curves, envelope, bases);
  const Stave stave = ShortestStave(bases, head_dim, 0, max_distance);
  return Plot(path, ext == ".png" ? "pngcairo" : "svgcairo", head_dim, curves, envelope, bases, stave);
}

}  // namespace stave
