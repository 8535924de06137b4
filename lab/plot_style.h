// Colours and layout shared by the figures (stave waveform, stave eval kv-retrieval --plot), kept
// apart from PLplot so that tests can check them: colours that stay distinguishable (PLplot's
// default map put cyan next to turquoise, so two neighbouring bases read as one curve), a plot
// area the legend never covers, room for every marker.
#pragma once

#include <array>
#include <vector>

namespace stave {

struct Rgb {
  int r, g, b;
};

// Tableau 10: the most similar pair is ~28 CIELAB units apart, every colour at least ~45 from the
// white background and the black reserved for axes and the waveform's envelope.
inline constexpr std::array<Rgb, 10> kSeriesColors = {{
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189},
    {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
}};

// Series i's colour (kSeriesColors[i % 10]) and PLplot line style (1 = solid; each further round
// of the ten colours dashes differently, so series 0 and 10 still differ).
struct SeriesStyle {
  Rgb color;
  int line_style;
};
SeriesStyle SeriesStyleFor(int i);

// CIE76 colour difference (Euclidean distance in CIELAB, D65 white): about 2.3 is just
// noticeable; tens are different colours.
double ColorDifference(Rgb a, Rgb b);

// A rectangle in PLplot's normalised page coordinates (0..1, y upwards).
struct Box {
  double x0, x1, y0, y1;
};

// The waveform figure: the plot area, the legend's place beside it (never over the curves), and
// the world window: distances 0..max_distance and values y_lo..y_hi, widened so that the marker
// at (marker_x, marker_y) is at least kWaveformPad of the range from every edge (drawn whole
// rather than cut by the frame).
struct WaveformLayout {
  Box plot;           // the axes' viewport
  double legend_x0;   // the legend starts right of the plot area, at this page x
  double x_min, x_max, y_min, y_max;
};
WaveformLayout LayoutWaveform(int max_distance, double y_lo, double y_hi, double marker_x, double marker_y);

// Relative padding of the waveform's world window around the data (and the marker).
inline constexpr double kWaveformPad = 0.04;

}  // namespace stave
