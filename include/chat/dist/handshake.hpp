// The distribution handshake, version 6 (OTP 23+), as a sans-I/O state machine: bytes in,
// bytes to send out, and finally the peer's name, flags and creation. The erts chapter
// "Distribution Protocol", section "Distribution Handshake", is the spec; its names (send_name,
// recv_status, send_challenge, …) are used below. Every message has a 2-byte length prefix.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace chat::dist {

// What an acceptor answers once it knows who is calling (recv_status of the initiator).
enum class Admission { kOk, kOkSimultaneous, kNok, kNotAllowed, kAlive };

struct HandshakeConfig {
  std::string our_name;
  uint64_t our_flags = 0;
  uint64_t required_flags = 0;
  uint32_t our_creation = 0;
  std::string cookie;
  std::function<uint32_t()> random32;                       // challenge source
  std::function<Admission(const std::string& peer)> admit;  // acceptor only
};

struct PeerInfo {
  std::string name;
  uint64_t flags = 0;    // negotiated: ours & theirs
  uint64_t offered = 0;  // what the peer advertised (tells a BEAM from other implementations)
  uint32_t creation = 0;
};

class Handshake {
 public:
  enum class Role { kInitiator, kAcceptor };
  enum class Result { kNeedMore, kDone, kFailed };

  // An initiator has its send_name ready in output() at once.
  Handshake(Role role, HandshakeConfig config);

  // Feeds received bytes. After kDone, bytes past the handshake are in leftover().
  Result feed(std::string_view bytes);
  // Bytes to write to the peer; the caller takes them.
  std::string take_output() { return std::exchange(out_, {}); }
  [[nodiscard]] bool has_output() const { return !out_.empty(); }

  [[nodiscard]] const PeerInfo& peer() const { return peer_; }
  [[nodiscard]] const std::string& error() const { return error_; }
  [[nodiscard]] std::string_view leftover() const { return std::string_view(in_).substr(read_); }
  // True once the peer proved it knows the cookie, or we learned it does not.
  [[nodiscard]] bool cookie_mismatch() const { return cookie_mismatch_; }
  // The initiator was told "nok": the peer's own simultaneous connection is the one to keep.
  [[nodiscard]] bool peer_connects() const { return peer_connects_; }
  // An initiator that sent its digest and waits for the peer's: a peer that hangs up here
  // did not accept our digest, which almost always means another cookie.
  [[nodiscard]] bool awaiting_ack() const { return state_ == State::kAwaitAck; }

  static std::string digest(uint32_t challenge, const std::string& cookie);

 private:
  enum class State {
    kAwaitStatus,         // initiator
    kAwaitChallenge,      // initiator
    kAwaitAck,            // initiator
    kAwaitName,           // acceptor
    kAwaitAliveAnswer,    // acceptor, after status "alive"
    kAwaitComplement,     // acceptor, peer sent an old 'n' name
    kAwaitReply,          // acceptor
    kDone,
    kFailed,
  };

  Result step(std::string_view msg);
  Result on_status(std::string_view msg);
  Result on_challenge(std::string_view msg);
  Result on_ack(std::string_view msg);
  Result on_name(std::string_view msg);
  Result on_alive_answer(std::string_view msg);
  Result on_complement(std::string_view msg);
  Result on_reply(std::string_view msg);
  Result send_challenge();
  Result fail(std::string why);
  void send(std::string_view msg);
  bool accept_flags(uint64_t theirs);

  State state_;
  HandshakeConfig config_;
  PeerInfo peer_;
  std::string in_;
  size_t read_ = 0;
  std::string out_;
  std::string error_;
  uint32_t our_challenge_ = 0;
  bool cookie_mismatch_ = false;
  bool peer_connects_ = false;
  bool old_name_ = false;  // the peer sent a version-5 'n' name: a 'c' complement follows
};

}  // namespace chat::dist
