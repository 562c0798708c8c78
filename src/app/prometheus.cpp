#include "chat/app/prometheus.hpp"

#include <charconv>
#include <cmath>

namespace chat::app::prometheus {

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
  out_ += type == Type::kCounter ? " counter\n" : " gauge\n";
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

void Writer::sample(double value, const Labels& labels) {
  sample_start(labels);
  out_ += ' ';
  if (std::isnan(value)) {
    out_ += "NaN";
  } else if (std::isinf(value)) {
    out_ += value > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, value);
    out_.append(buf, r.ptr);
  }
  out_ += '\n';
}

}  // namespace chat::app::prometheus
