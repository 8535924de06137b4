#include "lab/plot_style.h"

#include <algorithm>
#include <cmath>

namespace stave {

SeriesStyle SeriesStyleFor(int i) {
  const int n = static_cast<int>(kSeriesColors.size());
  return {kSeriesColors[i % n], 1 + (i / n) % 8};
}

namespace {

struct Lab {
  double l, a, b;
};

Lab ToLab(Rgb c) {
  auto linear = [](int v) {
    const double s = v / 255.0;
    return s <= 0.04045 ? s / 12.92 : std::pow((s + 0.055) / 1.055, 2.4);
  };
  const double r = linear(c.r), g = linear(c.g), b = linear(c.b);
  const double x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
  const double y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  const double z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
  auto f = [](double t) { return t > 0.008856 ? std::cbrt(t) : 7.787 * t + 16.0 / 116; };
  return {116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))};
}

}  // namespace

double ColorDifference(Rgb a, Rgb b) {
  const Lab p = ToLab(a), q = ToLab(b);
  return std::hypot(p.l - q.l, p.a - q.a, p.b - q.b);
}

WaveformLayout LayoutWaveform(int max_distance, double y_lo, double y_hi, double marker_x, double marker_y) {
  WaveformLayout l;
  // The right quarter of the page holds the legend ("base 25000" and "upper envelope" fit).
  l.plot = {0.10, 0.74, 0.12, 0.90};  // the left tenth: tick labels and the y label
  l.legend_x0 = l.plot.x1 + 0.015;
  // The data's window, widened where the marker (a circle about 4 % of the plot wide) would
  // otherwise reach the frame: the shortest stave is often at the last distance or two.
  const double xr = max_distance > 0 ? max_distance : 1.0, yr = y_hi > y_lo ? y_hi - y_lo : 1.0;
  l.x_min = std::min(0.0, marker_x - kWaveformPad * xr);
  l.x_max = std::max<double>(max_distance, marker_x + kWaveformPad * xr);
  l.y_min = std::min(y_lo, marker_y - kWaveformPad * yr);
  l.y_max = std::max(y_hi, marker_y + kWaveformPad * yr);
  return l;
}

}  // namespace stave
