// A small SVG writer for //bench:report's chart: horizontal bars on a log
// scale (one group per operation: fiberloop and its peers) and line panels
// (how a cost grows with fibers, timers or connections). No dependencies;
// the output opens in any browser.
#pragma once

#include <string>
#include <vector>

namespace fiberloop::bench {

struct Bar {
  std::string label;  // "Boost.Fiber yield"
  double value;       // in the group's unit
  bool ours;          // fiberloop's own bar (drawn in the accent colour)
};

struct BarGroup {
  std::string title;  // "yield between 2 fibers (ns)"
  std::vector<Bar> bars;
};

struct Series {
  std::string label;
  std::vector<std::pair<double, double>> points;  // (x, y)
  bool ours;
};

struct LinePanel {
  std::string title;
  std::string x_label;
  std::string y_label;
  bool log_x = true;
  bool log_y = false;
  std::vector<Series> series;
};

// The whole chart: the bar groups (one shared log axis), then the panels.
std::string render_chart(const std::string& title, const std::vector<BarGroup>& groups,
                         const std::vector<LinePanel>& panels);

}  // namespace fiberloop::bench
