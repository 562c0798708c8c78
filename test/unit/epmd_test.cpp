#include <doctest/doctest.h>

#include "chat/epmd/protocol.hpp"
#include "hex.hpp"

using namespace chat::epmd;

TEST_SUITE("epmd") {
  TEST_CASE("ALIVE2_REQ layout") {
    // <<Len:16, 120, Port:16, 77, 0, 6:16, 5:16, NLen:16, Name, 0:16>>
    CHECK(test::hex(alive2_request("moebi", 0x1234, 6, 5)) == "0012" "78" "1234" "4d" "00" "0006" "0005" "0005" "6d6f656269" "0000");
  }

  TEST_CASE("PORT_PLEASE2 and NAMES requests") {
    CHECK(test::hex(port_please2_request("kate")) == "0005" "7a" "6b617465");
    CHECK(test::hex(names_request()) == "0001" "6e");
  }

  TEST_CASE("ALIVE2 replies, old and new") {
    size_t used = 0;
    CHECK(std::holds_alternative<NeedMore>(parse_alive2_reply(test::unhex("7600"), &used)));
    auto x = parse_alive2_reply(test::unhex("760064c82c01"), &used);
    REQUIRE(std::holds_alternative<Registered>(x));
    CHECK(std::get<Registered>(x).creation == 0x64c82c01U);
    CHECK(used == 6);
    auto old = parse_alive2_reply(test::unhex("79000003"), &used);
    REQUIRE(std::holds_alternative<Registered>(old));
    CHECK(std::get<Registered>(old).creation == 3U);
    CHECK(std::holds_alternative<Refused>(parse_alive2_reply(test::unhex("760100000000"), &used)));
    CHECK(std::holds_alternative<Malformed>(parse_alive2_reply(test::unhex("4142"), &used)));
  }

  TEST_CASE("PORT2_RESP parsed from any prefix") {
    const std::string reply = test::unhex("7700" "b3a1" "4d" "00" "0006" "0005" "0004" "6b617465" "0000");
    for (size_t n = 0; n < reply.size(); ++n) {
      CHECK(std::holds_alternative<NeedMore>(parse_port2_reply(reply.substr(0, n))));
    }
    auto r = parse_port2_reply(reply);
    REQUIRE(std::holds_alternative<NodePort>(r));
    CHECK(std::get<NodePort>(r).port == 0xb3a1);
    CHECK(std::get<NodePort>(r).highest == 6);
    CHECK(std::get<NodePort>(r).name == "kate");
    CHECK(std::holds_alternative<NotFound>(parse_port2_reply(test::unhex("7701"))));
    CHECK(std::holds_alternative<Malformed>(parse_port2_reply(test::unhex("0000"))));
  }

  TEST_CASE("NAMES reply lines") {
    const std::string reply = test::unhex("00001111") + "name kate at port 4001\nname moebi at port 4002\ngarbage\nname x at port 99999\n";
    auto names = parse_names_reply(reply);
    REQUIRE(names.size() == 2);
    CHECK(names[0].first == "kate");
    CHECK(names[0].second == 4001);
    CHECK(names[1].first == "moebi");
  }
}
