// A tiny SVG plot builder: panels of series (x, y, band) on a log-x axis with a shared legend, and
// horizontal bar charts.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace safnet {

struct PlotPoint {
  double x = 0, y = 0;
  double ylo = 0, yhi = 0;  // band around y; ylo == yhi == y draws none
};

struct PlotSeries {
  std::string label;  // legend text; series with the same label and style share one entry
  int style = 0;      // index into the colour-blind-safe palette and marker shapes
  std::vector<PlotPoint> points;      // drawn in increasing x
  std::optional<double> reference_y;  // dashed horizontal line, e.g. the accuracy without faults
};

struct PlotPanel {
  std::string title;
  std::vector<PlotSeries> series;
  std::optional<double> reference_y;  // one grey dashed line, when the series' would coincide
};

struct PlotFigure {
  std::string title, x_title, y_title;
  std::vector<std::string> notes;             // small lines under the legend
  std::string reference_label = "reference";  // legend text for the dashed reference lines
  double y_min = 0, y_max = 100, y_step = 10;
  int columns = 3;  // panels per row
  std::vector<PlotPanel> panels;
};

// Well-formed standalone SVG 1.1. x is on a log10 axis with a tick at every decade, so every
// x must be > 0; points with a non-finite y are skipped; y outside the range is clipped.
std::string render_svg(const PlotFigure& fig);

// Horizontal bars, one row per label, one bar per series in each row (e.g. one per dtype), on a
// shared linear x axis that always includes 0; a non-finite value draws no bar.
struct BarChart {
  std::string title, x_title;
  std::vector<std::string> labels;  // rows, top to bottom
  std::vector<std::string> series;  // legend entries
  std::vector<std::vector<double>> values;  // [series][row]
};
std::string render_bar_svg(const BarChart& chart);

// Text escaped for XML content and attributes; control characters and invalid UTF-8 become '?'.
std::string xml_escape(const std::string& text);

}  // namespace safnet
