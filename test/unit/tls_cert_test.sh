#!/usr/bin/env bash
# chat-node tls-ca and tls-cert: what they write (and with which modes), that OpenSSL verifies
# the node certificate against the CA with the host names a BEAM checks, that OTP's own
# ssl_dist_sup:consult/1 reads the optfile, that --if-configured is silent without a CA, and
# that errors name what is missing.
set -euo pipefail
bin=$1
dir=$(mktemp -d "${TMPDIR:-/tmp}/chat-tls-cert.XXXXXX")
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
mode() { stat -c %a "$1"; }

"$bin" tls-ca --out "$dir/ca" >"$dir/ca.out"
grep -q 'heroku config:set CHAT_TLS_CACERT=' "$dir/ca.out" || fail "tls-ca does not say how to set the config vars"
[[ $(mode "$dir/ca") == 700 && $(mode "$dir/ca/ca.key") == 600 ]] || fail "CA directory or key readable by others"

flags=$("$bin" tls-cert 10.1.2.3 kate@node.example --ca "$dir/ca" --out "$dir/node/sub")
[[ $flags == "-proto_dist inet_tls -ssl_dist_optfile $dir/node/sub/ssl_dist.conf" ]] || fail "tls-cert printed '$flags'"
for f in node.pem node.key ca.pem ssl_dist.conf; do
    [[ $(mode "$dir/node/sub/$f") == 600 ]] || fail "$f has mode $(mode "$dir/node/sub/$f")"
done
[[ $(mode "$dir/node") == 700 && $(mode "$dir/node/sub") == 700 ]] || fail "the certificate's directories are not private"
openssl verify -CAfile "$dir/ca/ca.pem" -purpose sslserver "$dir/node/sub/node.pem" >/dev/null || fail "not a server certificate of the CA"
openssl verify -CAfile "$dir/ca/ca.pem" -purpose sslclient "$dir/node/sub/node.pem" >/dev/null || fail "not a client certificate of the CA"
for h in 10.1.2.3 node.example; do
    openssl verify -CAfile "$dir/ca/ca.pem" -verify_hostname "$h" "$dir/node/sub/node.pem" >/dev/null ||
        fail "no DNS name $h in the certificate"
done
openssl verify -CAfile "$dir/ca/ca.pem" -verify_ip 10.1.2.3 "$dir/node/sub/node.pem" >/dev/null || fail "no IP address entry"
if openssl verify -CAfile "$dir/ca/ca.pem" -verify_hostname 10.1.2.4 "$dir/node/sub/node.pem" >/dev/null 2>&1; then
    fail "the certificate names a host it should not"
fi

# The optfile as the BEAM reads it: both sides, with the files just written.
consulted=$(erl -noshell -eval "io:format(\"~p\", [ssl_dist_sup:consult(\"$dir/node/sub/ssl_dist.conf\")]), halt().")
[[ $consulted == *"{certfile,\"$dir/node/sub/node.pem\"}"* && $consulted == *"{fail_if_no_peer_cert,true}"* ]] ||
    fail "ssl_dist_sup:consult/1 read: $consulted"

# Expired on purpose (for tests): valid from 3 days ago for 1 day.
"$bin" tls-cert 127.0.0.1 --ca "$dir/ca" --out "$dir/old" --backdate-days 3 --days 1 >/dev/null
if openssl verify -CAfile "$dir/ca/ca.pem" "$dir/old/node.pem" >/dev/null 2>&1; then fail "the backdated certificate is valid"; fi

# From the environment, as a dyno does it; with \n for line breaks too.
out=$(env CHAT_TLS_CACERT="$(cat "$dir/ca/ca.pem")" CHAT_TLS_CA_KEY="$(cat "$dir/ca/ca.key")" \
    "$bin" tls-cert 10.0.0.7 --out "$dir/env")
[[ -n $out ]] || fail "tls-cert from the environment printed nothing"
pem=$(cat "$dir/ca/ca.pem")
key=$(cat "$dir/ca/ca.key")
env CHAT_TLS_CACERT="${pem//$'\n'/\\n}" CHAT_TLS_CA_KEY="${key//$'\n'/\\n}" \
    "$bin" tls-cert 10.0.0.8 --out "$dir/env2" >/dev/null || fail "PEMs with \\n line breaks refused"

# Without a CA: silent with --if-configured, else an error that says what to set.
[[ -z $(env -u CHAT_TLS_CACERT -u CHAT_TLS_CA_KEY "$bin" tls-cert 10.0.0.9 --if-configured --out "$dir/none") ]] ||
    fail "--if-configured printed something without a CA"
[[ ! -e $dir/none ]] || fail "--if-configured wrote files without a CA"
if err=$(env -u CHAT_TLS_CACERT -u CHAT_TLS_CA_KEY "$bin" tls-cert 10.0.0.9 --out "$dir/none" 2>&1); then
    fail "tls-cert without a CA succeeded"
fi
[[ $err == *"CHAT_TLS_CACERT"* ]] || fail "the error does not say what to set: $err"
if err=$(env CHAT_TLS_CACERT="$pem" "$bin" tls-cert 10.0.0.9 --out "$dir/none" 2>&1); then fail "a CA without its key"; fi
[[ $err == *"CHAT_TLS_CACERT is set without CHAT_TLS_CA_KEY"* ]] || fail "unclear error: $err"
# chat-node runs TLS in chat-node-tls, found beside it; without it, it says so.
cp "$bin" "$dir/lonely-chat-node"
if err=$("$dir/lonely-chat-node" tls-ca --out "$dir/x" 2>&1); then fail "TLS worked without chat-node-tls"; fi
[[ $err == *"$dir/chat-node-tls, which cannot be started (No such file or directory): install chat-node-tls beside chat-node"* ]] ||
    fail "unclear error without chat-node-tls: $err"
"$dir/lonely-chat-node" gen-secret >/dev/null || fail "a plain command needed chat-node-tls"
echo "tls-ca, tls-cert: 1 passed, 0 failed"
