// Bounds-checked walk over the external term format. erl_interface decodes without knowing
// the buffer length, so peer bytes are walked here first: a term that would read past its
// buffer, nest too deep or claim more elements than bytes remain is rejected before ei sees it.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace chat::term {

// Size in bytes of the term starting at data[offset] (no version byte), or nullopt if it is
// malformed, truncated, nested deeper than max_depth or uses a tag this node does not accept
// (atom cache references: the node never negotiates an atom cache).
std::optional<size_t> encoded_size(std::string_view data, size_t offset, size_t max_depth);

}  // namespace chat::term
