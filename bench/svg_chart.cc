#include "bench/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace fiberloop::bench {
namespace {

constexpr double kWidth = 960;
constexpr double kLabelWidth = 260;  // bar labels, left of the bars
constexpr double kBarHeight = 14;
constexpr double kPanelWidth = 300;
constexpr double kPanelHeight = 220;
const char* const kOurs = "#d9480f";
const char* const kPeers[] = {"#1c7ed6", "#5c940d", "#862e9c", "#495057", "#0b7285"};

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') {
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else if (c == '&') {
      out += "&amp;";
    } else {
      out += c;
    }
  }
  return out;
}

std::string num(double v) {
  char buf[32];
  if (v >= 100) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else if (v >= 10) {
    std::snprintf(buf, sizeof buf, "%.1f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f", v);
  }
  return buf;
}

std::string text(double x, double y, const std::string& s, const char* anchor = "start",
                 int size = 11, const char* extra = "") {
  char head[160];
  std::snprintf(head, sizeof head,
                "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%d\" text-anchor=\"%s\" %s>", x, y, size,
                anchor, extra);
  return head + escape(s) + "</text>\n";
}

std::string line(double x1, double y1, double x2, double y2, const char* colour, double w = 1) {
  char buf[200];
  std::snprintf(buf, sizeof buf,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                "stroke-width=\"%.1f\"/>\n",
                x1, y1, x2, y2, colour, w);
  return buf;
}

// Maps [lo, hi] (log or linear) onto [a, b].
struct Scale {
  double lo, hi, a, b;
  bool log;
  double operator()(double v) const {
    const double t =
        log ? (std::log10(std::max(v, lo)) - std::log10(lo)) / (std::log10(hi) - std::log10(lo))
            : (v - lo) / (hi - lo);
    return a + t * (b - a);
  }
};

// A round step (1, 2 or 5 times a power of ten) giving about five ticks.
double nice_step(double range) {
  const double raw = range / 5;
  const double magnitude = std::pow(10, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0}) {
    if (m * magnitude >= raw) return m * magnitude;
  }
  return 10 * magnitude;
}

// Decades (log) or round steps (linear) between lo and hi.
std::vector<double> ticks(double lo, double hi, bool log) {
  std::vector<double> t;
  if (log) {
    for (double v = std::pow(10, std::floor(std::log10(lo))); v <= hi * 1.0001; v *= 10) {
      if (v >= lo * 0.9999) t.push_back(v);
    }
  } else {
    const double step = nice_step(hi - lo);
    for (double v = lo; v <= hi * 1.0001; v += step) t.push_back(v);
  }
  return t;
}

std::string tick_label(double v) {
  char buf[32];
  if (v >= 1e6) {
    std::snprintf(buf, sizeof buf, "%gM", v / 1e6);
  } else if (v >= 1e3) {
    std::snprintf(buf, sizeof buf, "%gk", v / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%g", v);
  }
  return buf;
}

}  // namespace

std::string render_chart(const std::string& title, const std::vector<BarGroup>& groups,
                         const std::vector<LinePanel>& panels) {
  // Bars: one shared log axis across groups, so lengths compare across rows.
  double lo = std::numeric_limits<double>::max(), hi = 0;
  std::size_t bars = 0;
  for (const auto& g : groups) {
    for (const auto& b : g.bars) {
      if (b.value <= 0) continue;
      lo = std::min(lo, b.value);
      hi = std::max(hi, b.value);
      ++bars;
    }
  }
  if (bars == 0) lo = 1, hi = 10;
  lo = std::pow(10, std::floor(std::log10(lo)));
  hi = std::pow(10, std::ceil(std::log10(hi)));
  const double bars_top = 60;
  const double bars_height =
      static_cast<double>(bars) * (kBarHeight + 3) + static_cast<double>(groups.size()) * 22;
  const double panels_top = bars_top + bars_height + 60;
  const std::size_t panel_rows = (panels.size() + 2) / 3;
  const double height = panels_top + static_cast<double>(panel_rows) * (kPanelHeight + 110) + 20;

  std::string svg;
  char head[256];
  std::snprintf(head, sizeof head,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" "
                "fill=\"white\"/>\n",
                kWidth, height);
  svg += head;
  svg += text(kWidth / 2, 24, title, "middle", 16, "font-weight=\"bold\"");
  svg += text(kWidth / 2, 42,
              "bars: cost per operation, log scale, shorter is better; fiberloop in orange",
              "middle", 11, "fill=\"#495057\"");

  const Scale x{lo, hi, kLabelWidth + 10, kWidth - 70, true};
  for (double t : ticks(lo, hi, true)) {
    svg += line(x(t), bars_top - 4, x(t), bars_top + bars_height, "#e9ecef");
    svg += text(x(t), bars_top - 8, tick_label(t), "middle", 10, "fill=\"#868e96\"");
  }
  double y = bars_top + 4;
  for (const auto& g : groups) {
    svg += text(10, y + 11, g.title, "start", 12, "font-weight=\"bold\"");
    y += 18;
    int peer = 0;
    for (const auto& b : g.bars) {
      if (b.value <= 0) continue;
      const char* colour = b.ours ? kOurs : kPeers[peer++ % 5];
      char rect[200];
      std::snprintf(rect, sizeof rect,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n",
                    x.a, y, std::max(1.0, x(b.value) - x.a), kBarHeight, colour);
      svg += rect;
      svg += text(kLabelWidth, y + 11, b.label, "end", 11);
      svg += text(x(b.value) + 4, y + 11, num(b.value), "start", 10);
      y += kBarHeight + 3;
    }
    y += 4;
  }

  // Line panels, three per row.
  for (std::size_t i = 0; i < panels.size(); ++i) {
    const LinePanel& p = panels[i];
    const double left = 60 + static_cast<double>(i % 3) * (kPanelWidth + 20);
    const double top = panels_top + static_cast<double>(i / 3) * (kPanelHeight + 110);
    double xl = std::numeric_limits<double>::max(), xh = 0, yl = std::numeric_limits<double>::max(),
           yh = 0;
    for (const auto& s : p.series) {
      for (auto [px, py] : s.points) {
        xl = std::min(xl, px), xh = std::max(xh, px);
        yl = std::min(yl, py), yh = std::max(yh, py);
      }
    }
    if (xh <= xl) xh = xl + 1;
    if (p.log_x)
      xl = std::pow(10, std::floor(std::log10(xl))), xh = std::pow(10, std::ceil(std::log10(xh)));
    if (p.log_y) {
      yl = std::pow(10, std::floor(std::log10(yl)));
      yh = std::pow(10, std::ceil(std::log10(yh)));
    } else {
      yl = 0;
      const double step = nice_step(yh * 1.1);
      yh = std::ceil(yh * 1.1 / step) * step;
    }
    if (yh <= yl) yh = yl + 1;
    const Scale sx{xl, xh, left, left + kPanelWidth - 30, p.log_x};
    const Scale sy{yl, yh, top + kPanelHeight, top + 20, p.log_y};
    svg += text(left - 40, top - 6, p.title, "start", 12, "font-weight=\"bold\"");
    svg += line(sx.a, sy.a, sx.b, sy.a, "#868e96");
    svg += line(sx.a, sy.a, sx.a, sy.b, "#868e96");
    for (double t : ticks(xl, xh, p.log_x)) {
      svg += line(sx(t), sy.a, sx(t), sy.a + 4, "#868e96");
      svg += text(sx(t), sy.a + 15, tick_label(t), "middle", 10, "fill=\"#868e96\"");
    }
    for (double t : ticks(yl, yh, p.log_y)) {
      svg += line(sx.a - 4, sy(t), sx.a, sy(t), "#868e96");
      svg += text(sx.a - 6, sy(t) + 3, tick_label(t), "end", 10, "fill=\"#868e96\"");
    }
    svg += text((sx.a + sx.b) / 2, sy.a + 30, p.x_label, "middle", 10);
    svg += text(sx.a + 4, sy.b - 6, p.y_label, "start", 10, "fill=\"#495057\"");
    int peer = 0;
    double legend_y = sy.a + 46;
    for (const auto& s : p.series) {
      const char* colour = s.ours ? kOurs : kPeers[peer++ % 5];
      std::string pts;
      for (auto [px, py] : s.points) {
        char b[48];
        std::snprintf(b, sizeof b, "%.1f,%.1f ", sx(px), sy(py));
        pts += b;
        char dot[128];
        std::snprintf(dot, sizeof dot, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
                      sx(px), sy(py), colour);
        svg += dot;
      }
      svg += "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"" + std::string(colour) +
             "\" points=\"" + pts + "\"/>\n";
      svg += line(sx.a, legend_y - 4, sx.a + 14, legend_y - 4, colour, 2);
      svg += text(sx.a + 18, legend_y, s.label, "start", 10);
      legend_y += 14;
    }
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace fiberloop::bench
