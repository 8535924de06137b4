#include "client/kv_eval_plot.h"

#include <plplot.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace stave::cli {

absl::Status PlotKvEval(const std::string& path, const std::vector<KvEvalCell>& cells,
                        const std::vector<std::string>& modes, const std::vector<int>& records) {
  const std::string ext = absl::AsciiStrToLower(std::filesystem::path(path).extension().string());
  if (ext != ".png" && ext != ".svg")
    return absl::InvalidArgumentError(absl::StrCat("--plot: unknown format '", ext, "' (use .png or .svg)"));
  // One panel per record count and one more for the legend (inside a panel it hid data).
  const int panels = static_cast<int>(records.size()) + 1;
  const int cols = std::min(panels, 3), rows = (panels + cols - 1) / cols;
  plsdev(ext == ".png" ? "pngcairo" : "svgcairo");
  plsfnam(path.c_str());
  plspage(0, 0, 560 * cols, 420 * rows, 0, 0);
  plscolbg(255, 255, 255);
  plscol0(15, 0, 0, 0);
  plssub(cols, rows);
  plinit();
  const PLINT palette[] = {1, 9, 3, 12, 13, 8, 10, 11, 14, 2};
  std::vector<std::string> names;
  std::vector<PLINT> colors;
  for (int r : records) {
    pladv(0);
    plvpor(0.1, 0.95, 0.2, 0.85);
    plwind(0.5, r + 0.5, -0.03, 1.03);
    plcol0(15);
    plwidth(1.0);
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
      const PLINT color = palette[m % 10];
      plcol0(color);
      plwidth(2.0);
      plline(static_cast<PLINT>(x.size()), x.data(), y.data());
      plwidth(0.5);
      plsmin(0, 0.3);  // short caps on the interval bars
      plerry(static_cast<PLINT>(x.size()), x.data(), lo.data(), hi.data());
      plsmin(0, 1);
      plssym(0, 0.7);
      plpoin(static_cast<PLINT>(x.size()), x.data(), y.data(), 17);
      if (std::find(names.begin(), names.end(), modes[m]) == names.end()) {
        names.push_back(modes[m]);
        colors.push_back(color);
      }
    }
  }
  const int entries = static_cast<int>(names.size());
  if (entries > 0) {
    pladv(0);
    plvpor(0, 1, 0, 1);
    plwind(0, 1, 0, 1);
    std::vector<const char*> texts;
    for (const auto& s : names) texts.push_back(s.c_str());
    std::vector<PLINT> opts(entries, PL_LEGEND_LINE), text_colors(entries, 15), zeros_i(entries, 0),
        styles(entries, 1);
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

}  // namespace stave::cli
