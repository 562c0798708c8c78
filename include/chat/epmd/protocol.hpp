// The EPMD protocol (erts "Distribution Protocol" chapter, section "EPMD Protocol"), pure:
// request encoders and incremental reply parsers. Requests are <<Len:16, Request>>.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace chat::epmd {

inline constexpr uint8_t kAlive2Req = 120;
inline constexpr uint8_t kAlive2Resp = 121;
inline constexpr uint8_t kAlive2XResp = 118;  // OTP 23+: 32-bit creation
inline constexpr uint8_t kPortPlease2Req = 122;
inline constexpr uint8_t kPort2Resp = 119;
inline constexpr uint8_t kNamesReq = 110;
inline constexpr uint8_t kNodeTypeNormal = 77;
inline constexpr uint8_t kProtocolTcp = 0;

struct NeedMore {};
struct Malformed {};

std::string alive2_request(std::string_view alive, uint16_t port, uint16_t highest, uint16_t lowest);
std::string port_please2_request(std::string_view alive);
std::string names_request();

struct Registered {
  uint32_t creation;
};
struct Refused {
  uint8_t code;
};
using Alive2Reply = std::variant<NeedMore, Malformed, Registered, Refused>;
// The reply to ALIVE2_REQ; `consumed` tells how many bytes it took.
Alive2Reply parse_alive2_reply(std::string_view data, size_t* consumed);

struct NodePort {
  uint16_t port;
  uint8_t node_type;
  uint8_t protocol;
  uint16_t highest;
  uint16_t lowest;
  std::string name;
};
struct NotFound {};
using Port2Reply = std::variant<NeedMore, Malformed, NodePort, NotFound>;
Port2Reply parse_port2_reply(std::string_view data);

// NAMES_RESP is <<EpmdPort:32, Text>> until EPMD closes; Text has lines "name N at port P".
// Unparsable lines are skipped.
std::vector<std::pair<std::string, uint16_t>> parse_names_reply(std::string_view data);

}  // namespace chat::epmd
