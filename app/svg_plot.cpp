// A tiny SVG plot builder: log-x panels with bands, markers, reference lines and a legend; bars.
#include "app/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

#include "host/check.h"

namespace safnet {

namespace {

// Okabe & Ito's colour-blind-safe palette, yellow last since it is faint on white.
constexpr const char* kPalette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                    "#E69F00", "#56B4E9", "#000000", "#F0E442"};
constexpr int kMarkers = 6;  // circle, square, triangle up, diamond, triangle down, cross

constexpr double kPanelW = 360, kPanelH = 320;
constexpr double kLeft = 64, kRight = 18, kTop = 34, kBottom = 58;  // inside a panel
constexpr double kFigLeft = 10, kFigTop = 46, kLegendW = 230;
constexpr const char* kFont = "Helvetica, Arial, sans-serif";

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

const char* colour(int style) {
  const int n = static_cast<int>(std::size(kPalette));
  return kPalette[((style % n) + n) % n];
}

std::string marker(int style, double x, double y) {
  const int shape = ((style % kMarkers) + kMarkers) % kMarkers;
  const std::string c = colour(style);
  const double r = 4.2;
  auto poly = [&](std::initializer_list<std::pair<double, double>> pts) {
    std::string s = "<polygon points=\"";
    for (const auto& [dx, dy] : pts) s += num(x + dx * r) + "," + num(y + dy * r) + " ";
    s.pop_back();
    return s + "\" fill=\"" + c + "\" stroke=\"white\" stroke-width=\"0.8\"/>";
  };
  switch (shape) {
    case 0:
      return "<circle cx=\"" + num(x) + "\" cy=\"" + num(y) + "\" r=\"" + num(r) + "\" fill=\"" +
             c + "\" stroke=\"white\" stroke-width=\"0.8\"/>";
    case 1:
      return poly({{-0.9, -0.9}, {0.9, -0.9}, {0.9, 0.9}, {-0.9, 0.9}});
    case 2:
      return poly({{0, -1.15}, {1.05, 0.8}, {-1.05, 0.8}});
    case 3:
      return poly({{0, -1.25}, {1.1, 0}, {0, 1.25}, {-1.1, 0}});
    case 4:
      return poly({{0, 1.15}, {1.05, -0.8}, {-1.05, -0.8}});
    default:
      return "<path d=\"M" + num(x - r) + " " + num(y) + "H" + num(x + r) + "M" + num(x) + " " +
             num(y - r) + "V" + num(y + r) + "\" stroke=\"" + c + "\" stroke-width=\"2.4\"/>";
  }
}

std::string text(double x, double y, const std::string& body, int size, const char* anchor,
                 const std::string& extra = "") {
  return "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" font-size=\"" + std::to_string(size) +
         "\" text-anchor=\"" + anchor + "\"" + extra + ">" + body + "</text>\n";
}

std::string line(double x1, double y1, double x2, double y2, const std::string& style) {
  return "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" +
         num(y2) + "\" " + style + "/>\n";
}

// Maps data to pixels inside one panel's plot area.
struct Axes {
  double x0, y0, w, h;  // plot area in pixels
  double lx_lo, lx_hi;  // log10 x domain (padded)
  double y_lo, y_hi;
  double px(double x) const { return x0 + (std::log10(x) - lx_lo) / (lx_hi - lx_lo) * w; }
  double py(double y) const {
    return y0 + h - (std::clamp(y, y_lo, y_hi) - y_lo) / (y_hi - y_lo) * h;
  }
};

std::string decade_label(int d) {
  // Superscript via dy, which every SVG viewer honours (baseline-shift is not universal).
  const std::string exp = d < 0 ? "\u2212" + std::to_string(-d) : std::to_string(d);
  return "10<tspan dy=\"-6\" font-size=\"10\">" + exp + "</tspan>";
}

std::string draw_axes(const Axes& a, const PlotFigure& fig, int dec_lo, int dec_hi, bool y_title) {
  std::string s;
  const double bottom = a.y0 + a.h;
  for (double y = fig.y_min; y <= fig.y_max + 1e-9 * (fig.y_max - fig.y_min); y += fig.y_step) {
    const double py = a.py(y);
    s += line(a.x0, py, a.x0 + a.w, py, "stroke=\"#e3e3e3\" stroke-width=\"1\"");
    s += line(a.x0 - 5, py, a.x0, py, "stroke=\"#333\" stroke-width=\"1\"");
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", y);
    s += text(a.x0 - 8, py + 4, buf, 12, "end");
  }
  for (int d = dec_lo; d <= dec_hi; ++d) {
    const double px = a.px(std::pow(10.0, d));
    s += line(px, a.y0, px, bottom, "stroke=\"#e3e3e3\" stroke-width=\"1\"");
    s += line(px, bottom, px, bottom + 6, "stroke=\"#333\" stroke-width=\"1\"");
    s += text(px, bottom + 22, decade_label(d), 12, "middle");
    for (int m = 2; m <= 9 && d < dec_hi; ++m) {
      const double pm = a.px(m * std::pow(10.0, d));
      s += line(pm, bottom, pm, bottom + 3, "stroke=\"#333\" stroke-width=\"0.8\"");
    }
  }
  s += "<rect x=\"" + num(a.x0) + "\" y=\"" + num(a.y0) + "\" width=\"" + num(a.w) +
       "\" height=\"" + num(a.h) + "\" fill=\"none\" stroke=\"#333\" stroke-width=\"1\"/>\n";
  s += text(a.x0 + a.w / 2, bottom + 44, xml_escape(fig.x_title), 13, "middle");
  if (y_title) {
    const double tx = a.x0 - 46, ty = a.y0 + a.h / 2;
    s += text(tx, ty, xml_escape(fig.y_title), 13, "middle",
              " transform=\"rotate(-90 " + num(tx) + " " + num(ty) + ")\"");
  }
  return s;
}

std::string draw_series(const Axes& a, const PlotSeries& ser) {
  std::vector<PlotPoint> pts;
  for (const PlotPoint& p : ser.points)
    if (std::isfinite(p.y)) pts.push_back(p);
  std::sort(pts.begin(), pts.end(),
            [](const PlotPoint& l, const PlotPoint& r) { return l.x < r.x; });
  const std::string c = colour(ser.style);
  std::string s;
  if (ser.reference_y && std::isfinite(*ser.reference_y)) {
    const double py = a.py(*ser.reference_y);
    s += line(a.x0, py, a.x0 + a.w, py,
              "stroke=\"" + c + "\" stroke-width=\"1.2\" stroke-dasharray=\"6 4\" opacity=\"0.8\"");
  }
  const bool band = std::any_of(pts.begin(), pts.end(), [](const PlotPoint& p) {
    return std::isfinite(p.ylo) && std::isfinite(p.yhi) && p.ylo != p.yhi;
  });
  if (band && pts.size() >= 2) {
    std::string poly;
    for (const PlotPoint& p : pts) poly += num(a.px(p.x)) + "," + num(a.py(p.yhi)) + " ";
    for (auto it = pts.rbegin(); it != pts.rend(); ++it)
      poly += num(a.px(it->x)) + "," + num(a.py(it->ylo)) + " ";
    poly.pop_back();
    s += "<polygon points=\"" + poly + "\" fill=\"" + c +
         "\" fill-opacity=\"0.14\" stroke=\"none\"/>\n";
  } else if (band) {  // one point: an error bar instead of a band
    const PlotPoint& p = pts.front();
    s += line(a.px(p.x), a.py(p.ylo), a.px(p.x), a.py(p.yhi),
              "stroke=\"" + c + "\" stroke-width=\"1.5\" opacity=\"0.6\"");
  }
  if (pts.size() >= 2) {
    std::string poly;
    for (const PlotPoint& p : pts) poly += num(a.px(p.x)) + "," + num(a.py(p.y)) + " ";
    poly.pop_back();
    s += "<polyline points=\"" + poly + "\" fill=\"none\" stroke=\"" + c +
         "\" stroke-width=\"2\" stroke-linejoin=\"round\"/>\n";
  }
  for (const PlotPoint& p : pts) s += marker(ser.style, a.px(p.x), a.py(p.y)) + "\n";
  return s;
}

struct LegendEntry {
  std::string label;
  int style;
};

std::string draw_legend(double x, double y, const std::vector<LegendEntry>& entries,
                        const std::string* reference, const std::vector<std::string>& notes) {
  std::string s;
  for (const LegendEntry& e : entries) {
    s +=
        line(x, y, x + 28, y, "stroke=\"" + std::string(colour(e.style)) + "\" stroke-width=\"2\"");
    s += marker(e.style, x + 14, y) + "\n";
    s += text(x + 36, y + 4, xml_escape(e.label), 12, "start");
    y += 20;
  }
  if (reference) {
    s += line(x, y, x + 28, y, "stroke=\"#555\" stroke-width=\"1.2\" stroke-dasharray=\"6 4\"");
    s += text(x + 36, y + 4, xml_escape(*reference), 12, "start");
    y += 20;
  }
  y += 6;
  for (const std::string& n : notes) {
    s += text(x, y + 4, xml_escape(n), 11, "start", " fill=\"#444\"");
    y += 16;
  }
  return s;
}

}  // namespace

std::string xml_escape(const std::string& in) {
  std::string out;
  for (std::size_t i = 0; i < in.size();) {
    const unsigned char c = static_cast<unsigned char>(in[i]);
    if (c < 0x80) {
      switch (c) {
        case '&':
          out += "&amp;";
          break;
        case '<':
          out += "&lt;";
          break;
        case '>':
          out += "&gt;";
          break;
        case '"':
          out += "&quot;";
          break;
        case '\'':
          out += "&apos;";
          break;
        default:
          out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
      }
      ++i;
      continue;
    }
    // A well-formed multi-byte sequence passes through; anything else would break the XML.
    const int len = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = len > 0 && i + static_cast<std::size_t>(len) <= in.size();
    std::uint32_t cp = len == 2 ? (c & 0x1Fu) : len == 3 ? (c & 0x0Fu) : (c & 0x07u);
    for (int k = 1; ok && k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(in[i + static_cast<std::size_t>(k)]);
      ok = (cc >> 6) == 0x2;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    const std::uint32_t min_cp = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    ok = ok && cp >= min_cp && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF) && cp != 0xFFFE &&
         cp != 0xFFFF;
    if (ok) {
      out.append(in, i, static_cast<std::size_t>(len));
      i += static_cast<std::size_t>(len);
    } else {
      out += '?';
      ++i;
    }
  }
  return out;
}

std::string render_svg(const PlotFigure& fig) {
  if (!(fig.y_max > fig.y_min) || !(fig.y_step > 0) || (fig.y_max - fig.y_min) / fig.y_step > 1000)
    fail("plot: bad y range [", fig.y_min, ", ", fig.y_max, "] step ", fig.y_step);
  if (fig.panels.empty()) fail("plot: no panels");
  double lmin = INFINITY, lmax = -INFINITY;
  std::vector<LegendEntry> legend;
  bool reference = false;
  for (const PlotPanel& panel : fig.panels)
    for (const PlotSeries& ser : panel.series) {
      for (const PlotPoint& p : ser.points) {
        if (!std::isfinite(p.x) || p.x <= 0)
          fail("plot: series '", ser.label, "' has x = ", p.x, "; a log axis needs x > 0");
        if (!std::isfinite(p.y)) continue;
        lmin = std::min(lmin, std::log10(p.x));
        lmax = std::max(lmax, std::log10(p.x));
      }
      reference = reference || ser.reference_y.has_value() || panel.reference_y.has_value();
      const bool seen = std::any_of(legend.begin(), legend.end(), [&](const LegendEntry& e) {
        return e.label == ser.label && e.style == ser.style;
      });
      if (!seen) legend.push_back({ser.label, ser.style});
    }
  if (!(lmin <= lmax)) fail("plot: no points to draw");
  int dec_lo = static_cast<int>(std::floor(lmin + 1e-9));
  int dec_hi = static_cast<int>(std::ceil(lmax - 1e-9));
  if (dec_lo == dec_hi) {
    --dec_lo;
    ++dec_hi;
  }
  const double pad = 0.04 * (dec_hi - dec_lo);  // keeps edge markers inside the frame

  const int n = static_cast<int>(fig.panels.size());
  const int cols = std::clamp(fig.columns, 1, n);
  const int rows = (n + cols - 1) / cols;
  const double legend_x = kFigLeft + cols * kPanelW + 10;
  const double legend_h = 40.0 + 20.0 * (legend.size() + 1) + 16.0 * fig.notes.size();
  const double width = legend_x + kLegendW;
  const double height = std::max(kFigTop + rows * kPanelH + 8, kFigTop + legend_h);

  std::string s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  s += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" + num(width) +
       "\" height=\"" + num(height) + "\" viewBox=\"0 0 " + num(width) + " " + num(height) +
       "\">\n";
  s += "<title>" + xml_escape(fig.title) + "</title>\n";
  s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s += "<g font-family=\"" + std::string(kFont) + "\" fill=\"#222\">\n";
  s += text(width / 2, 28, xml_escape(fig.title), 16, "middle", " font-weight=\"bold\"");
  for (int i = 0; i < n; ++i) {
    const PlotPanel& panel = fig.panels[static_cast<std::size_t>(i)];
    const double ox = kFigLeft + (i % cols) * kPanelW, oy = kFigTop + (i / cols) * kPanelH;
    const Axes a{ox + kLeft,
                 oy + kTop,
                 kPanelW - kLeft - kRight,
                 kPanelH - kTop - kBottom,
                 dec_lo - pad,
                 dec_hi + pad,
                 fig.y_min,
                 fig.y_max};
    s += text(a.x0 + a.w / 2, oy + 22, xml_escape(panel.title), 14, "middle",
              " font-weight=\"bold\"");
    s += draw_axes(a, fig, dec_lo, dec_hi, i % cols == 0);
    const std::string clip = "safnet-clip-" + std::to_string(i);
    s += "<clipPath id=\"" + clip + "\"><rect x=\"" + num(a.x0) + "\" y=\"" + num(a.y0 - 6) +
         "\" width=\"" + num(a.w) + "\" height=\"" + num(a.h + 12) + "\"/></clipPath>\n";
    s += "<g clip-path=\"url(#" + clip + ")\">\n";
    if (panel.reference_y && std::isfinite(*panel.reference_y)) {
      const double py = a.py(*panel.reference_y);
      s += line(a.x0, py, a.x0 + a.w, py,
                "stroke=\"#555\" stroke-width=\"1.2\" stroke-dasharray=\"6 4\"");
    }
    for (const PlotSeries& ser : panel.series) s += draw_series(a, ser);
    s += "</g>\n";
  }
  s += draw_legend(legend_x, kFigTop + kTop + 10, legend,
                   reference ? &fig.reference_label : nullptr, fig.notes);
  s += "</g>\n</svg>\n";
  return s;
}

std::string render_bar_svg(const BarChart& c) {
  if (c.labels.empty() || c.series.empty()) fail("bar chart: nothing to draw");
  if (c.values.size() != c.series.size()) fail("bar chart: ", c.values.size(), " value rows for ", c.series.size(), " series");
  double lo = 0, hi = 0;
  for (const auto& row : c.values) {
    if (row.size() != c.labels.size()) fail("bar chart: ", row.size(), " values for ", c.labels.size(), " labels");
    for (double v : row)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  if (hi - lo < 1e-9) hi = lo + 1;
  const double label_w = 230, plot_w = 460, bar_h = 9, gap = 6, top = 58;
  const double row_h = bar_h * static_cast<double>(c.series.size()) + gap;
  const double plot_h = row_h * static_cast<double>(c.labels.size());
  const double width = label_w + plot_w + 40 + kLegendW * 0.7, height = top + plot_h + 56;
  auto px = [&](double v) { return label_w + (v - lo) / (hi - lo) * plot_w; };
  std::string s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  s += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" + num(width) + "\" height=\"" +
       num(height) + "\" viewBox=\"0 0 " + num(width) + " " + num(height) + "\">\n";
  s += "<title>" + xml_escape(c.title) + "</title>\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s += "<g font-family=\"" + std::string(kFont) + "\" fill=\"#222\">\n";
  s += text(width / 2, 28, xml_escape(c.title), 16, "middle", " font-weight=\"bold\"");
  for (int t = 0; t <= 4; ++t) {  // five ticks across the range
    const double v = lo + (hi - lo) * t / 4.0, x = px(v);
    s += line(x, top - 4, x, top + plot_h, "stroke=\"#ddd\" stroke-width=\"1\"");
    s += text(x, top + plot_h + 16, num(v), 11, "middle");
  }
  s += line(px(0), top - 4, px(0), top + plot_h, "stroke=\"#555\" stroke-width=\"1.2\"");
  s += text(label_w + plot_w / 2, top + plot_h + 40, xml_escape(c.x_title), 13, "middle");
  for (std::size_t r = 0; r < c.labels.size(); ++r) {
    const double y = top + row_h * static_cast<double>(r);
    s += text(label_w - 8, y + row_h / 2 + 3, xml_escape(c.labels[r]), 11, "end");
    for (std::size_t k = 0; k < c.series.size(); ++k) {
      const double v = c.values[k][r];
      if (!std::isfinite(v)) continue;
      const double x0 = px(std::min(0.0, v)), x1 = px(std::max(0.0, v));
      s += "<rect x=\"" + num(x0) + "\" y=\"" + num(y + bar_h * static_cast<double>(k)) + "\" width=\"" +
           num(std::max(0.5, x1 - x0)) + "\" height=\"" + num(bar_h - 1) + "\" fill=\"" + colour(static_cast<int>(k)) + "\"/>\n";
    }
  }
  for (std::size_t k = 0; k < c.series.size(); ++k) {
    const double y = top + 20.0 * static_cast<double>(k);
    s += "<rect x=\"" + num(label_w + plot_w + 30) + "\" y=\"" + num(y) + "\" width=\"14\" height=\"10\" fill=\"" +
         colour(static_cast<int>(k)) + "\"/>\n";
    s += text(label_w + plot_w + 50, y + 9, xml_escape(c.series[k]), 12, "start");
  }
  s += "</g>\n</svg>\n";
  return s;
}

}  // namespace safnet
