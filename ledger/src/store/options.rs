//! RocksDB tuning: one shared block cache, and bloom filters where reads are point reads.
//!
//! None of this changes what is stored or how: filters and cached index blocks are per-SST
//! extras that any RocksDB reads or ignores, SST files written before keep working without
//! filters until compaction rewrites them, and a binary without these options opens the store
//! as before.
//!
//! Not used, on purpose: a merge operator for the tx index (it would let a commit write
//! "first inclusion wins" blind). RocksDB cannot replay a write-ahead log holding merge
//! operands without the operator, and in its default point-in-time recovery it then stops
//! replaying there, silently dropping later commits — what an older dpx or any plain RocksDB
//! tool opening the store would do before it could even read the format version.

use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, Options};

use super::schema::{ALL_CFS, CF_BLOCK_IDS, CF_HEADERS, CF_NODES, CF_ROOTS, CF_STATE, CF_TX_INDEX};

/// The block-based table format every SST file is written in (see `column_families`).
const TABLE_FORMAT_VERSION: i32 = 5;

/// Bits per key of the bloom filters: about a 1 % false-positive rate.
const BLOOM_BITS_PER_KEY: f64 = 10.0;

/// Column families read by exact key (`get`), where a filter lets a lookup skip every SST file
/// that cannot hold the key: tree nodes, the flat latest state, the tx index (mostly misses:
/// admission and every commit ask for transactions never seen), block ids, headers and roots. The versioned
/// values (`jmt_values`) are read by `seek_for_prev`, which whole-key filters cannot serve, and
/// the rest are scanned by prefix.
const POINT_READ_CFS: [&str; 6] =
    [CF_NODES, CF_STATE, CF_TX_INDEX, CF_BLOCK_IDS, CF_HEADERS, CF_ROOTS];

/// The database-wide options.
pub(crate) fn db_options() -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts
}

/// One descriptor per column family, all sharing `cache`.
pub(crate) fn column_families(cache: &Cache) -> Vec<ColumnFamilyDescriptor> {
    ALL_CFS
        .iter()
        .map(|&name| {
            let mut table = BlockBasedOptions::default();
            // Table format 5, not the newer default: RocksDB 7.8 (a distribution's library,
            // see scripts/prereqs.sh) reads it, as the bundled 11.x does, so a data directory
            // moves between the two builds of dpx.
            table.set_format_version(TABLE_FORMAT_VERSION);
            table.set_block_cache(cache);
            // Index and filter blocks live in the shared cache (so its size bounds them too),
            // with high priority, and those of L0 files — the newest, read most — stay pinned.
            table.set_cache_index_and_filter_blocks(true);
            table.set_cache_index_and_filter_blocks_with_high_priority(true);
            table.set_pin_l0_filter_and_index_blocks_in_cache(true);
            let mut opts = Options::default();
            opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
            if POINT_READ_CFS.contains(&name) {
                // Full (not the legacy block-based) filter over whole keys.
                table.set_bloom_filter(BLOOM_BITS_PER_KEY, false);
                table.set_whole_key_filtering(true);
                // The memtable gets one too: the tx index's misses are decided there first.
                opts.set_memtable_whole_key_filtering(true);
                opts.set_memtable_prefix_bloom_ratio(0.02);
            }
            opts.set_block_based_table_factory(&table);
            ColumnFamilyDescriptor::new(name, opts)
        })
        .collect()
}
