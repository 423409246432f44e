/* Linked only when dpx uses a shared, distribution-built RocksDB (ROCKSDB_LIB_DIR without
 * ROCKSDB_STATIC; see ledger/build.rs and scripts/prereqs.sh).
 *
 * RocksDB 7.8's C API (Debian 12's librocksdb) has no write-buffer-manager functions, yet the
 * drop glue of rust-rocksdb's `Options` names rocksdb_write_buffer_manager_destroy, for a field
 * that dpx never sets. No write buffer manager is ever created (its create functions are not
 * linked at all), so the function is never called with one; this stand-in satisfies the link,
 * does nothing for a null handle and aborts on any other, which cannot happen. Weak: a library
 * that has the real function, or the bundled static build, takes precedence. */
#include <stdlib.h>

struct rocksdb_write_buffer_manager_t;

__attribute__((weak)) void rocksdb_write_buffer_manager_destroy(
    struct rocksdb_write_buffer_manager_t* wbm) {
  if (wbm != NULL) {
    abort();
  }
}
