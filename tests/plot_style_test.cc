// The figures' colours and waveform layout (lab/plot_style.h).
#include "lab/plot_style.h"

#include <gtest/gtest.h>

namespace stave::cli {
namespace {

TEST(PlotStyle, SeriesColorsAreDistinguishable) {
  // PLplot's default map, as the figures used it, had cyan and turquoise next to each other
  // (bases 4 and 5 of a waveform): 14.7 apart, read as one curve. The check catches such a pair.
  EXPECT_LT(ColorDifference({0, 255, 255}, {64, 224, 208}), 20);
  for (size_t i = 0; i < kSeriesColors.size(); ++i) {
    for (size_t j = i + 1; j < kSeriesColors.size(); ++j)
      EXPECT_GE(ColorDifference(kSeriesColors[i], kSeriesColors[j]), 25) << i << " vs " << j;
    EXPECT_GE(ColorDifference(kSeriesColors[i], {255, 255, 255}), 40) << i << " vs the background";
    EXPECT_GE(ColorDifference(kSeriesColors[i], {0, 0, 0}), 40) << i << " vs black (axes, envelope)";
  }
}

TEST(PlotStyle, SeriesBeyondTheColorsDifferInLineStyle) {
  // 16 buckets at most: every pair differs in colour or in dashing.
  for (int i = 0; i < 16; ++i)
    for (int j = i + 1; j < 16; ++j) {
      const SeriesStyle a = SeriesStyleFor(i), b = SeriesStyleFor(j);
      const bool same_color = a.color.r == b.color.r && a.color.g == b.color.g && a.color.b == b.color.b;
      EXPECT_TRUE(!same_color || a.line_style != b.line_style) << i << " vs " << j;
    }
  EXPECT_EQ(SeriesStyleFor(0).line_style, 1);  // the first ten are solid
  EXPECT_EQ(SeriesStyleFor(9).line_style, 1);
}

TEST(PlotStyle, WaveformLegendBesideThePlot) {
  const WaveformLayout l = LayoutWaveform(4096, -2.5, 9, 2000, 0.5);
  EXPECT_LT(l.plot.x0, l.plot.x1);
  EXPECT_GT(l.legend_x0, l.plot.x1);  // the legend starts right of the axes: it covers no curve
  EXPECT_LT(l.legend_x0, 0.85);       // with room for "upper envelope" before the page's edge
}

TEST(PlotStyle, WaveformMarkerAtTheLastDistanceIsInside) {
  // docs/waveform.png: the shortest stave at m = 4081 of 4096 was cut in half by the frame.
  for (double m : {4081.0, 4096.0, 0.0}) {
    const WaveformLayout l = LayoutWaveform(4096, -2.5, 9, m, 0.5);
    EXPECT_GE(m - l.x_min, kWaveformPad * 4096 - 1e-9) << m;
    EXPECT_GE(l.x_max - m, kWaveformPad * 4096 - 1e-9) << m;
    EXPECT_LE(l.x_min, 0);
    EXPECT_GE(l.x_max, 4096);
  }
  // A value at the data window's edge gets room too; the window itself is kept.
  const WaveformLayout l = LayoutWaveform(100, -1, 1, 50, 1);
  EXPECT_GE(l.y_max - 1, kWaveformPad * 2 - 1e-9);
  EXPECT_DOUBLE_EQ(l.y_min, -1);
}

}  // namespace
}  // namespace stave::cli
