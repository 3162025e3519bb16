//go:build !afcache_pkgconfig

package afcache

// In the repository: the header of include/ and the static library of a release build
// (cargo build --release -p alphaforge-cache), so the Go binary needs no shared library.

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: ${SRCDIR}/../../target/release/libalphaforge_cache.a -lgcc_s -lutil -lrt -lpthread -lm -ldl
*/
import "C"
