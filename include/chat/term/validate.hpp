// Bounds-checked walk over the external term format. erl_interface decodes without knowing
// the buffer length, so peer bytes are walked here first: a term that would read past its
// buffer, nest too deep or claim more elements than bytes remain is rejected before ei sees it.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

#include "chat/term/term.hpp"

namespace chat::term {

// Size in bytes of the term starting at data[offset] (no version byte), or nullopt if it is
// malformed, truncated, nested deeper than max_depth or uses a tag this node does not accept.
// An ATOM_CACHE_REF (tag 82) is accepted only when it indexes `atoms`, the atoms of the
// distribution header before the term; `sites`, when given, collects where they are.
// With `budget`, also what decoding it would take in memory (decoded_cost below) is taken
// from *budget, and a term that would take more is refused before anything is allocated:
// one byte of a list of [] decodes to a whole Term, so bytes alone do not bound memory.
// A term refused for its cost leaves *budget at 0, so the caller needs no second walk to
// tell why it was refused (a term that spends the budget to the byte and is then malformed
// counts as over budget; both close the connection).
struct CacheRefSites {
  std::vector<size_t> refs;       // where each ATOM_CACHE_REF starts, in order
  std::vector<size_t> fun_sizes;  // where each NEW_FUN_EXT's Size field is, in order: it counts its bytes
};
std::optional<size_t> encoded_size(std::string_view data, size_t offset, size_t max_depth, size_t* budget = nullptr,
                                   AtomRefs atoms = {}, CacheRefSites* sites = nullptr);

// Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF), as
// binary_to_term/1 insists for atom text.
[[nodiscard]] bool valid_utf8(std::string_view text);
// Text an atom may have: well-formed UTF-8 of at most 255 characters.
[[nodiscard]] bool valid_atom_text(std::string_view text);

// The memory decode_at() gives a term, as the walk counts it: its slot in its container
// (sizeof(Term), for every element of every tuple, list and map) plus what it keeps on the
// heap (names past the short-string buffer, small binaries, unmodelled terms' bytes). Large
// binaries are not counted: they share the frame's buffer, which is bounded by its size.
constexpr size_t kShortString = 15;  // what std::string holds without a heap block (libstdc++)

}  // namespace chat::term
