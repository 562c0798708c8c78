#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <limits>
#include <string>

#include "chat/app/prometheus.hpp"
#include "chat/net/turn_stats.hpp"

namespace pm = chat::app::prometheus;

TEST_SUITE("prometheus") {
  TEST_CASE("a family is its HELP and TYPE lines, then its samples") {
    pm::Writer w;
    w.family("chat_tasks_started_total", pm::Type::kCounter, "Tasks started.");
    w.sample(uint64_t{42});
    w.family("chat_dist_connections", pm::Type::kGauge, "Connections up.");
    w.sample(uint64_t{2}, {{"kind", "beam"}, {"direction", "incoming"}});
    w.sample(uint64_t{0}, {{"kind", "cpp"}, {"direction", "outgoing"}});
    CHECK(w.take() ==
          "# HELP chat_tasks_started_total Tasks started.\n"
          "# TYPE chat_tasks_started_total counter\n"
          "chat_tasks_started_total 42\n"
          "# HELP chat_dist_connections Connections up.\n"
          "# TYPE chat_dist_connections gauge\n"
          "chat_dist_connections{kind=\"beam\",direction=\"incoming\"} 2\n"
          "chat_dist_connections{kind=\"cpp\",direction=\"outgoing\"} 0\n");
    CHECK(w.take().empty());
  }

  TEST_CASE("counters keep every digit of a 64-bit value") {
    pm::Writer w;
    w.family("x_total", pm::Type::kCounter, "h");
    w.sample(std::numeric_limits<uint64_t>::max());
    CHECK(w.take().find("x_total 18446744073709551615\n") != std::string::npos);
  }

  TEST_CASE("doubles: shortest exact form, and the special values' spelling") {
    pm::Writer w;
    w.family("g", pm::Type::kGauge, "h");
    w.sample(12.5);
    w.sample(0.1);
    w.sample(std::numeric_limits<double>::quiet_NaN());
    w.sample(std::numeric_limits<double>::infinity());
    w.sample(-std::numeric_limits<double>::infinity());
    const std::string out = w.take();
    CHECK(out.find("g 12.5\ng 0.1\ng NaN\ng +Inf\ng -Inf\n") != std::string::npos);
  }

  TEST_CASE("label values from peers are escaped; nothing they hold ends the line or the value") {
    CHECK(pm::escape_label_value("moebi@10.0.0.5") == "moebi@10.0.0.5");
    CHECK(pm::escape_label_value("a\"b") == "a\\\"b");
    CHECK(pm::escape_label_value("a\\b") == "a\\\\b");
    CHECK(pm::escape_label_value("a\nb") == "a\\nb");
    CHECK(pm::escape_label_value("\"}\n x 1") == "\\\"}\\n x 1");
    pm::Writer w;
    w.family("chat_node_info", pm::Type::kGauge, "h");
    w.sample(uint64_t{1}, {{"node", "evil\"} 9\nchat_fake 1"}});
    const std::string out = w.take();
    CHECK(out.find("chat_node_info{node=\"evil\\\"} 9\\nchat_fake 1\"} 1\n") != std::string::npos);
    CHECK(out.find("\nchat_fake") == std::string::npos);
  }

  TEST_CASE("HELP text escapes backslash and line feed only") {
    CHECK(pm::escape_help("a \"quoted\" \\ word\nnext") == "a \"quoted\" \\\\ word\\nnext");
  }

  TEST_CASE("a histogram: cumulative buckets, +Inf last, then _sum and _count") {
    pm::Writer w;
    w.family("chat_loop_turn_seconds", pm::Type::kHistogram, "Turns.");
    const std::array<double, 2> bounds{0.0001, 0.01};
    const std::array<uint64_t, 3> counts{5, 0, 2};
    w.histogram(bounds, counts, 1.5);
    w.family("next", pm::Type::kGauge, "h");
    w.sample(uint64_t{1});
    CHECK(w.take() ==
          "# HELP chat_loop_turn_seconds Turns.\n"
          "# TYPE chat_loop_turn_seconds histogram\n"
          "chat_loop_turn_seconds_bucket{le=\"0.0001\"} 5\n"
          "chat_loop_turn_seconds_bucket{le=\"0.01\"} 5\n"
          "chat_loop_turn_seconds_bucket{le=\"+Inf\"} 7\n"
          "chat_loop_turn_seconds_sum 1.5\n"
          "chat_loop_turn_seconds_count 7\n"
          "# HELP next h\n"
          "# TYPE next gauge\n"
          "next 1\n");
  }

  TEST_CASE("a float sample is the shortest text that reads back as the same double") {
    CHECK(pm::number(0.1 + 0.2) == "0.30000000000000004");
    CHECK(pm::number(1e20) == "1e+20");
    CHECK(pm::number(-2.5e-7) == "-2.5e-07");
    CHECK(pm::number(0.0) == "0");
    CHECK(pm::number(std::numeric_limits<double>::max()) == "1.7976931348623157e+308");
    CHECK(pm::number(std::numeric_limits<double>::denorm_min()) == "5e-324");
  }

  TEST_CASE("histogram bounds are written in fixed notation, every digit they need") {
    pm::Writer w;
    w.family("h", pm::Type::kHistogram, "h");
    const std::array<double, 3> bounds{0.00001, 0.00025, 2.5};
    const std::array<uint64_t, 4> counts{1, 0, 0, 0};
    w.histogram(bounds, counts, 0.0);
    const std::string out = w.take();
    CHECK(out.find("h_bucket{le=\"0.00001\"} 1\n") != std::string::npos);
    CHECK(out.find("h_bucket{le=\"0.00025\"} 1\n") != std::string::npos);
    CHECK(out.find("h_bucket{le=\"2.5\"} 1\n") != std::string::npos);
  }

  TEST_CASE("loop turns fall in the bucket of the first bound they do not pass") {
    chat::net::TurnStats t;
    t.record(100'000);      // exactly 100 us: the first bucket
    t.record(100'001);      // just over: the second
    t.record(12'000'000);   // 12 ms: under 25 ms
    t.record(3'000'000'000);  // 3 s: past every bound
    CHECK(t.counts[0] == 1);
    CHECK(t.counts[1] == 1);
    CHECK(t.counts[7] == 1);
    CHECK(t.counts.back() == 1);
    CHECK(t.turns == 4);
    CHECK(t.longest_ns == 3'000'000'000);
    CHECK(t.busy_ns == 3'012'200'001);
    CHECK(t.longer_than_us(1'000) == 2);
    CHECK(t.longer_than_us(10'000) == 2);
    CHECK(t.longer_than_us(25'000) == 1);
    CHECK(t.longer_than_us(1'000'000) == 1);
  }
}
