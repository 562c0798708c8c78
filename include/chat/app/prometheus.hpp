// The Prometheus text exposition format, version 0.0.4 (what every Prometheus server scrapes;
// prometheus.io/docs/instrumenting/exposition_formats): per metric family a `# HELP` and a
// `# TYPE` line, then one `name{label="value",...} value` line per sample.
//
// Written here rather than taken from a library: the one C++ client Debian ships,
// prometheus-cpp, comes as shared libraries only, and one shared C++ library makes the whole
// C++ runtime shared again (CHAT_STATIC_DEPS) with the idle memory that costs. Its output is
// checked by a real parser (python3-prometheus-client) in test/deploy/metrics.sh.
// Sans-I/O: values in, text out. Label values may be anything (node names come from peers);
// they are escaped. Metric and label names are the program's own constants, written as they
// are ([a-zA-Z_:][a-zA-Z0-9_:]*; the parser in the test rejects anything else).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chat::app::prometheus {

inline constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

enum class Type { kCounter, kGauge, kHistogram };

using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

class Writer {
 public:
  // Starts a family: its HELP and TYPE lines. A counter's name ends in _total.
  void family(std::string_view name, Type type, std::string_view help);
  // One sample of the current family.
  void sample(uint64_t value, const Labels& labels = {});
  void sample(double value, const Labels& labels = {});
  // The samples of a histogram family: `counts` holds the observations per bucket, one more
  // than `upper_bounds` (the last bucket has no bound). Written as Prometheus wants them:
  // cumulative _bucket lines with their `le` label, +Inf last, then _sum and _count.
  void histogram(std::span<const double> upper_bounds, std::span<const uint64_t> counts, double sum);
  [[nodiscard]] std::string take() { return std::exchange(out_, {}); }

 private:
  void sample_start(const Labels& labels);

  std::string out_;
  std::string name_;
};

// Label values: backslash, double quote and line feed escaped.
std::string escape_label_value(std::string_view v);
// A value as the format spells it: the shortest exact form, NaN, +Inf, -Inf.
std::string number(double value);
// HELP text: backslash and line feed escaped.
std::string escape_help(std::string_view v);

}  // namespace chat::app::prometheus
