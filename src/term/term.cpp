#include "chat/term/term.hpp"

#include <ei.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#include "chat/term/validate.hpp"

namespace chat::term {

Binary::Binary(std::string bytes) {
  if (bytes.size() >= kSharedMin) {
    shared_ = SharedBytes(std::move(bytes));
  } else {
    small_ = std::move(bytes);
  }
}

Binary::Binary(SharedBytes bytes) {
  if (bytes.size() >= kSharedMin) {
    shared_ = std::move(bytes);
  } else {
    small_ = std::string(bytes.view());
  }
}

bool Tuple::operator==(const Tuple& o) const { return items == o.items; }
bool List::operator==(const List& o) const { return items == o.items && tail == o.tail; }
bool Map::operator==(const Map& o) const { return entries == o.entries; }

bool Term::is_atom(std::string_view name) const {
  const auto* a = get<Atom>();
  return a != nullptr && a->name == name;
}

bool Term::is_nil() const {
  const auto* l = get<List>();
  return l != nullptr && l->items.empty() && l->tail.empty();
}

const std::vector<Term>* Term::tuple(size_t arity) const {
  const auto* t = get<Tuple>();
  return t != nullptr && t->items.size() == arity ? &t->items : nullptr;
}

Term atom(std::string name) { return Atom{std::move(name)}; }
Term binary(std::string bytes) { return Binary(std::move(bytes)); }
Items::Items(std::initializer_list<Slot> slots) {
  items_.reserve(slots.size());
  for (const Slot& s : slots) items_.push_back(std::move(s.term));
}

Term tuple(Items items) { return Tuple{std::move(items).take()}; }
Term list(Items items) { return List{std::move(items).take(), {}}; }
Term improper_list(Items items, Term tail) {
  List l{std::move(items).take(), {}};
  l.tail.push_back(std::move(tail));
  return l;
}
Term nil() { return List{}; }

namespace {

void append_u32(std::string& out, uint32_t v) {
  const char word[4] = {static_cast<char>(v >> 24U), static_cast<char>(v >> 16U), static_cast<char>(v >> 8U),
                        static_cast<char>(v)};
  out.append(word, sizeof word);
}

// An atom's own encoding, as it stands where a cache reference stood.
void append_atom(std::string& out, std::string_view name) {
  if (name.size() <= UINT8_MAX) {
    out.push_back(static_cast<char>(ERL_SMALL_ATOM_UTF8_EXT));
    out.push_back(static_cast<char>(name.size()));
  } else {
    out.push_back(static_cast<char>(ERL_ATOM_UTF8_EXT));
    out.push_back(static_cast<char>(name.size() >> 8U));
    out.push_back(static_cast<char>(name.size() & 0xffU));
  }
  out.append(name);
}

class Decoder {
 public:
  Decoder(std::string_view data, const std::shared_ptr<const void>& owner, AtomRefs atoms)
      : data_(data), buf_(data.data()), owner_(owner), atoms_(atoms) {}

  // Only called on bytes that encoded_size() accepted, so ei stays inside the buffer.
  // Decodes in place: containers grow element by element without temporary copies.
  bool term(int& i, Term& out) {
    const auto tag = static_cast<uint8_t>(data_[static_cast<size_t>(i)]);
    switch (tag) {
      case ERL_SMALL_INTEGER_EXT:
      case ERL_INTEGER_EXT:
      case ERL_SMALL_BIG_EXT:
      case ERL_LARGE_BIG_EXT: {
        int j = i;
        long long v = 0;
        if (ei_decode_longlong(buf_, &j, &v) == 0) {
          i = j;
          out.value = static_cast<int64_t>(v);
          return true;
        }
        return raw(i, out);  // a bignum beyond 64 bits
      }
      case ERL_FLOAT_EXT:
      case 70: {  // NEW_FLOAT_EXT
        double d = 0;
        if (ei_decode_double(buf_, &i, &d) != 0) return false;
        out.value = d;
        return true;
      }
      case ERL_SMALL_ATOM_UTF8_EXT:
      case kAtomCacheRef: {
        // What OTP sends once UTF8_ATOMS is negotiated (the name's bytes, already UTF-8), or
        // a reference to such a name in the frame's header. Copied directly; ei's conversion
        // path was the costliest step of a message.
        size_t at = static_cast<size_t>(i);
        std::string_view name;
        if (!node_name(at, name)) return false;
        out.value = Atom{std::string(name)};
        i = static_cast<int>(at);
        return true;
      }
      case ERL_ATOM_EXT:
      case ERL_SMALL_ATOM_EXT:
      case ERL_ATOM_UTF8_EXT: {
        char name[MAXATOMLEN_UTF8];
        erlang_char_encoding was{};
        erlang_char_encoding res{};
        if (ei_decode_atom_as(buf_, &i, name, sizeof name, ERLANG_UTF8, &was, &res) != 0) return false;
        out.value = Atom{name};
        return true;
      }
      case ERL_NEW_PID_EXT: {
        // Node, ID:32, Serial:32, Creation:32, read here in the common cases rather than
        // through ei's 1 KB erlang_pid.
        size_t at = static_cast<size_t>(i) + 1;
        std::string_view node;
        if (node_name(at, node)) {
          out.value = Pid{NodeName(node), u32(at), u32(at + 4), u32(at + 8)};
          i = static_cast<int>(at + 12);
          return true;
        }
      }
        [[fallthrough]];
      case ERL_PID_EXT: {
        // The form before BIG_CREATION: a one-byte Creation.
        size_t at = static_cast<size_t>(i) + 1;
        std::string_view node;
        if (tag == ERL_PID_EXT && node_name(at, node)) {
          out.value = Pid{NodeName(node), u32(at), u32(at + 4), static_cast<uint8_t>(data_[at + 8])};
          i = static_cast<int>(at + 9);
          return true;
        }
        erlang_pid p{};
        if (ei_decode_pid(buf_, &i, &p) != 0) return false;
        out.value = Pid{p.node, p.num, p.serial, p.creation};
        return true;
      }
      case ERL_NEWER_REFERENCE_EXT: {
        // Len:16, Node, Creation:32, ID:32 * Len: every monitor and call tag a peer sends.
        const size_t words = (size_t{static_cast<uint8_t>(data_[static_cast<size_t>(i) + 1])} << 8U) |
                             static_cast<uint8_t>(data_[static_cast<size_t>(i) + 2]);
        size_t at = static_cast<size_t>(i) + 3;
        std::string_view node;
        if (words >= 1 && words <= RefIds::kMax && node_name(at, node)) {
          std::array<uint32_t, RefIds::kMax> ids{};
          for (size_t k = 0; k < words; ++k) ids[k] = u32(at + 4 + 4 * k);
          out.value = Ref{NodeName(node), u32(at), RefIds(ids.data(), ids.data() + words)};
          i = static_cast<int>(at + 4 + 4 * words);
          return true;
        }
      }
        [[fallthrough]];
      case ERL_REFERENCE_EXT:
      case ERL_NEW_REFERENCE_EXT: {
        erlang_ref r{};
        if (ei_decode_ref(buf_, &i, &r) != 0 || r.len < 1 || r.len > 5) return false;
        out.value = Ref{r.node, r.creation, RefIds(r.n, r.n + r.len)};
        return true;
      }
      case ERL_SMALL_TUPLE_EXT:
      case ERL_LARGE_TUPLE_EXT: {
        int arity = 0;
        if (ei_decode_tuple_header(buf_, &i, &arity) != 0) return false;
        return decode_items(i, out.value.emplace<Tuple>().items, static_cast<size_t>(arity));
      }
      case ERL_MAP_EXT: {
        int arity = 0;
        if (ei_decode_map_header(buf_, &i, &arity) != 0) return false;
        auto& entries = out.value.emplace<Map>().entries;
        entries.reserve(static_cast<size_t>(arity));
        for (int k = 0; k < arity; ++k) {
          auto& [key, value] = entries.emplace_back(kPlaceholder, kPlaceholder);
          if (!term(i, key) || !term(i, value)) return false;
        }
        return true;
      }
      case ERL_NIL_EXT:
        ++i;
        out.value.emplace<List>();
        return true;
      case ERL_STRING_EXT: {
        // A list of small integers, sent compactly.
        const auto at = static_cast<size_t>(i);
        const size_t n = (size_t{static_cast<uint8_t>(data_[at + 1])} << 8) | static_cast<uint8_t>(data_[at + 2]);
        auto& items = out.value.emplace<List>().items;
        items.reserve(n);
        for (size_t k = 0; k < n; ++k) items.emplace_back(int64_t{static_cast<uint8_t>(data_[at + 3 + k])});
        i += static_cast<int>(3 + n);
        return true;
      }
      case ERL_LIST_EXT: {
        int arity = 0;
        if (ei_decode_list_header(buf_, &i, &arity) != 0) return false;
        auto& l = out.value.emplace<List>();
        if (!decode_items(i, l.items, static_cast<size_t>(arity))) return false;
        if (static_cast<uint8_t>(data_[static_cast<size_t>(i)]) == ERL_NIL_EXT) {
          ++i;
          return true;
        }
        if (l.items.empty()) {
          // [| T] with no elements is just T.
          Term tail;
          if (!term(i, tail)) return false;
          out = std::move(tail);
          return true;
        }
        if (!term(i, l.tail.emplace_back(kPlaceholder))) return false;
        // [X | []] is the proper list [X], however the [] is spelled (an empty STRING_EXT, or a
        // LIST_EXT of no elements ending in one): kept as a tail, it would make a proper list
        // look improper, and encode as something else.
        if (l.tail.back().is_nil()) l.tail.clear();
        return true;
      }
      case ERL_BINARY_EXT: {
        const auto at = static_cast<size_t>(i);
        const size_t n = u32(at + 1);
        i += static_cast<int>(5 + n);
        const std::string_view bytes = data_.substr(at + 5, n);
        if (owner_ && n >= Binary::kSharedMin) {
          out.value = Binary(SharedBytes(owner_, bytes));
        } else {
          out.value = Binary(std::string(bytes));
        }
        return true;
      }
      default:
        return raw(i, out);
    }
  }

 private:
  static constexpr uint8_t kAtomCacheRef = 82;
  // What a container's slot holds until its term is decoded into it. A default Term (the empty
  // list) would build and free two vectors for every slot.
  static constexpr int64_t kPlaceholder = 0;

  bool decode_items(int& i, std::vector<Term>& out, size_t n) {
    out.reserve(n);
    for (size_t k = 0; k < n; ++k) {
      if (!term(i, out.emplace_back(kPlaceholder))) return false;
    }
    return true;
  }

  [[nodiscard]] uint32_t u32(size_t k) const {
    const auto* b = reinterpret_cast<const uint8_t*>(data_.data() + k);
    return (uint32_t{b[0]} << 24U) | (uint32_t{b[1]} << 16U) | (uint32_t{b[2]} << 8U) | b[3];
  }

  // The name of the atom at data_[at] when it is a SMALL_ATOM_UTF8_EXT or a cache reference;
  // `at` then moves past it. Other forms are left to ei.
  bool node_name(size_t& at, std::string_view& name) const {
    const auto tag = static_cast<uint8_t>(data_[at]);
    const auto n = static_cast<uint8_t>(data_[at + 1]);
    if (tag == ERL_SMALL_ATOM_UTF8_EXT) {
      name = data_.substr(at + 2, n);
      at += 2 + size_t{n};
      return true;
    }
    if (tag == kAtomCacheRef && n < atoms_.size()) {
      name = *atoms_[n];
      at += 2;
      return true;
    }
    return false;
  }

  // A term kept as its bytes. Atom cache references in it are written out as the atoms they
  // stand for, and the Size of every fun around them grows to match.
  bool raw(int& i, Term& out) {
    const auto at = static_cast<size_t>(i);
    CacheRefSites sites;
    auto size = encoded_size(data_, at, 1U << 20U, nullptr, atoms_, atoms_.empty() ? nullptr : &sites);
    if (!size) return false;
    i += static_cast<int>(*size);
    if (sites.refs.empty()) {
      out.value = Raw{std::string(data_.substr(at, *size))};
      return true;
    }
    std::string bytes;
    std::vector<size_t> grown;  // bytes added up to and including each reference
    size_t from = at;
    for (const size_t r : sites.refs) {
      bytes.append(data_.substr(from, r - from));
      append_atom(bytes, *atoms_[static_cast<uint8_t>(data_[r + 1])]);
      from = r + 2;
      grown.push_back(bytes.size() - (from - at));
    }
    bytes.append(data_.substr(from, at + *size - from));
    const auto added_before = [&](size_t pos) {
      const auto k = std::lower_bound(sites.refs.begin(), sites.refs.end(), pos) - sites.refs.begin();
      return k == 0 ? size_t{0} : grown[static_cast<size_t>(k) - 1];
    };
    for (const size_t f : sites.fun_sizes) {
      const size_t old_size = u32(f);
      const size_t size_at = f - at + added_before(f);
      const size_t new_size = old_size + added_before(f + old_size) - added_before(f);
      for (size_t k = 0; k < 4; ++k) bytes[size_at + k] = static_cast<char>((new_size >> (24U - 8U * k)) & 0xffU);
    }
    out.value = Raw{std::move(bytes)};
    return true;
  }

  std::string_view data_;
  const char* buf_;
  const std::shared_ptr<const void>& owner_;
  AtomRefs atoms_;
};

// ei encoders compute the size when given a null buffer; the second call writes in place.
template <typename F>
void append(std::string& out, F&& encode) {
  int size = 0;
  encode(nullptr, &size);
  const size_t at = out.size();
  out.resize(at + static_cast<size_t>(size));
  int index = 0;
  encode(out.data() + at, &index);
}

void copy_node(char (&dst)[MAXATOMLEN_UTF8], const std::string& node) {
  const size_t n = std::min(node.size(), sizeof dst - 1);
  std::memcpy(dst, node.data(), n);
  dst[n] = '\0';
}

// Appends to the sink's current text, asking the sink for it again only after handing it a
// shared binary (Sink::text() is a virtual call, and a message has many small parts).
struct Encoder {
  explicit Encoder(Sink& s) : sink(s), out(&s.text()) {}
  Sink& sink;
  std::string* out;

  void term(const Term& t) { std::visit(*this, t.value); }

  void operator()(int64_t v) {
    if (v >= 0 && v <= UINT8_MAX) {
      const char small[2] = {static_cast<char>(ERL_SMALL_INTEGER_EXT), static_cast<char>(v)};
      out->append(small, sizeof small);
      return;
    }
    append(*out, [&](char* b, int* i) { ei_encode_longlong(b, i, v); });
  }
  void operator()(double v) {
    append(*out, [&](char* b, int* i) { ei_encode_double(b, i, v); });
  }
  void operator()(const Atom& a) {
    if (a.name.size() <= UINT8_MAX) {
      append_small_atom(*out, a.name);
      return;
    }
    append(*out, [&](char* b, int* i) {
      ei_encode_atom_len_as(b, i, a.name.data(), static_cast<int>(a.name.size()), ERLANG_UTF8, ERLANG_UTF8);
    });
  }
  void operator()(const Binary& v) {
    // BINARY_EXT is a fixed 5-byte header: appending the bytes after it spares a large
    // message the zero-fill and second pass that resize-then-encode would cost.
    const std::string_view bytes = v.bytes();
    const auto n = static_cast<uint32_t>(bytes.size());
    const char header[5] = {static_cast<char>(ERL_BINARY_EXT), static_cast<char>(n >> 24U),
                            static_cast<char>(n >> 16U), static_cast<char>(n >> 8U), static_cast<char>(n)};
    out->append(header, sizeof header);
    if (v.shared()) {
      sink.add(v.shared());
      out = &sink.text();
    } else {
      out->append(bytes);
    }
  }
  void operator()(const Pid& p) {
    if (p.node.size() <= UINT8_MAX) {
      append_small_pid(*out, p);
      return;
    }
    erlang_pid e{};
    copy_node(e.node, p.node);
    e.num = p.num;
    e.serial = p.serial;
    e.creation = p.creation;
    append(*out, [&](char* b, int* i) { ei_encode_pid(b, i, &e); });
  }
  void operator()(const Ref& r) {
    if (r.node.size() <= UINT8_MAX) {
      append_small_ref(*out, r);
      return;
    }
    erlang_ref e{};
    copy_node(e.node, r.node);
    e.creation = r.creation;
    e.len = static_cast<int>(std::min<size_t>(r.ids.size(), 5));
    for (int k = 0; k < e.len; ++k) e.n[k] = r.ids[static_cast<size_t>(k)];
    append(*out, [&](char* b, int* i) { ei_encode_ref(b, i, &e); });
  }
  void operator()(const Tuple& t) {
    if (t.items.size() <= UINT8_MAX) {
      const char head[2] = {static_cast<char>(ERL_SMALL_TUPLE_EXT), static_cast<char>(t.items.size())};
      out->append(head, sizeof head);
    } else {
      append(*out, [&](char* b, int* i) { ei_encode_tuple_header(b, i, static_cast<long>(t.items.size())); });
    }
    for (const auto& item : t.items) term(item);
  }
  void operator()(const List& l) {
    if (!l.items.empty()) {
      append(*out, [&](char* b, int* i) { ei_encode_list_header(b, i, static_cast<long>(l.items.size())); });
      for (const auto& item : l.items) term(item);
    }
    if (l.tail.empty() || l.items.empty()) {
      out->push_back(static_cast<char>(ERL_NIL_EXT));
    } else {
      term(l.tail.front());
    }
  }
  void operator()(const Map& m) {
    append(*out, [&](char* b, int* i) { ei_encode_map_header(b, i, static_cast<long>(m.entries.size())); });
    for (const auto& [k, v] : m.entries) {
      term(k);
      term(v);
    }
  }
  void operator()(const Raw& r) { *out += r.encoded; }
};

}  // namespace

std::optional<Term> decode_at(std::string_view data, size_t* offset, const Limits& limits,
                              const std::shared_ptr<const void>& owner, size_t* budget, AtomRefs atoms) {
  if (data.size() > static_cast<size_t>(INT32_MAX)) return std::nullopt;  // ei indexes with int
  auto size = encoded_size(data, *offset, limits.max_depth, budget, atoms);
  if (!size) return std::nullopt;
  Decoder d(data, owner, atoms);
  int i = static_cast<int>(*offset);
  Term t;
  if (!d.term(i, t) || static_cast<size_t>(i) != *offset + *size) return std::nullopt;
  *offset += *size;
  return t;
}

std::optional<Term> decode(std::string_view data, const Limits& limits) {
  if (data.empty() || static_cast<uint8_t>(data[0]) != 131) return std::nullopt;
  size_t offset = 1;
  auto t = decode_at(data, &offset, limits);
  if (!t || offset != data.size()) return std::nullopt;
  return t;
}

// SMALL_ATOM_UTF8_EXT, what ei writes for a name under 256 bytes: the bytes as they are.
// Written here because ei's conversion and checks cost more than the rest of a small message.
void append_small_atom(std::string& out, std::string_view name) {
  out.push_back(static_cast<char>(ERL_SMALL_ATOM_UTF8_EXT));
  out.push_back(static_cast<char>(name.size()));
  out.append(name);
}

// NEW_PID_EXT: Node, ID:32, Serial:32, Creation:32 (as ei writes it, without filling its 1 KB
// erlang_pid first).
void append_small_pid(std::string& out, const Pid& p) {
  out.push_back(static_cast<char>(ERL_NEW_PID_EXT));
  append_small_atom(out, p.node.str());
  for (const uint32_t v : {p.num, p.serial, p.creation}) append_u32(out, v);
}

// NEWER_REFERENCE_EXT: Len:16, Node, Creation:32, ID:32 * Len, as ei writes it. Every call's
// tag and monitor goes out in this form; through ei it cost a sixteenth of a call.
void append_small_ref(std::string& out, const Ref& r) {
  const char head[3] = {static_cast<char>(ERL_NEWER_REFERENCE_EXT), 0, static_cast<char>(r.ids.size())};
  out.append(head, sizeof head);
  append_small_atom(out, r.node.str());
  append_u32(out, r.creation);
  for (const uint32_t v : r.ids) append_u32(out, v);
}

void encode_to(const Term& t, Sink& out) {
  Encoder(out).term(t);
}

void encode_to(const Term& t, std::string& out) {
  Sink sink(out);
  encode_to(t, sink);
}

void encode_with_version(const Term& t, Sink& out) {
  Encoder e(out);
  e.out->push_back(static_cast<char>(131));
  e.term(t);
}

void encode_with_version(const Term& t, std::string& out) {
  Sink sink(out);
  encode_with_version(t, sink);
}

std::string encode(const Term& t) {
  std::string out;
  encode_with_version(t, out);
  return out;
}

}  // namespace chat::term
