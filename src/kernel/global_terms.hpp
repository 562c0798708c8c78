// Small readers and builders of the terms global's messages carry, shared by the name server
// (global_server.cpp, global_partitions.cpp) and the locker (global_locker.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chat/term/term.hpp"

namespace chat::kernel::global_terms {

inline const std::string* atom_name(const term::Term& t) {
  const auto* a = t.get<term::Atom>();
  return a != nullptr ? &a->name : nullptr;
}

inline std::optional<int64_t> int_of(const term::Term& t) {
  if (const auto* i = t.get<int64_t>()) return *i;
  return std::nullopt;
}

// A list of node names as atoms.
inline term::Term atoms(const std::vector<std::string>& nodes) {
  std::vector<term::Term> items;
  items.reserve(nodes.size());
  for (const auto& n : nodes) items.push_back(term::atom(n));
  return term::list(std::move(items));
}

// Node names in a list of known nodes: Node or {Node, Vsn} (global.erl node_list/1).
inline std::vector<std::string> node_list(const term::Term& nodes) {
  std::vector<std::string> out;
  const auto* l = nodes.get<term::List>();
  if (l == nullptr) return out;
  for (const auto& n : l->items) {
    if (const auto* a = atom_name(n)) {
      out.push_back(*a);
    } else if (const auto* t = n.tuple(2); t != nullptr && atom_name((*t)[0]) != nullptr) {
      out.push_back(*atom_name((*t)[0]));
    }
  }
  return out;
}

}  // namespace chat::kernel::global_terms
