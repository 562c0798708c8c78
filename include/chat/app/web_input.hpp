// What the web dyno reads out of a request's body and headers, apart from the routes that use
// it: both come from anyone who can reach the public port, so these parsers have a fuzz target
// of their own (test/fuzz/fuzz_web.cpp).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "chat/http/server.hpp"

namespace chat::app {

// The minimal JSON the API accepts: a flat object of string values ({"to": …, "text": …}).
std::optional<std::map<std::string, std::string>> parse_flat_json(const std::string& body);

// The password of HTTP Basic credentials ("base64(user:password)"), or nullopt.
std::optional<std::string> basic_password(std::string_view credentials);

// Whether the request's Authorization header carries the token, as Bearer or as Basic's
// password (any user name). An empty token lets every request in.
bool authorized(const http::Request& req, const std::string& token);

}  // namespace chat::app
