// One distribution connection: (resolve → EPMD → connect →) handshake → frames and ticks.
// Owned by Network; it reports its end to Network and is freed later, outside its callbacks.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "chat/dist/framing.hpp"
#include "chat/dist/handshake.hpp"
#include "chat/net/stream.hpp"

namespace chat::net {

class Network;

class Connection final : Stream::Events {
 public:
  enum class Role { kInitiator, kAcceptor };
  enum class State { kResolving, kAskingEpmd, kConnecting, kHandshake, kUp, kClosed };

  // Initiator: find `peer` through its host's EPMD and connect.
  Connection(Network& net, std::string peer);
  // Acceptor: a stream the listener accepted.
  Connection(Network& net, Stream* accepted);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() override;

  void queue(const term::Term& control, const term::Term* payload);
  void queue(const dist::SendParts& send, const term::Term& payload);
  // Hands frames queued before the handshake to another connection (simultaneous connect).
  term::ChunkList take_queued();
  void add_queued(term::ChunkList frames);
  // Ends the connection; `notify` reports it to Network (which tells the node).
  void close(const std::string& why, bool notify = true);
  void tick(uint64_t now_ms);
  // Stops reading until the network's gate opens (backpressure; see InputGate).
  void pause();
  // The peer's DEMONITOR_P is due (node::Transport::demonitor_due): until more than it has
  // arrived, the loop need not wake for this connection.
  void demonitor_due();
  // Once the turn's writes are out: raises the socket's low-water mark past a due demonitor,
  // or lowers it back.
  void settle_low_water();
  [[nodiscard]] bool paused() const { return paused_; }

  [[nodiscard]] Role role() const { return role_; }
  [[nodiscard]] State state() const { return state_; }
  [[nodiscard]] const std::string& peer() const { return peer_; }
  [[nodiscard]] uint64_t flags() const { return flags_; }
  [[nodiscard]] uint64_t offered_flags() const { return offered_flags_; }
  [[nodiscard]] bool up() const { return state_ == State::kUp; }
  [[nodiscard]] uint64_t up_since_ms() const { return up_since_ms_; }
  // "TLSv1.3 TLS_AES_256_GCM_SHA384, peer /CN=..." under TLS, else empty.
  [[nodiscard]] std::string tls_summary() const;
  // Bytes waiting for the socket: frames queued before the handshake and the stream's queue.
  [[nodiscard]] size_t queued_bytes() const;

 private:
  void resolved(const sockaddr_storage& host);
  void ask_epmd(const sockaddr_storage& host);
  void epmd_answered(const sockaddr_storage& host, const std::string& reply, const std::string& error);
  void start_handshake();
  void on_connected(Stream& s) override;
  void on_data(Stream& s, std::string_view bytes) override;
  std::span<char> read_area() override;
  void on_read_in_place(Stream& s, size_t n) override;
  void on_written(Stream& s) override;
  void on_closed(Stream& s, const std::string& why) override;
  void handshake_data(std::string_view bytes);
  void frames();
  // write(sink, form) appends one frame.
  template <typename Write>
  void queue_frame(const Write& write);
  // Charges input against this connection's share of the loop turn.
  void spend(size_t cost);
  // Whether the share has room for another frame: this connection's bytes, and the loop's
  // time (Runtime::turn_spent).
  bool has_share();
  void start_turn();
  // Stops reading for the rest of the turn; the next turn handles the frames left, then reads.
  void yield_turn();
  void write(std::string_view bytes);
  void after_write();
  void count_timeout();  // the setup timer fired: a connect or a handshake timed out
  void release_hold();   // back to waking for every byte (see demonitor_due)
  void settle_later();
  void learn_after_due(bool monitor, uint64_t now_us);

  Network& net_;
  Role role_;
  State state_;
  std::string peer_;
  Stream* stream_ = nullptr;
  std::optional<dist::Handshake> handshake_;
  dist::FrameReader reader_;
  term::ChunkList queued_;  // frames waiting for the handshake, in the pass-through form
  // Set by the handshake: DFLAG_DIST_HDR_ATOM_CACHE on both sides puts a distribution header
  // on every frame, each way, and the peer's frames name atoms from its cache.
  dist::FrameForm form_ = dist::FrameForm::kPassThrough;
  std::unique_ptr<dist::AtomCache> atom_cache_;
  // Counts down from a large frame over the small ones after it; while above zero, frames are
  // read one by one in place (read_area).
  uint8_t after_large_ = 0;
  bool first_bytes_ = true;  // of the handshake, to recognise a TLS peer on a plain port
  bool paused_ = false;
  bool yielded_ = false;  // reading stopped until the next loop turn (yield_turn)
  uint64_t turn_ = 0;
  size_t turn_cost_ = 0;
  uint32_t turn_frames_ = 0;
  bool costly_ = false;  // a frame since the clock was last read was more than a plain send
  bool overflowed_ = false;  // queued_ passed the limit: closing
  uint64_t flags_ = 0;
  uint64_t offered_flags_ = 0;
  uint64_t setup_timer_ = 0;
  // demonitor_due: the smallest DEMONITOR_P frame from this peer so far, its length included
  // (0: none yet).
  uint32_t demonitor_bytes_ = 0;
  // When the last demonitor fell due, in µs (0: the peer has sent more since), and the share
  // (of 256) of recent ones after which the peer's next frame came within the window worth
  // holding for (neither too late nor too soon: connection.cpp).
  uint64_t due_us_ = 0;
  uint16_t hold_share_ = 256;
  // A caller's next gen:call starts with its MONITOR_P, sent apart from the request: the
  // smallest such monitor (0: none yet), when the demonitor that the last one followed fell
  // due (0: none is waiting for its request), and the share (of 256) of recent dues after
  // which a monitor and then more came within the hold. While that share is high the mark also
  // covers the monitor, so that the loop wakes once, for the request.
  uint32_t monitor_bytes_ = 0;
  uint64_t monitor_due_us_ = 0;
  uint16_t deep_share_ = 0;
  bool demonitor_due_ = false;  // this turn answered a call: settle_low_water decides
  bool settle_queued_ = false;
  // The socket's low-water mark while raised past the demonitor (0: not raised), and the
  // timer that lowers it should nothing follow.
  uint32_t held_mark_ = 0;
  uint64_t hold_timer_ = 0;
  uint64_t last_read_ms_ = 0;
  uint64_t last_write_ms_ = 0;
  uint64_t up_since_ms_ = 0;
  // Asynchronous steps (DNS, EPMD) hold a weak copy and check it before touching us.
  std::shared_ptr<Connection*> token_;
};

}  // namespace chat::net
