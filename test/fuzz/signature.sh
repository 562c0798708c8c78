# shellcheck shell=bash
# Sourced by scripts/fuzz. A crash's signature: the kind of report and the first project
# functions on its stack, hashed to 8 hex digits, so that the same bug found again from
# another input is recognised. Saved crashes are named <kind>-<signature>-<anything>.
#
#   source test/fuzz/signature.sh; fuzz_signature LOG_OF_A_CRASHING_RUN
fuzz_signature() {
    local log=$1 kind frames
    kind=$(grep -m1 -oE 'fuzz invariant violated: [^(]*|ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer): [a-zA-Z-]+|runtime error: [a-z ]+|ERROR: libFuzzer: [a-z-]+' "$log" || echo unknown)
    # Symbolized frames in the project's sources ("in FUNC /…/src/x.cpp:L:C"), without the
    # path, line and addresses, which change with every edit and build.
    frames=$(grep -E '^ +#[0-9]+ 0x[0-9a-f]+ in .* /[^ ]*/(src|include|test/fuzz)/[^ /]+:[0-9]+' "$log" |
        sed -E 's/^ +#[0-9]+ 0x[0-9a-f]+ in //; s/ \/[^ ]*:[0-9]+(:[0-9]+)?$//' | grep -v '^fuzz::fail' |
        head -n 3 | tr '\n' ';')
    printf '%s|%s' "$kind" "$frames" | sha1sum | cut -c1-8
}
