// Helpers for the node's tables (node.cpp, node_remote.cpp).
#pragma once

namespace chat::node {

// Unordered containers keep their bucket arrays at their largest: a table a peer grew to a
// million entries and emptied would keep 8 MB for good. Shrink it once at most an eighth of
// its buckets are used (amortized: each shrink follows as many erasures).
template <typename C>
void shrink_if_sparse(C& c) {
  if (c.bucket_count() > 1024 && c.size() < c.bucket_count() / 8) c.rehash(0);
}

}  // namespace chat::node
