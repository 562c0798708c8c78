// Erlang terms as plain C++ values. Decoding and encoding go through erl_interface (ei);
// ei does no bounds checking, so every decode validates the bytes first (validate.hpp).
#pragma once

#include <algorithm>
#include <array>
#include <compare>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "chat/term/bytes.hpp"
#include "chat/term/node_name.hpp"

namespace chat::term {

struct Term;

struct Atom {
  std::string name;
  bool operator==(const Atom&) const = default;
};

struct Pid {
  NodeName node;
  uint32_t num = 0;
  uint32_t serial = 0;
  uint32_t creation = 0;
  bool operator==(const Pid&) const = default;
};

// A reference's 1..5 words (NEWER_REFERENCE_EXT), held inline: a node keeps a million of them
// as monitor keys, and a heap block for each would make a monitor cost half as much again.
class RefIds {
 public:
  static constexpr size_t kMax = 5;
  RefIds() = default;
  RefIds(std::initializer_list<uint32_t> words) : RefIds(words.begin(), words.end()) {}
  // Words past the fifth are dropped, as no reference has them.
  RefIds(const uint32_t* first, const uint32_t* last) {
    n_ = static_cast<uint8_t>(std::min<size_t>(static_cast<size_t>(last - first), kMax));
    std::copy_n(first, n_, w_.begin());
  }
  [[nodiscard]] size_t size() const { return n_; }
  [[nodiscard]] bool empty() const { return n_ == 0; }
  [[nodiscard]] const uint32_t* begin() const { return w_.data(); }
  [[nodiscard]] const uint32_t* end() const { return w_.data() + n_; }
  uint32_t operator[](size_t i) const { return w_[i]; }
  friend bool operator==(const RefIds& a, const RefIds& b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }
  friend std::strong_ordering operator<=>(const RefIds& a, const RefIds& b) {
    return std::lexicographical_compare_three_way(a.begin(), a.end(), b.begin(), b.end());
  }

 private:
  std::array<uint32_t, kMax> w_{};
  uint8_t n_ = 0;
};

struct Ref {
  NodeName node;
  uint32_t creation = 0;
  RefIds ids;
  bool operator==(const Ref&) const = default;
};

// Small binaries are held inline. From kSharedMin bytes up they are reference-counted, like
// the BEAM's refc binaries: copying the term, queuing it for a socket or for stdout never copies
// the bytes, and one decoded from a large frame stays in that frame's buffer.
class Binary {
 public:
  static constexpr size_t kSharedMin = 64U << 10U;

  Binary() = default;
  explicit Binary(std::string bytes);
  explicit Binary(SharedBytes bytes);

  [[nodiscard]] std::string_view bytes() const { return shared_ ? shared_.view() : std::string_view(small_); }
  // Set for a large binary.
  [[nodiscard]] const SharedBytes& shared() const { return shared_; }
  bool operator==(const Binary& o) const { return bytes() == o.bytes(); }

 private:
  std::string small_;
  SharedBytes shared_;
};

// A term this program does not model (funs, ports, bit strings, big integers): kept as its
// encoded bytes so it can travel back out unchanged.
struct Raw {
  std::string encoded;
  bool operator==(const Raw&) const = default;
};

struct Tuple {
  std::vector<Term> items;
  bool operator==(const Tuple&) const;
};

// A list; `tail` holds one term for an improper list (e.g. the `[alias | Ref]` call tag of
// OTP 24+) and is empty for a proper list. The empty list is a List with no items.
struct List {
  std::vector<Term> items;
  std::vector<Term> tail;
  bool operator==(const List&) const;
};

struct Map {
  std::vector<std::pair<Term, Term>> entries;
  bool operator==(const Map&) const;
};

struct Term {
  using Value = std::variant<int64_t, double, Atom, Binary, Pid, Ref, Tuple, List, Map, Raw>;
  Value value;

  Term() : value(List{}) {}
  template <typename T>
    requires std::is_constructible_v<Value, T&&> && (!std::is_same_v<std::decay_t<T>, Term>)
  Term(T&& v) : value(std::forward<T>(v)) {}  // NOLINT(google-explicit-constructor)

  template <typename T>
  [[nodiscard]] const T* get() const { return std::get_if<T>(&value); }
  template <typename T>
  [[nodiscard]] T* get() { return std::get_if<T>(&value); }

  [[nodiscard]] bool is_atom(std::string_view name) const;
  [[nodiscard]] bool is_nil() const;  // the empty list
  // The items of a tuple of exactly `arity` elements, or nullptr.
  [[nodiscard]] const std::vector<Term>* tuple(size_t arity) const;

  bool operator==(const Term&) const = default;
};

// A tuple's or list's elements, as the constructors below take them: `tuple({a, b})` copies or
// moves each element once, into its slot, and then moves it on. A std::vector built from the
// braces would copy every element a second time (an initializer list's elements are const),
// and on a reply or an exit signal those are pids and references with their node names.
class Items {
 public:
  struct Slot {
    template <typename T>
      requires std::is_constructible_v<Term, T&&>
    Slot(T&& v) : term(std::forward<T>(v)) {}  // NOLINT(google-explicit-constructor)
    mutable Term term;                         // moved out of the const list
  };
  Items() = default;
  Items(std::initializer_list<Slot> slots);
  Items(std::vector<Term> items) : items_(std::move(items)) {}  // NOLINT(google-explicit-constructor)
  std::vector<Term> take() && { return std::move(items_); }

 private:
  std::vector<Term> items_;
};

// Constructors that read like Erlang.
Term atom(std::string name);
Term binary(std::string bytes);
Term tuple(Items items);
Term list(Items items);
Term improper_list(Items items, Term tail);
Term nil();

// The atoms a distribution header lists, in order: an ATOM_CACHE_REF (tag 82) in the terms
// after the header is an index into them (dist::AtomCache). Empty outside such frames.
using AtomRefs = std::span<const std::string* const>;

// Limits applied while decoding peer data.
struct Limits {
  size_t max_depth = 512;
};

// Decodes one term at `data[*offset]` (no version byte) and advances offset. When `owner`
// keeps `data` alive, large binaries are views into it rather than copies. With `budget`, the
// memory the decoded term takes (validate.hpp) is taken from *budget, and a term that would
// take more is refused (nullopt, *budget then unspecified) before anything is allocated.
// `atoms` resolves atom cache references (AtomRefs); an unmodelled term (Raw) gets its
// references written out as plain atoms, so its bytes stand on their own.
std::optional<Term> decode_at(std::string_view data, size_t* offset, const Limits& limits = {},
                              const std::shared_ptr<const void>& owner = nullptr, size_t* budget = nullptr,
                              AtomRefs atoms = {});
// Decodes `131, Term` occupying all of `data`.
std::optional<Term> decode(std::string_view data, const Limits& limits = {});

// Appends the encoding of `t` (no version byte) to `out`.
void encode_to(const Term& t, Sink& out);
void encode_to(const Term& t, std::string& out);
// `131, Term`.
std::string encode(const Term& t);
void encode_with_version(const Term& t, Sink& out);
void encode_with_version(const Term& t, std::string& out);
// The encoder's own forms for an atom of at most 255 bytes (SMALL_ATOM_UTF8_EXT), and a pid
// (NEW_PID_EXT) or reference (NEWER_REFERENCE_EXT) whose node name is such an atom, for
// writers that build no Term.
void append_small_atom(std::string& out, std::string_view name);
void append_small_pid(std::string& out, const Pid& p);
void append_small_ref(std::string& out, const Ref& r);

// Erlang-syntax rendering for logs and Elixir-style rendering for users; past max_chars the
// rendering stops and ends with "...".
std::string to_erlang_string(const Term& t, size_t max_chars = SIZE_MAX);
std::string to_elixir_string(const Term& t, size_t max_chars = SIZE_MAX);

}  // namespace chat::term
