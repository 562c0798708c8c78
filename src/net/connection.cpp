#include "chat/net/connection.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "chat/dist/constants.hpp"
#include "chat/dist/random.hpp"
#include "chat/net/network.hpp"

namespace chat::net {

namespace {

constexpr size_t kLargeFrame = 1U << 20U;
constexpr size_t kInPlaceMin = 64U << 10U;
// Input handled per connection per loop turn (at least one frame): a peer sending large
// frames back to back would otherwise have libuv read and handle up to 32 of them before the
// loop polls again, and a 64 KB read of small requests holds hundreds; everyone else waits
// that long. A frame costs its bytes plus kFrameCost (what handling it takes besides them).
// The share is also the loop's time (Runtime::turn_spent), which every connection and the
// dialling code spend together: what a frame starts varies a hundredfold (a spawn that looks
// a node up in EPMD connects a socket), and a share of frames of the costly kind would
// otherwise be milliseconds per connection.
constexpr size_t kTurnBytes = 1U << 20U;
constexpr size_t kFrameCost = 4U << 10U;
// Small frames after a large one before reads go back to sharing the loop's buffer.
constexpr uint8_t kSmallFramesAfterLarge = 8;

// How long a raised low-water mark waits for a due demonitor (Connection::demonitor_due): the
// most a message that comes alone instead of it can wait in the kernel. A demonitor is about
// 50 bytes; one over kHoldMaxBytes (a peer's odd encoding) is not worth holding for.
constexpr uint64_t kHoldMs = 10;
constexpr uint32_t kHoldMaxBytes = 512;
// Holding pays where the caller's next frame comes within kHoldMs (the loop wakes once for
// both); where it comes later, the timer wakes the loop instead of the demonitor, for nothing.
// So a connection holds while at least this share (of 256) of its recent calls was followed
// by more within kHoldMs, which it learns whether it held or not.
constexpr uint16_t kHoldShare = 128;
// Nor does it pay where the next frame comes sooner than this. Waking for the demonitor then
// costs a few µs, and it splits the pause into idle spans short enough that the CPU wakes
// fast: on the bench machine (a VM guest) a C echo server answers in 22-31 µs after pauses up
// to 0.15 ms and in 50-84 µs after 0.2-0.5 ms, and `:count` calls 0.2 ms apart had a p50 of
// 83 µs holding and 49 µs not (bench/gap_client.exs).
constexpr uint64_t kHoldMinUs = 500;

// An exponentially weighted share (of 256) of recent events that paid.
uint16_t learn_share(uint16_t share, bool paid) { return static_cast<uint16_t>((share * 7 + (paid ? 256 : 0)) / 8); }

// Keeps the smallest frame size seen (0: none yet).
void keep_smallest(uint32_t& smallest, uint32_t bytes) { smallest = smallest == 0 ? bytes : std::min(smallest, bytes); }

bool is_op(const term::Term& control, dist::Op want) {
  const auto* t = control.get<term::Tuple>();
  if (t == nullptr || t->items.empty()) return false;
  const auto* op = t->items[0].get<int64_t>();
  return op != nullptr && *op == static_cast<int64_t>(want);
}

uint32_t random32() {
  uint32_t v = 0;
  if (!dist::random_bytes(&v, sizeof v)) {
    // Without a challenge we cannot authenticate; refuse rather than use a weak one.
    throw std::runtime_error("no random bytes for the handshake challenge");
  }
  return v;
}

}  // namespace

Connection::Connection(Network& net, Stream* accepted)
    : net_(net),
      role_(Role::kAcceptor),
      state_(State::kHandshake),
      stream_(accepted),
      reader_(net.config().max_frame),
      token_(std::make_shared<Connection*>(this)) {
  stream_->set_events(this);
  setup_timer_ = net_.runtime().start(net_.config().setup_timeout_ms, [this] {
    setup_timer_ = 0;
    count_timeout();
    close("handshake timed out");
  });
  start_handshake();
  stream_->start_reading();
}

Connection::~Connection() {
  *token_ = nullptr;
  net_.connecting_bytes(0, queued_.size());
  if (setup_timer_) net_.runtime().cancel(setup_timer_);
  if (hold_timer_) net_.runtime().cancel(hold_timer_);
  if (stream_) stream_->close();
}

term::ChunkList Connection::take_queued() {
  net_.connecting_bytes(0, queued_.size());
  term::ChunkList out;
  out.splice(std::move(queued_));
  return out;
}

void Connection::add_queued(term::ChunkList frames) {
  net_.connecting_bytes(frames.size(), 0);
  queued_.splice(std::move(frames));
}

void Connection::start_handshake() {
  dist::HandshakeConfig cfg;
  cfg.our_name = net_.config().name;
  cfg.our_flags = net_.config().flags;
  cfg.required_flags = dist::flag::kRequired;
  cfg.our_creation = net_.node().creation();
  cfg.cookie = net_.config().cookie;
  cfg.random32 = random32;
  cfg.length_bytes = net_.uses_tls() ? 4 : 2;
  if (role_ == Role::kAcceptor) {
    // Named from its admission on: the network may hold it under that name from then, and a
    // handshake that dies later (the peer hangs up, the setup timer) must be removed by it.
    cfg.admit = [this](const std::string& peer) {
      peer_ = peer;
      return net_.admit(*this, peer);
    };
  }
  handshake_.emplace(role_ == Role::kInitiator ? dist::Handshake::Role::kInitiator : dist::Handshake::Role::kAcceptor,
                     std::move(cfg));
  if (handshake_->has_output()) write(handshake_->take_output());
}

void Connection::on_connected(Stream& /*s*/) {
  state_ = State::kHandshake;
  start_handshake();
}

void Connection::write(std::string_view bytes) {
  if (stream_ == nullptr) return;
  net_.counters().bytes_out += bytes.size();
  stream_->write(bytes);
  after_write();
}

void Connection::after_write() {
  last_write_ms_ = net_.runtime().now_ms();
  // A peer that does not read cannot make us hold unbounded memory. Dropping messages would
  // lose them silently; disconnecting tells every linked and monitoring process instead.
  if (stream_->queued_bytes() > net_.config().max_queue) {
    spdlog::warn("peer {} is not reading: {} bytes queued for it; disconnecting", peer_, stream_->queued_bytes());
    close("outgoing queue over its limit");
  }
}

void Connection::on_data(Stream& /*s*/, std::string_view bytes) {
  if (held_mark_ != 0) settle_later();
  net_.counters().bytes_in += bytes.size();
  last_read_ms_ = net_.runtime().now_ms();
  net_.runtime().note_activity();
  if (state_ == State::kHandshake) {
    handshake_data(bytes);
    return;
  }
  if (state_ != State::kUp) return;
  reader_.feed(bytes);
  frames();
}

std::span<char> Connection::read_area() {
  // Only the rest of a large frame is worth its own read: small reads share the loop's buffer
  // so an idle connection holds no read buffer of its own. While large frames are arriving,
  // each frame is read on its own (its length, then the rest in place): two reads per frame
  // instead of one, and not a byte of a large frame copied.
  if (state_ != State::kUp) return {};
  // One read takes at most a turn's share (spend), so a large frame arrives over turns.
  auto area = after_large_ == 0 ? reader_.direct_area(kInPlaceMin) : reader_.direct_area(0);
  if (area.empty() && after_large_ != 0) area = reader_.header_area();
  return area.first(std::min(area.size(), kTurnBytes));
}

void Connection::on_read_in_place(Stream& /*s*/, size_t n) {
  // No spinning after these: they are parts of large frames, whose sender keeps the socket
  // busy; the loop sleeping until more arrives leaves the cores to the threads that print.
  if (held_mark_ != 0) settle_later();
  net_.counters().bytes_in += n;
  last_read_ms_ = net_.runtime().now_ms();
  if (state_ != State::kUp) return;
  spend(n);
  reader_.commit(n);
  frames();
}

void Connection::start_turn() {
  const uint64_t turn = net_.runtime().turn();
  if (turn == turn_) return;
  turn_ = turn;
  turn_cost_ = 0;
  turn_frames_ = 0;
}

void Connection::spend(size_t cost) {
  start_turn();
  turn_cost_ += cost;
}

bool Connection::has_share() {
  start_turn();
  if (turn_cost_ >= kTurnBytes) return false;
  // The first frame of a turn always goes, whatever the others spent: nobody starves. The
  // clock is read after any frame that was more than a plain send, and every few plain sends
  // otherwise: reading it would cost a few percent of a small frame.
  if (turn_frames_++ == 0) {
    (void)net_.runtime().turn_spent();  // starts the turn's clock if nothing else has
    return true;
  }
  if (!costly_ && turn_frames_ % 8 != 0) return true;
  costly_ = false;
  return !net_.runtime().turn_spent();
}

void Connection::yield_turn() {
  if (yielded_ || state_ != State::kUp || stream_ == nullptr) return;
  yielded_ = true;
  stream_->stop_reading();
  std::weak_ptr<Connection*> owner = token_;
  net_.runtime().next_turn([owner] {
    auto o = owner.lock();
    if (!o || !*o) return;
    Connection* c = *o;
    c->yielded_ = false;
    if (c->state_ != State::kUp || c->stream_ == nullptr) return;
    c->frames();  // what the last turn left in the buffer
    if (!c->yielded_ && !c->paused_ && c->state_ == State::kUp && c->stream_ != nullptr) c->stream_->start_reading();
  });
}

void Connection::handshake_data(std::string_view bytes) {
  // A TLS record (a handshake, 22, or an alert, 21; version 3.x) where a distribution handshake
  // message belongs: its 2-byte length would be over 5000, which no handshake message is.
  if (std::exchange(first_bytes_, false) && !net_.uses_tls() && bytes.size() >= 2 &&
      (bytes[0] == 0x16 || bytes[0] == 0x15) && bytes[1] == 0x03) {
    close("handshake failed: the peer speaks TLS (-proto_dist inet_tls) and this node plain TCP");
    return;
  }
  const auto result = handshake_->feed(bytes);
  if (handshake_->has_output()) write(handshake_->take_output());
  if (result == dist::Handshake::Result::kNeedMore) return;
  if (result == dist::Handshake::Result::kFailed) {
    if (role_ == Role::kInitiator && handshake_->peer_connects()) {
      // Both nodes connected at once and the peer's connection wins: wait for it, frames
      // queued, as net_kernel does (Network::admit hands them over). Nobody hears of a
      // failure unless it never comes (the setup timer).
      handshake_.reset();
      if (stream_) {
        stream_->close();
        stream_ = nullptr;
      }
      return;
    }
    net_.counters().handshake(handshake_->cookie_mismatch() ? HandshakeResult::kWrongCookie
                                                            : HandshakeResult::kProtocol);
    if (role_ == Role::kAcceptor) peer_ = handshake_->peer().name;
    const std::string why = handshake_->cookie_mismatch() ? "handshake failed: wrong cookie (digest mismatch)"
                                                          : "handshake failed: " + handshake_->error();
    // Let a refusal status reach the peer before the socket goes.
    if (stream_) {
      stream_->close_after_flush();
      stream_ = nullptr;
    }
    close(why);
    return;
  }
  net_.counters().handshake(HandshakeResult::kOk);
  peer_ = handshake_->peer().name;
  flags_ = handshake_->peer().flags;
  offered_flags_ = handshake_->peer().offered;
  if ((flags_ & dist::flag::kDistHdrAtomCache) != 0) {
    form_ = dist::FrameForm::kDistHeader;
    atom_cache_ = std::make_unique<dist::AtomCache>();
  }
  const std::string leftover(handshake_->leftover());
  handshake_.reset();
  state_ = State::kUp;
  up_since_ms_ = net_.runtime().now_ms();
  if (setup_timer_) {
    net_.runtime().cancel(setup_timer_);
    setup_timer_ = 0;
  }
  net_.connection_up(*this);
  if (state_ != State::kUp) return;
  if (!queued_.empty()) {
    auto waiting = take_queued();
    if (form_ == dist::FrameForm::kDistHeader) {
      // Queued before the peer's flags were known: rewritten once, in the form it now expects.
      std::string flat;
      flat.reserve(waiting.size());
      for (const auto& c : waiting.take()) flat.append(c.bytes());
      auto rewritten = dist::to_header_form(flat);
      if (!rewritten) {
        spdlog::error("peer {}: a frame queued during the handshake could not be rewritten; closing", peer_);
        close("unreadable queued frame");
        return;
      }
      waiting.text() = std::move(*rewritten);
    }
    net_.counters().bytes_out += waiting.size();
    stream_->append([&waiting](term::Sink& out) {
      for (auto& c : waiting.take()) {
        if (c.shared) {
          out.add(c.shared);
        } else {
          out.text().append(c.block);
        }
      }
    });
    after_write();
    if (state_ != State::kUp) return;
  }
  if (!leftover.empty()) {
    reader_.feed(leftover);
    frames();
  }
}

void Connection::frames() {
  auto& node = net_.node();
  auto* gate = net_.gate();
  const uint64_t fed = gate != nullptr ? gate->fed() : 0;
  std::string_view frame;
  for (;;) {
    if (!has_share()) {
      yield_turn();
      break;
    }
    const auto status = reader_.next(&frame);
    if (status == dist::FrameReader::Status::kNeedMore) break;
    if (status == dist::FrameReader::Status::kTick) {
      // Answer a tick unless we wrote something recently: either tells the peer we live.
      if (net_.runtime().now_ms() - last_write_ms_ >= 1000) {
        std::string t;
        dist::append_tick(t);
        write(t);
      }
      continue;
    }
    if (status == dist::FrameReader::Status::kMalformed) {
      spdlog::warn("peer {}: frame longer than the {} byte limit; closing", peer_, net_.config().max_frame);
      close("oversized frame");
      return;
    }
    if (frame.size() >= kLargeFrame) net_.trim_soon();
    net_.frame_seen();
    spend(frame.size() + kFrameCost);
    if (frame.size() >= kInPlaceMin) {
      after_large_ = kSmallFramesAfterLarge;
    } else if (after_large_ > 0) {
      --after_large_;
    }
    // A frame that can hold a shared binary lends its buffer to the binaries decoded from it.
    const auto owner = frame.size() >= term::Binary::kSharedMin ? reader_.lend() : nullptr;
    bool over_budget = false;
    auto msg = dist::parse_message(frame, {}, owner, &over_budget, atom_cache_.get());
    if (over_budget) {
      spdlog::warn("peer {}: a {} byte frame would decode to more than {} bytes; closing", peer_, frame.size(),
                   dist::decode_budget(frame.size()));
      close("frame over its decoding budget");
      return;
    }
    costly_ = costly_ || (msg && !msg->send);
    const auto bytes = static_cast<uint32_t>(frame.size() + 4);
    if (msg && !msg->send && is_op(msg->control, dist::Op::kDemonitorP)) {
      keep_smallest(demonitor_bytes_, bytes);
    } else if (due_us_ != 0 || monitor_due_us_ != 0) {
      const bool monitor = msg && !msg->send && is_op(msg->control, dist::Op::kMonitorP);
      if (monitor && due_us_ != 0) keep_smallest(monitor_bytes_, bytes);
      learn_after_due(monitor, net_.runtime().now_us());
    }
    if (!msg || !node.message(peer_, std::move(*msg))) {
      spdlog::warn("peer {}: malformed distribution message; closing", peer_);
      close("malformed message");
      return;
    }
    if (state_ != State::kUp) return;
  }
  node.drain();
  // What this read brought may have filled the output faster than it drains: read no more
  // from this peer until it has room. Peers whose input printed nothing go on.
  if (gate != nullptr && gate->shut() && gate->fed() != fed) pause();
}

void Connection::demonitor_due() {
  demonitor_due_ = true;
  due_us_ = std::max<uint64_t>(net_.runtime().now_us(), 1);
  settle_later();
}

// The frames after a due demonitor: the first says whether holding past the demonitor pays;
// if it is a monitor, the one after it says whether holding past the monitor as well does.
void Connection::learn_after_due(bool monitor, uint64_t now_us) {
  constexpr uint64_t kHoldUs = kHoldMs * 1000;
  if (monitor_due_us_ != 0) {
    deep_share_ = learn_share(deep_share_, now_us - std::exchange(monitor_due_us_, 0) < kHoldUs);
    return;
  }
  const uint64_t due = std::exchange(due_us_, 0);
  const uint64_t pause = now_us - std::min(now_us, due);
  hold_share_ = learn_share(hold_share_, pause >= kHoldMinUs && pause < kHoldUs);
  if (monitor) {
    monitor_due_us_ = due;
  } else {
    deep_share_ = learn_share(deep_share_, false);
  }
}

void Connection::settle_later() {
  if (std::exchange(settle_queued_, true)) return;
  net_.settle_after_writes(token_);
}

void Connection::settle_low_water() {
  settle_queued_ = false;
  // Only when nothing of a frame is half read: the rest of it must wake the loop. Under TLS
  // the socket's bytes are records, not frames.
  const bool hold = std::exchange(demonitor_due_, false) && demonitor_bytes_ != 0 && hold_share_ >= kHoldShare &&
                    demonitor_bytes_ <= kHoldMaxBytes && state_ == State::kUp &&
                    stream_ != nullptr && stream_->tls() == nullptr && reader_.buffered() == 0 && !paused_;
  if (!hold) {
    release_hold();
    return;
  }
  // One byte more than the demonitor: it waits in the kernel and wakes nobody, and whatever
  // comes after it (the caller's next request) wakes the loop once, for both. A caller that
  // starts each call with a monitor sent on its own would still wake the loop twice, so while
  // its monitors have been followed by more within the hold, the mark covers one too. Should
  // what was held for not come (it is smaller than learned, or the caller sends something
  // else), the timer gives up waiting within kHoldMs. A connection that holds from call to
  // call keeps its mark: no system call.
  const bool deep = deep_share_ >= kHoldShare && monitor_bytes_ != 0 && monitor_bytes_ <= kHoldMaxBytes;
  const uint32_t mark = demonitor_bytes_ + (deep ? monitor_bytes_ : 0) + 1;
  if (held_mark_ != mark) {
    if (!stream_->set_read_low_water(static_cast<int>(mark))) return;
    held_mark_ = mark;
  }
  ++net_.counters().demonitor_holds;
  if (deep) ++net_.counters().demonitor_holds_deep;
  if (hold_timer_ != 0 && net_.runtime().restart(hold_timer_, kHoldMs)) return;
  std::weak_ptr<Connection*> owner = token_;
  hold_timer_ = net_.runtime().start(kHoldMs, [owner] {
    auto o = owner.lock();
    if (!o || !*o) return;
    ++(*o)->net_.counters().demonitor_holds_expired;
    (*o)->hold_timer_ = 0;
    (*o)->release_hold();
  });
}

void Connection::release_hold() {
  if (held_mark_ == 0) return;
  held_mark_ = 0;
  if (hold_timer_ != 0) net_.runtime().cancel(std::exchange(hold_timer_, 0));
  // Lowering the mark makes the kernel report what already waits (tcp_set_rcvlowat).
  if (stream_ != nullptr && !stream_->set_read_low_water(1)) close("setsockopt(SO_RCVLOWAT) failed");
}

void Connection::pause() {
  if (paused_ || state_ != State::kUp || stream_ == nullptr) return;
  paused_ = true;
  stream_->stop_reading();
  spdlog::debug("peer {}: reading paused until the output has room", peer_);
  std::weak_ptr<Connection*> owner = token_;
  net_.gate()->when_open([owner] {
    auto o = owner.lock();
    if (!o || !*o) return;
    Connection* c = *o;
    c->paused_ = false;
    if (c->state_ != State::kUp || c->stream_ == nullptr) return;
    // The pause was ours: the peer was not silent meanwhile.
    c->last_read_ms_ = c->net_.runtime().now_ms();
    c->stream_->start_reading();
  });
}

// The frame goes out now, or waits for the handshake in the pass-through form.
template <typename Write>
void Connection::queue_frame(const Write& write) {
  if (state_ == State::kClosed) return;
  if (state_ != State::kUp) {
    if (overflowed_) return;  // closing already
    const size_t before = queued_.size();
    write(queued_, dist::FrameForm::kPassThrough);
    net_.connecting_bytes(queued_.size() - before, 0);
    // What waits for handshakes counts against --max-queue-mb, all such connections together
    // (a peer can make the node connect to many names). Closed from the loop, not inside the
    // send that queued it; the node then hears the peer is down, as for a slow consumer.
    if (net_.connecting_bytes() > net_.config().max_queue) {
      overflowed_ = true;
      spdlog::warn("{} bytes queued for connections being set up ({} for {}); giving this one up",
                   net_.connecting_bytes(), queued_.size(), peer_);
      std::weak_ptr<Connection*> owner = token_;
      net_.runtime().start(0, [owner] {
        if (auto o = owner.lock(); o && *o) (*o)->close("outgoing queue over its limit while connecting");
      });
    }
    return;
  }
  if (stream_ == nullptr) return;
  // Encoded straight into the stream's queue: no intermediate copy of a large payload.
  const size_t before = stream_->queued_bytes();
  stream_->append([&](term::Sink& out) { write(out, form_); });
  net_.counters().bytes_out += stream_->queued_bytes() - before;
  after_write();
}

void Connection::queue(const term::Term& control, const term::Term* payload) {
  queue_frame([&](term::Sink& out, dist::FrameForm form) { dist::append_frame(out, control, payload, form); });
}

void Connection::queue(const dist::SendParts& send, const term::Term& payload) {
  queue_frame([&](term::Sink& out, dist::FrameForm form) { dist::append_send_frame(out, send, payload, form); });
}

void Connection::tick(uint64_t now_ms) {
  if (state_ != State::kUp) return;
  const uint64_t ticktime_ms = uint64_t{net_.config().net_ticktime_s} * 1000;
  // A peer we stopped reading is not silent: its ticks wait in the socket. Ours still go out.
  if (paused_) last_read_ms_ = now_ms;
  if (now_ms - last_read_ms_ > ticktime_ms) {
    close("no tick or message from the peer for " + std::to_string(net_.config().net_ticktime_s) + " s");
    return;
  }
  if (now_ms - last_write_ms_ >= ticktime_ms / 4) {
    std::string t;
    dist::append_tick(t);
    write(t);
  }
}

std::string Connection::tls_summary() const {
  return stream_ != nullptr && stream_->tls() != nullptr && stream_->tls()->established() ? stream_->tls()->summary()
                                                                                          : std::string{};
}

void Connection::on_closed(Stream& /*s*/, const std::string& why) {
  stream_ = nullptr;
  if (state_ == State::kConnecting) net_.counters().connect_failed(ConnectFailure::kConnect);
  if (state_ == State::kHandshake && handshake_ && handshake_->awaiting_ack()) {
    net_.counters().handshake(HandshakeResult::kRejected);
    close("the peer rejected our challenge reply (" + why + "): wrong cookie?");
  } else if (state_ == State::kHandshake) {
    net_.counters().handshake(HandshakeResult::kClosed);
    close("connection closed during the handshake (" + why + ")");
  } else {
    close(why);
  }
}

void Connection::on_written(Stream& /*s*/) { net_.maybe_not_busy(peer_); }

size_t Connection::queued_bytes() const { return queued_.size() + (stream_ ? stream_->queued_bytes() : 0); }

void Connection::count_timeout() {
  if (state_ == State::kHandshake) {
    net_.counters().handshake(HandshakeResult::kTimeout);
  } else if (state_ != State::kUp && state_ != State::kClosed) {
    net_.counters().connect_failed(ConnectFailure::kTimeout);
  }
}

void Connection::close(const std::string& why, bool notify) {
  if (state_ == State::kClosed) return;
  const bool was_up = state_ == State::kUp;
  state_ = State::kClosed;
  if (setup_timer_) {
    net_.runtime().cancel(setup_timer_);
    setup_timer_ = 0;
  }
  if (stream_) {
    // A quiet close (node stopping, a duplicate connection) lets queued frames out first.
    if (notify) {
      stream_->close();
    } else {
      stream_->close_after_flush();
    }
    stream_ = nullptr;
  }
  if (!notify) {
    net_.forget(*this);
    return;
  }
  if (was_up) {
    net_.connection_closed(*this, why);
  } else {
    net_.connection_failed(*this, why);
  }
}

}  // namespace chat::net
