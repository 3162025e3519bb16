//go:build afcache_pkgconfig

package afcache

// With -tags afcache_pkgconfig: an installed library (scripts/install), found by pkg-config
// (set PKG_CONFIG_PATH for a prefix pkg-config does not search) and linked to its shared library.

/*
#cgo pkg-config: alphaforge_cache
*/
import "C"
