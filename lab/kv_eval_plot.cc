#include "lab/kv_eval_plot.h"

#include <plplot.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "lab/plot_style.h"

namespace stave {

absl::Status CheckPlotPath(const std::string& path) {
  const std::string ext = absl::AsciiStrToLower(std::filesystem::path(path).extension().string());
  if (ext != ".png" && ext != ".svg")
    return absl::InvalidArgumentError(absl::StrCat("--plot: unknown format '", ext, "' (use .png or .svg)"));
  return absl::OkStatus();
}

absl::Status PlotKvEval(const std::string& path, const std::vector<KvEvalCell>& cells,
                        const std::vector<std::string>& modes, const std::vector<int>& records) {
  if (auto status = CheckPlotPath(path); !status.ok()) return status;
  const bool png = absl::AsciiStrToLower(std::filesystem::path(path).extension().string()) == ".png";
  // One panel per record count and one more for the legend (inside a panel it hid data), laid
  // out by hand on one page (not plssub) so that a band above the panels holds the figure's title.
  const int panels = static_cast<int>(records.size()) + 1;
  const int cols = std::min(panels, 3), rows = (panels + cols - 1) / cols;
  constexpr double kPanelW = 560, kPanelH = 420, kTitleH = 60;  // pixels
  const double page_w = kPanelW * cols, page_h = kPanelH * rows + kTitleH;
  // Panel (row, col) in normalised page coordinates, y upwards.
  auto panel = [&](int i) {
    const int r = i / cols, c = i % cols;
    const double x0 = c * kPanelW / page_w, x1 = (c + 1) * kPanelW / page_w;
    const double y1 = 1 - (kTitleH + r * kPanelH) / page_h, y0 = 1 - (kTitleH + (r + 1) * kPanelH) / page_h;
    return Box{x0, x1, y0, y1};
  };
  plsdev(png ? "pngcairo" : "svgcairo");
  plsfnam(path.c_str());
  plspage(0, 0, static_cast<PLINT>(page_w), static_cast<PLINT>(page_h), 0, 0);
  plscolbg(255, 255, 255);
  plscol0(15, 0, 0, 0);
  for (size_t i = 0; i < kSeriesColors.size(); ++i)
    plscol0(static_cast<PLINT>(i + 1), kSeriesColors[i].r, kSeriesColors[i].g, kSeriesColors[i].b);
  plinit();
  pladv(0);
  plschr(0, 0.7);

  // The title, in the band above the panels.
  plvpor(0, 1, 1 - kTitleH / page_h, 1);
  plwind(0, 1, 0, 1);
  plcol0(15);
  plschr(0, 1.0);
  plptex(0.5, 0.45, 1, 0, 0.5,
         "Key-value retrieval: exact match by gold record position (bars: 95 % Wilson intervals)");
  plschr(0, 0.7);

  std::vector<std::string> names;
  std::vector<PLINT> colors, styles;
  for (size_t p = 0; p < records.size(); ++p) {
    const int r = records[p];
    const Box b = panel(static_cast<int>(p));
    const double w = b.x1 - b.x0, h = b.y1 - b.y0;
    // Room on the left for the tick labels and the y label, below for the x label.
    plvpor(b.x0 + 0.21 * w, b.x1 - 0.04 * w, b.y0 + 0.2 * h, b.y1 - 0.12 * h);
    plwind(0.5, r + 0.5, -0.03, 1.03);
    plcol0(15);
    plwidth(1.0);
    pllsty(1);
    plbox("bcnst", 0, 0, "bcnstv", 0.2, 0);
    pllab("gold record position", "exact match", absl::StrCat(r, " records").c_str());
    for (size_t m = 0; m < modes.size(); ++m) {
      std::vector<PLFLT> x, y, lo, hi;
      for (const auto& c : cells)
        if (c.mode == modes[m] && c.records == r && c.position > 0) {
          // Modes side by side around each position so their interval bars do not overlap.
          x.push_back(c.position + 0.12 * (static_cast<double>(m) - (modes.size() - 1) / 2.0));
          y.push_back(c.accuracy);
          lo.push_back(c.ci.low);
          hi.push_back(c.ci.high);
        }
      if (x.empty()) continue;
      const SeriesStyle style = SeriesStyleFor(static_cast<int>(m));
      const PLINT color = static_cast<PLINT>(1 + m % kSeriesColors.size());
      plcol0(color);
      pllsty(style.line_style);
      plwidth(2.0);
      plline(static_cast<PLINT>(x.size()), x.data(), y.data());
      pllsty(1);
      plwidth(0.5);
      plsmin(0, 0.3);  // short caps on the interval bars
      plerry(static_cast<PLINT>(x.size()), x.data(), lo.data(), hi.data());
      plsmin(0, 1);
      plssym(0, 0.7);
      plpoin(static_cast<PLINT>(x.size()), x.data(), y.data(), 17);
      if (std::find(names.begin(), names.end(), modes[m]) == names.end()) {
        names.push_back(modes[m]);
        colors.push_back(color);
        styles.push_back(style.line_style);
      }
    }
  }
  const int entries = static_cast<int>(names.size());
  if (entries > 0) {
    const Box b = panel(panels - 1);
    plvpor(b.x0, b.x1, b.y0, b.y1);
    plwind(0, 1, 0, 1);
    std::vector<const char*> texts;
    for (const auto& s : names) texts.push_back(s.c_str());
    std::vector<PLINT> opts(entries, PL_LEGEND_LINE), text_colors(entries, 15), zeros_i(entries, 0);
    std::vector<PLFLT> widths(entries, 2.0), zeros(entries, 0), scales(entries, 1);
    std::vector<const char*> symbols(entries, "");
    PLFLT w, h;
    pllegend(&w, &h, PL_LEGEND_BACKGROUND,
             PL_POSITION_LEFT | PL_POSITION_TOP | PL_POSITION_INSIDE, 0.02, 0.15, 0.08, 0, 15, 1, 0, 0,
             entries, opts.data(), 1.0, 0.6, 1.6, 0.0, text_colors.data(), texts.data(), zeros_i.data(),
             zeros_i.data(), zeros.data(), zeros.data(), colors.data(), styles.data(), widths.data(),
             zeros_i.data(), scales.data(), zeros_i.data(), symbols.data());
  }
  plend();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec) || std::filesystem::file_size(path, ec) == 0)
    return absl::InternalError(absl::StrCat("PLplot did not write ", path, " (is plplot-driver-cairo installed?)"));
  return absl::OkStatus();
}

}  // namespace stave
