// Erlang terms written as text, the way `file:consult/1` and the BEAM's `-ssl_dist_optfile`
// read them: `[{server, [{certfile, "/app/node.pem"}]}].` A configuration file is input too,
// so the parser is a bounded, non-throwing scanner and recursive-descent parser of the term
// subset such files use: atoms (bare and 'quoted'), strings (with Erlang's escapes, adjacent
// strings joined), integers (with `Base#Digits`, `_` separators, unary minus), characters
// (`$a`), lists (proper and `[H | T]`), tuples, maps, binaries of strings and bytes
// (`<<"pem">>`, `<<1,2>>`), and the external fun `fun M:F/A` (how an optfile names a
// `verify_fun`). Everything else (variables, floats, operators, records, bit syntax) is an
// error with its line number, never a guess.
//
// Strings become lists of integers, as in Erlang, one per byte of the file: a file is read as
// bytes, so a UTF-8 path stays the same bytes on its way to fopen() (a `\x{...}` escape above
// 255 becomes its UTF-8 bytes, for the same reason). A fun becomes a Raw term
// holding its external format (EXPORT_EXT), so it renders as `fun M:F/A` in messages.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "chat/term/term.hpp"

namespace chat::term {

struct TextLimits {
  size_t max_bytes = 1U << 20U;       // the whole text
  size_t max_depth = 64;              // nesting of lists, tuples, maps, binaries
  size_t max_items = 1U << 18U;       // every term and list element, in total
};

struct TextResult {
  std::vector<Term> terms;  // one per `Term.`, in order
  std::string error;        // empty on success
  size_t line = 0;          // where the error is (1-based)
  [[nodiscard]] bool ok() const { return error.empty(); }
};

// Every `Term.` in `text` (file:consult). An error names the line and what was found there.
TextResult parse_terms(std::string_view text, const TextLimits& limits = {});

// `fun Module:Function/Arity` as parse_terms returns it.
Term external_fun(const std::string& module, const std::string& function, unsigned arity);

// A proper list of integers 0..255 (an Erlang string as parsed above), or a binary, as bytes.
// False for anything else.
bool text_bytes(const Term& t, std::string* out);

}  // namespace chat::term
