#include "chat/dist/handshake.hpp"

#include <openssl/md5.h>

#include "chat/dist/bytes.hpp"

namespace chat::dist {
namespace {

constexpr size_t kMaxMessage = 2048;  // names are at most 255 UTF-8 characters
constexpr size_t kMaxNodeName = 1020;

bool valid_node_name(std::string_view name) {
  const auto at = name.find('@');
  return !name.empty() && name.size() <= kMaxNodeName && at != std::string_view::npos && at > 0 &&
         at + 1 < name.size();
}

}  // namespace

std::string Handshake::digest(uint32_t challenge, const std::string& cookie) {
  // MD5(Cookie ++ integer_to_list(Challenge)), the challenge as an unsigned decimal.
  const std::string input = cookie + std::to_string(challenge);
  unsigned char md[MD5_DIGEST_LENGTH];
  // OpenSSL 3 deprecates the low-level digests for EVP, but EVP_Digest fetches MD5 from a
  // provider: the first handshake would initialise the library context and the default
  // provider with its whole algorithm table (about 1 MB resident, and all of libcrypto.a in
  // a static binary). MD5_Init/Update/Final are the same digest without any of that.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  MD5_CTX ctx;
  MD5_Init(&ctx);
  MD5_Update(&ctx, input.data(), input.size());
  MD5_Final(md, &ctx);
#pragma GCC diagnostic pop
  return std::string(reinterpret_cast<const char*>(md), sizeof md);
}

Handshake::Handshake(Role role, HandshakeConfig config)
    : state_(role == Role::kInitiator ? State::kAwaitStatus : State::kAwaitName), config_(std::move(config)) {
  if (role == Role::kInitiator) {
    // send_name, version 6: 'N', Flags:64, Creation:32, NLen:16, Name
    std::string m = "N";
    put_u64(m, config_.our_flags);
    put_u32(m, config_.our_creation);
    put_u16(m, static_cast<uint16_t>(config_.our_name.size()));
    m += config_.our_name;
    send(m);
  }
}

void Handshake::send(std::string_view msg) {
  put_u16(out_, static_cast<uint16_t>(msg.size()));
  out_ += msg;
}

Handshake::Result Handshake::fail(std::string why) {
  state_ = State::kFailed;
  error_ = std::move(why);
  return Result::kFailed;
}

bool Handshake::accept_flags(uint64_t theirs) {
  if ((theirs & config_.required_flags) != config_.required_flags) return false;
  peer_.flags = theirs & config_.our_flags;
  peer_.offered = theirs;
  return true;
}

Handshake::Result Handshake::feed(std::string_view bytes) {
  if (state_ == State::kFailed) return Result::kFailed;
  in_.append(bytes);
  while (state_ != State::kDone) {
    const std::string_view avail = std::string_view(in_).substr(read_);
    if (avail.size() < 2) return Result::kNeedMore;
    const size_t len = get_u16(avail, 0);
    if (len == 0 || len > kMaxMessage) return fail("handshake message of length " + std::to_string(len));
    if (avail.size() < 2 + len) return Result::kNeedMore;
    read_ += 2 + len;
    const Result r = step(avail.substr(2, len));
    if (r == Result::kFailed) return r;
  }
  return Result::kDone;
}

Handshake::Result Handshake::step(std::string_view msg) {
  switch (state_) {
    case State::kAwaitStatus: return on_status(msg);
    case State::kAwaitChallenge: return on_challenge(msg);
    case State::kAwaitAck: return on_ack(msg);
    case State::kAwaitName: return on_name(msg);
    case State::kAwaitAliveAnswer: return on_alive_answer(msg);
    case State::kAwaitComplement: return on_complement(msg);
    case State::kAwaitReply: return on_reply(msg);
    case State::kDone:
    case State::kFailed: break;
  }
  return fail("handshake message after the end");
}

// --- initiator -----------------------------------------------------------------------------

Handshake::Result Handshake::on_status(std::string_view msg) {
  if (msg.empty() || msg[0] != 's') return fail("expected status");
  const auto status = msg.substr(1);
  if (status == "ok" || status == "ok_simultaneous") {
    state_ = State::kAwaitChallenge;
    return Result::kNeedMore;
  }
  if (status == "alive") {
    // The peer still holds a connection from us that we no longer have: tell it to drop it.
    send("strue");
    state_ = State::kAwaitChallenge;
    return Result::kNeedMore;
  }
  // nok: the peer is connecting to us at the same time and its connection wins (the greater
  // name's does); ours is to be dropped, not reported as a failure.
  if (status == "nok") peer_connects_ = true;
  return fail("peer refused the connection: " + std::string(status));
}

Handshake::Result Handshake::on_challenge(std::string_view msg) {
  // 'N', Flags:64, Challenge:32, Creation:32, NLen:16, Name
  if (msg.size() < 19 || msg[0] != 'N') return fail("malformed challenge");
  const uint64_t flags = get_u64(msg, 1);
  const uint32_t challenge = get_u32(msg, 9);
  peer_.creation = get_u32(msg, 13);
  const size_t nlen = get_u16(msg, 17);
  if (msg.size() != 19 + nlen) return fail("malformed challenge name");
  peer_.name = std::string(msg.substr(19));
  if (!valid_node_name(peer_.name)) return fail("invalid peer name");
  if (!accept_flags(flags)) return fail("peer lacks required distribution flags");
  our_challenge_ = config_.random32();
  // send_challenge_reply: 'r', Challenge:32, Digest:16
  std::string m = "r";
  put_u32(m, our_challenge_);
  m += digest(challenge, config_.cookie);
  send(m);
  state_ = State::kAwaitAck;
  return Result::kNeedMore;
}

Handshake::Result Handshake::on_ack(std::string_view msg) {
  // recv_challenge_ack: 'a', Digest:16
  if (msg.size() != 17 || msg[0] != 'a') return fail("malformed challenge ack");
  if (msg.substr(1) != digest(our_challenge_, config_.cookie)) {
    cookie_mismatch_ = true;
    return fail("peer's cookie digest does not match ours");
  }
  state_ = State::kDone;
  return Result::kDone;
}

// --- acceptor ------------------------------------------------------------------------------

Handshake::Result Handshake::on_name(std::string_view msg) {
  bool old_name = false;
  uint64_t flags = 0;
  if (msg.size() >= 15 && msg[0] == 'N') {
    // 'N', Flags:64, Creation:32, NLen:16, Name
    flags = get_u64(msg, 1);
    peer_.creation = get_u32(msg, 9);
    const size_t nlen = get_u16(msg, 13);
    if (msg.size() != 15 + nlen) return fail("malformed name");
    peer_.name = std::string(msg.substr(15));
  } else if (msg.size() >= 7 && msg[0] == 'n') {
    // Version 5: 'n', Version:16, Flags:32, Name. Only OTP 23+ peers (HANDSHAKE_23) are
    // accepted; they complete their flags with a 'c' message after our challenge.
    flags = get_u32(msg, 3);
    peer_.name = std::string(msg.substr(7));
    old_name = true;
    if ((flags & flag_handshake23()) == 0) return fail("peer too old (no HANDSHAKE_23)");
  } else {
    return fail("malformed name");
  }
  if (!valid_node_name(peer_.name)) return fail("invalid peer name");
  if (!old_name && !accept_flags(flags)) return fail("peer lacks required distribution flags");
  if (old_name) peer_.flags = flags;  // completed by the complement

  const Admission admission = config_.admit ? config_.admit(peer_.name) : Admission::kOk;
  switch (admission) {
    case Admission::kOk: send("sok"); break;
    case Admission::kOkSimultaneous: send("sok_simultaneous"); break;
    case Admission::kNok: send("snok"); return fail("simultaneous connection from " + peer_.name);
    case Admission::kNotAllowed: send("snot_allowed"); return fail("not allowed: " + peer_.name);
    case Admission::kAlive:
      send("salive");
      old_name_ = old_name;
      state_ = State::kAwaitAliveAnswer;
      return Result::kNeedMore;
  }
  state_ = old_name ? State::kAwaitComplement : State::kAwaitReply;
  return send_challenge();
}

Handshake::Result Handshake::on_alive_answer(std::string_view msg) {
  if (msg != "strue") return fail("peer kept its existing connection");
  state_ = old_name_ ? State::kAwaitComplement : State::kAwaitReply;
  return send_challenge();
}

Handshake::Result Handshake::send_challenge() {
  our_challenge_ = config_.random32();
  std::string m = "N";
  put_u64(m, config_.our_flags);
  put_u32(m, our_challenge_);
  put_u32(m, config_.our_creation);
  put_u16(m, static_cast<uint16_t>(config_.our_name.size()));
  m += config_.our_name;
  send(m);
  return Result::kNeedMore;
}

Handshake::Result Handshake::on_complement(std::string_view msg) {
  // send_complement: 'c', FlagsHigh:32, Creation:32
  if (msg.size() != 9 || msg[0] != 'c') return fail("malformed complement");
  const uint64_t flags = (uint64_t{get_u32(msg, 1)} << 32) | (peer_.flags & 0xffffffffULL);
  peer_.creation = get_u32(msg, 5);
  if (!accept_flags(flags)) return fail("peer lacks required distribution flags");
  state_ = State::kAwaitReply;
  return Result::kNeedMore;
}

Handshake::Result Handshake::on_reply(std::string_view msg) {
  // recv_challenge_reply: 'r', Challenge:32, Digest:16
  if (msg.size() != 21 || msg[0] != 'r') return fail("malformed challenge reply");
  const uint32_t their_challenge = get_u32(msg, 1);
  if (msg.substr(5) != digest(our_challenge_, config_.cookie)) {
    cookie_mismatch_ = true;
    return fail("peer's cookie digest does not match ours");
  }
  // send_challenge_ack: 'a', Digest:16
  send("a" + digest(their_challenge, config_.cookie));
  state_ = State::kDone;
  return Result::kDone;
}

}  // namespace chat::dist
