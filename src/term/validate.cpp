#include "chat/term/validate.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "chat/term/term.hpp"

namespace chat::term {
namespace {

// Tags of the external term format (erts "External Term Format" chapter).
enum Tag : uint8_t {
  kNewFloat = 70,
  kAtomCacheRef = 82,
  kBitBinary = 77,
  kNewPid = 88,
  kNewPort = 89,
  kNewerReference = 90,
  kSmallInteger = 97,
  kInteger = 98,
  kFloat = 99,
  kAtom = 100,
  kReference = 101,
  kPort = 102,
  kPid = 103,
  kSmallTuple = 104,
  kLargeTuple = 105,
  kNil = 106,
  kString = 107,
  kList = 108,
  kBinary = 109,
  kSmallBig = 110,
  kLargeBig = 111,
  kNewFun = 112,
  kExport = 113,
  kNewReference = 114,
  kSmallAtom = 115,
  kMap = 116,
  kAtomUtf8 = 118,
  kSmallAtomUtf8 = 119,
  kV4Port = 120,
};

constexpr size_t kMaxAtomBytes = 255 * 4;
constexpr size_t kMaxRefWords = 5;

// The length of the UTF-8 sequence at text[k] if it is well formed, else 0.
size_t utf8_char(std::string_view text, size_t k) {
  const auto c = static_cast<uint8_t>(text[k]);
  size_t len = 0;
  uint32_t cp = 0;
  if (c < 0x80) return 1;
  if ((c & 0xe0) == 0xc0) {
    len = 2;
    cp = c & 0x1fU;
  } else if ((c & 0xf0) == 0xe0) {
    len = 3;
    cp = c & 0x0fU;
  } else if ((c & 0xf8) == 0xf0) {
    len = 4;
    cp = c & 0x07U;
  } else {
    return 0;
  }
  if (k + len > text.size()) return 0;
  for (size_t m = 1; m < len; ++m) {
    const auto cc = static_cast<uint8_t>(text[k + m]);
    if ((cc & 0xc0) != 0x80) return 0;
    cp = (cp << 6U) | (cc & 0x3fU);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

class Walker {
 public:
  Walker(std::string_view data, size_t max_depth, size_t* budget, AtomRefs atoms, CacheRefSites* sites)
      : data_(data), max_depth_(max_depth), budget_(budget), atoms_(atoms), sites_(sites) {}

  // One term, in the slot of a container (or the root): its slot is charged, then its walk.
  bool term(size_t& i, size_t depth) { return charge(sizeof(Term)) && walk(i, depth); }

 private:
  bool walk(size_t& i, size_t depth) {
    if (depth > max_depth_ || !has(i, 1)) return false;
    const auto tag = byte(i++);
    switch (tag) {
      case kSmallInteger: return skip(i, 1);
      case kInteger: return skip(i, 4);
      case kFloat: return false;  // the pre-NEW_FLOATS text form: never sent once it is negotiated
      case kNewFloat: return skip(i, 8);
      case kAtom: {
        // Latin-1: up to two UTF-8 bytes per character once decoded.
        uint32_t n = 0;
        return u16(i, n) && n <= 255 && text(2 * size_t{n}) && skip(i, n);
      }
      case kSmallAtom: {
        uint32_t n = 0;
        return u8(i, n) && text(2 * size_t{n}) && skip(i, n);
      }
      case kAtomUtf8: {
        uint32_t n = 0;
        return u16(i, n) && n <= kMaxAtomBytes && text(n) && utf8(i, n);
      }
      case kSmallAtomUtf8: {
        uint32_t n = 0;
        return u8(i, n) && text(n) && utf8(i, n);
      }
      case kAtomCacheRef: {
        uint32_t k = 0;
        if (!u8(i, k) || k >= atoms_.size()) return false;
        if (sites_ != nullptr) sites_->refs.push_back(i - 2);
        return text(atoms_[k]->size());
      }
      case kReference: return atom(i) && skip(i, 5);
      case kNewReference:
      case kNewerReference: {
        uint32_t words = 0;
        if (!u16(i, words) || words == 0 || words > kMaxRefWords || !atom(i)) return false;
        return charge(4 * size_t{words}) && skip(i, (tag == kNewReference ? 1 : 4) + 4 * size_t{words});
      }
      case kPort: return atom(i) && skip(i, 5);
      case kNewPort: return atom(i) && skip(i, 8);
      case kV4Port: return atom(i) && skip(i, 12);
      case kPid: return atom(i) && skip(i, 9);
      case kNewPid: return atom(i) && skip(i, 12);
      case kSmallTuple: {
        uint32_t n = 0;
        return u8(i, n) && elements(i, n, depth);
      }
      case kLargeTuple: {
        uint32_t n = 0;
        return u32(i, n) && elements(i, n, depth);
      }
      case kMap: {
        uint32_t n = 0;
        return u32(i, n) && n <= remaining(i) / 2 && elements(i, size_t{n} * 2, depth);
      }
      case kNil: return true;
      case kString: {
        // A list of small integers: one Term per byte.
        uint32_t n = 0;
        return u16(i, n) && charge(size_t{n} * sizeof(Term)) && skip(i, n);
      }
      case kList: {
        uint32_t n = 0;
        // The tail is one more term after the elements.
        return u32(i, n) && elements(i, size_t{n} + 1, depth);
      }
      case kBinary: {
        uint32_t n = 0;
        return u32(i, n) && (n >= Binary::kSharedMin || text(n)) && skip(i, n);
      }
      case kBitBinary: {
        uint32_t n = 0;
        return u32(i, n) && text(size_t{n} + 6) && skip(i, 1) && skip(i, n);
      }
      case kSmallBig: {
        uint32_t n = 0;
        return u8(i, n) && text(size_t{n} + 3) && skip(i, 1) && skip(i, n);
      }
      case kLargeBig: {
        uint32_t n = 0;
        return u32(i, n) && text(size_t{n} + 6) && skip(i, 1) && skip(i, n);
      }
      case kExport: return elements(i, 3, depth);
      case kNewFun: {
        // Size counts itself; the inner fields are walked too, so Size must agree.
        const size_t start = i;
        if (sites_ != nullptr) sites_->fun_sizes.push_back(start);
        uint32_t size = 0;
        if (!u32(i, size) || size < 4 + 1 + 16 + 4 + 4 || !has(start, size) || !text(size + 1)) return false;
        uint32_t num_free = 0;
        i += 1 + 16 + 4;
        if (!u32(i, num_free)) return false;
        // Module, OldIndex, OldUniq, Pid, then the free variables.
        if (!elements(i, size_t{4} + num_free, depth)) return false;
        return i == start + size;
      }
      default: return false;
    }
  }

  [[nodiscard]] size_t remaining(size_t i) const { return i <= data_.size() ? data_.size() - i : 0; }
  [[nodiscard]] bool has(size_t i, size_t n) const { return n <= remaining(i); }
  [[nodiscard]] uint8_t byte(size_t i) const { return static_cast<uint8_t>(data_[i]); }

  // Memory the decoded term will take; false once over the budget.
  bool charge(size_t n) {
    if (budget_ == nullptr) return true;
    if (n > *budget_) {
      *budget_ = 0;  // spent: how the caller tells a refusal for cost from a malformed term
      return false;
    }
    *budget_ -= n;
    return true;
  }
  // Bytes a std::string keeps on the heap for n characters.
  bool text(size_t n) { return n <= kShortString || charge(n + 1); }

  bool skip(size_t& i, size_t n) {
    if (!has(i, n)) return false;
    i += n;
    return true;
  }
  bool u8(size_t& i, uint32_t& out) {
    if (!has(i, 1)) return false;
    out = byte(i);
    i += 1;
    return true;
  }
  bool u16(size_t& i, uint32_t& out) {
    if (!has(i, 2)) return false;
    out = (uint32_t{byte(i)} << 8) | byte(i + 1);
    i += 2;
    return true;
  }
  bool u32(size_t& i, uint32_t& out) {
    if (!has(i, 4)) return false;
    out = (uint32_t{byte(i)} << 24) | (uint32_t{byte(i + 1)} << 16) | (uint32_t{byte(i + 2)} << 8) |
          byte(i + 3);
    i += 4;
    return true;
  }
  // A node name inside a pid, port or ref: an atom without NUL bytes (ei keeps node names as
  // C strings, so a NUL would silently shorten the name).
  bool atom(size_t& i) {
    if (!has(i, 1)) return false;
    const auto tag = byte(i);
    if (tag == kAtomCacheRef) {
      const size_t start = i;
      return walk(i, 0) && atoms_[byte(start + 1)]->find('\0') == std::string::npos;
    }
    if (tag != kAtom && tag != kAtomUtf8 && tag != kSmallAtom && tag != kSmallAtomUtf8) return false;
    const size_t start = i;
    if (!walk(i, 0)) return false;
    const size_t header = (tag == kAtom || tag == kAtomUtf8) ? 3 : 2;
    return data_.substr(start + header, i - start - header).find('\0') == std::string_view::npos;
  }
  // UTF-8 atom text must be well-formed, as binary_to_term/1 insists.
  bool utf8(size_t& i, size_t n) {
    if (!has(i, n) || !valid_utf8(data_.substr(i, n))) return false;
    i += n;
    return true;
  }
  // Every element takes at least one byte, so a count larger than what remains is a lie
  // that would otherwise make us loop (or allocate) for nothing.
  // All n slots are charged at the header, so a count the budget cannot hold is refused
  // before a single element is walked.
  bool elements(size_t& i, size_t n, size_t depth) {
    if (n > remaining(i) || !charge(n * sizeof(Term))) return false;
    for (size_t k = 0; k < n; ++k) {
      if (!walk(i, depth + 1)) return false;
    }
    return true;
  }

  std::string_view data_;
  size_t max_depth_;
  size_t* budget_;
  AtomRefs atoms_;
  CacheRefSites* sites_;
};

}  // namespace

bool valid_utf8(std::string_view text) {
  // Names are nearly always ASCII: eight bytes at a time while no byte has its high bit set.
  size_t k = 0;
  for (; k + 8 <= text.size(); k += 8) {
    uint64_t word = 0;
    std::memcpy(&word, text.data() + k, sizeof word);
    if ((word & 0x8080808080808080ULL) != 0) break;
  }
  while (k < text.size()) {
    const size_t len = utf8_char(text, k);
    if (len == 0) return false;
    k += len;
  }
  return true;
}

bool valid_atom_text(std::string_view text) {
  const auto characters = std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<uint8_t>(c) & 0xc0U) != 0x80U;  // every byte but a continuation starts one
  });
  return text.size() <= kMaxAtomBytes && characters <= 255 && valid_utf8(text);
}

std::optional<size_t> encoded_size(std::string_view data, size_t offset, size_t max_depth, size_t* budget,
                                   AtomRefs atoms, CacheRefSites* sites) {
  Walker w(data, max_depth, budget, atoms, sites);
  size_t i = offset;
  if (!w.term(i, 0)) return std::nullopt;
  return i - offset;
}

}  // namespace chat::term
