//go:build afcache_pkgconfig

package afcache

// With -tags afcache_pkgconfig: an installed library (scripts/install), found by pkg-config
// (set PKG_CONFIG_PATH for a prefix pkg-config does not search) and linked to its shared library.
// Go's build cache does not notice a change of what pkg-config prints: after moving the library
// to another prefix, run go clean -cache (or set CGO_CFLAGS=-I<prefix>/include, which it does key on).

/*
#cgo pkg-config: alphaforge_cache
*/
import "C"
