#include "chat/epmd/protocol.hpp"

#include <charconv>

#include "chat/dist/bytes.hpp"

namespace chat::epmd {

using dist::get_u16;
using dist::get_u32;
using dist::put_u16;

namespace {
std::string framed(const std::string& body) {
  std::string out;
  put_u16(out, static_cast<uint16_t>(body.size()));
  return out + body;
}
}  // namespace

std::string alive2_request(std::string_view alive, uint16_t port, uint16_t highest, uint16_t lowest) {
  std::string b(1, static_cast<char>(kAlive2Req));
  put_u16(b, port);
  b.push_back(static_cast<char>(kNodeTypeNormal));
  b.push_back(static_cast<char>(kProtocolTcp));
  put_u16(b, highest);
  put_u16(b, lowest);
  put_u16(b, static_cast<uint16_t>(alive.size()));
  b += alive;
  put_u16(b, 0);  // no extra
  return framed(b);
}

std::string port_please2_request(std::string_view alive) {
  return framed(std::string(1, static_cast<char>(kPortPlease2Req)) + std::string(alive));
}

std::string names_request() { return framed(std::string(1, static_cast<char>(kNamesReq))); }

Alive2Reply parse_alive2_reply(std::string_view d, size_t* consumed) {
  if (d.size() < 2) return NeedMore{};
  const auto tag = static_cast<uint8_t>(d[0]);
  const auto result = static_cast<uint8_t>(d[1]);
  const size_t need = tag == kAlive2XResp ? 6 : tag == kAlive2Resp ? 4 : 0;
  if (need == 0) return Malformed{};
  if (d.size() < need) return NeedMore{};
  *consumed = need;
  if (result != 0) return Refused{result};
  return Registered{tag == kAlive2XResp ? get_u32(d, 2) : get_u16(d, 2)};
}

Port2Reply parse_port2_reply(std::string_view d) {
  if (d.size() < 2) return NeedMore{};
  if (static_cast<uint8_t>(d[0]) != kPort2Resp) return Malformed{};
  if (d[1] != 0) return NotFound{};
  // 119, 0, PortNo:16, NodeType, Protocol, Highest:16, Lowest:16, NLen:16, Name, ELen:16, Extra
  if (d.size() < 12) return NeedMore{};
  const size_t nlen = get_u16(d, 10);
  if (d.size() < 12 + nlen + 2) return NeedMore{};
  const size_t elen = get_u16(d, 12 + nlen);
  if (d.size() < 12 + nlen + 2 + elen) return NeedMore{};
  return NodePort{get_u16(d, 2), static_cast<uint8_t>(d[4]), static_cast<uint8_t>(d[5]), get_u16(d, 6),
                  get_u16(d, 8), std::string(d.substr(12, nlen))};
}

std::vector<std::pair<std::string, uint16_t>> parse_names_reply(std::string_view d) {
  std::vector<std::pair<std::string, uint16_t>> out;
  if (d.size() < 4) return out;
  std::string_view text = d.substr(4);
  constexpr std::string_view kName = "name ";
  constexpr std::string_view kAt = " at port ";
  while (!text.empty()) {
    const auto eol = text.find('\n');
    const auto line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
    if (line.substr(0, kName.size()) != kName) continue;
    const auto at = line.rfind(kAt);
    if (at == std::string_view::npos || at <= kName.size()) continue;
    const auto num = line.substr(at + kAt.size());
    uint16_t port = 0;
    auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), port);
    if (ec != std::errc{} || p != num.data() + num.size()) continue;
    out.emplace_back(std::string(line.substr(kName.size(), at - kName.size())), port);
  }
  return out;
}

}  // namespace chat::epmd
