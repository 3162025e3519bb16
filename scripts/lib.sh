# Shared helpers for the scripts in this folder: `source scripts/lib.sh`.

# Runs a named step, printing a header and how long it took; stops the script on failure.
step() {
    local name=$1
    shift
    printf '\n==> %s\n' "$name"
    local start=$SECONDS
    if ! "$@"; then
        printf '\n==> FAILED: %s\n' "$name" >&2
        exit 1
    fi
    printf '==> ok: %s (%ss)\n' "$name" "$((SECONDS - start))"
    STEPS_PASSED=$((${STEPS_PASSED:-0} + 1))
}

# Makes sure cargo (with rustfmt and clippy) is on PATH, installing Debian's packages if it is not.
ensure_rust() {
    if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "cargo not found: installing Debian's Rust toolchain" >&2
        apt_install cargo rustc rustfmt rust-clippy
    fi
    if command -v rustup >/dev/null 2>&1; then
        rustup component add rustfmt clippy >/dev/null 2>&1 || true
    fi
    cargo --version
}

# Installs Debian packages (as root, or through sudo), updating the package lists once.
apt_install() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if [ -z "${APT_UPDATED:-}" ]; then
        $sudo apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}

# The sanitizer runtimes come with gcc on Debian (libasan, libubsan); check that they link.
sanitizers_link() {
    local dir
    dir=$(mktemp -d)
    printf 'int main(void) { return 0; }\n' >"$dir/t.c"
    if ! gcc -fsanitize=address,undefined "$dir/t.c" -o "$dir/t" 2>"$dir/err"; then
        cat "$dir/err" >&2
        echo "gcc cannot link -fsanitize=address,undefined: installing the runtimes" >&2
        apt_install libasan8 libubsan1
    fi
    rm -rf "$dir"
}

# Checks that README.md shows the file FILE verbatim (an example kept runnable by a test), inside
# a fenced code block.
readme_shows() {
    python3 - "$1" <<'PY'
import sys
path = sys.argv[1]
with open(path, encoding="utf-8") as f:
    example = f.read().strip("\n")
with open("README.md", encoding="utf-8") as f:
    readme = f.read()
if "\n" + example + "\n```" not in readme:
    sys.exit(f"README.md does not show {path} as it is: copy the file into its code block")
print(f"README.md shows {path} ({example.count(chr(10)) + 1} lines)")
PY
}

# Prints what matters of a libFuzzer log LOG (scripts/fuzz, scripts/fuzz-python): its start, its
# end and any failure, without the many progress lines, atheris's instrumentation notes and the
# recommended dictionary.
fuzz_log_summary() {
    grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)|^INFO: Instrumenting |__sanitizer_' "$1" \
        | sed '/Recommended dictionary/,/End of recommended dictionary/d' | tail -n 30
}
