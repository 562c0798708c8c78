#include "chat/app/prometheus.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace chat::app::prometheus {

namespace {

// The fewest digits that read back as `value`, in printf's %g ('g') or %f ('f') notation.
// Not std::to_chars: its floating-point half pulls libstdc++'s Ryu tables and a libm
// dependency into chat-node, which every idle node then maps (about 0.3 MB of RSS).
std::string shortest(double value, char conversion) {
  char buf[400];
  for (int digits = conversion == 'g' ? 1 : 0; digits <= 17; ++digits) {
    const int n = conversion == 'g' ? std::snprintf(buf, sizeof buf, "%.*g", digits, value)
                                    : std::snprintf(buf, sizeof buf, "%.*f", digits, value);
    if (n > 0 && static_cast<size_t>(n) < sizeof buf && std::strtod(buf, nullptr) == value) {
      return {buf, static_cast<size_t>(n)};
    }
  }
  const int n = std::snprintf(buf, sizeof buf, "%.17g", value);
  return {buf, static_cast<size_t>(std::max(n, 0))};
}

}  // namespace

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (const char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (const char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Writer::family(std::string_view name, Type type, std::string_view help) {
  name_ = name;
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += escape_help(help);
  out_ += "\n# TYPE ";
  out_ += name;
  switch (type) {
    case Type::kCounter: out_ += " counter\n"; break;
    case Type::kGauge: out_ += " gauge\n"; break;
    case Type::kHistogram: out_ += " histogram\n"; break;
  }
}

void Writer::sample_start(const Labels& labels) {
  out_ += name_;
  if (labels.empty()) return;
  out_ += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out_ += ',';
    first = false;
    out_ += k;
    out_ += "=\"";
    out_ += escape_label_value(v);
    out_ += '"';
  }
  out_ += '}';
}

void Writer::sample(uint64_t value, const Labels& labels) {
  sample_start(labels);
  out_ += ' ';
  out_ += std::to_string(value);
  out_ += '\n';
}

void Writer::histogram(std::span<const double> upper_bounds, std::span<const uint64_t> counts, double sum) {
  const std::string family = name_;
  uint64_t total = 0;
  name_ = family + "_bucket";
  for (size_t i = 0; i < counts.size(); ++i) {
    total += counts[i];
    std::string le = "+Inf";
    if (i < upper_bounds.size()) {
      // Fixed notation ("0.0001", not "1e-04"): how Prometheus' own clients write bounds.
      le = shortest(upper_bounds[i], 'f');
    }
    sample(total, {{"le", le}});
  }
  name_ = family + "_sum";
  sample(sum);
  name_ = family + "_count";
  sample(total);
  name_ = family;
}

void Writer::sample(double value, const Labels& labels) {
  sample_start(labels);
  out_ += ' ';
  out_ += number(value);
  out_ += '\n';
}

std::string number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return shortest(value, 'g');
}

}  // namespace chat::app::prometheus
