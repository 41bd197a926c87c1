//! The JVM's heap against `--max-clients`: every session may upload at once, and each upload's Hadoop
//! output stream queues up to `dfs.client.write.max-packets-in-flight` packets of
//! `dfs.client-write-packet-size` bytes (80 x 64 KiB by default, about 5 MiB) in the one JVM, plus the
//! Java array of each read or write call (the transfer buffer). The heap is sized from `--max-clients`
//! when `--jvm-opts` gives no `-Xmx`; a given heap too small for the default queue gets a shorter queue;
//! one too small for even a short queue is refused at start, with the numbers. A queue the administrator
//! set is kept, with a warning when it may not fit: a session whose upload then exhausts the heap gets a
//! 451 naming the OutOfMemoryError, and the other sessions go on.

use hdfsftpd_ffi::hdfs;

use super::JVM_OPTS;
use crate::settings::ConfigError;

pub const PACKETS_KEY: &str = "dfs.client.write.max-packets-in-flight";
pub const PACKET_SIZE_KEY: &str = "dfs.client-write-packet-size";
/// Hadoop's defaults (hdfs-default.xml).
pub const DEFAULT_PACKETS: u64 = 80;
pub const DEFAULT_PACKET_SIZE: u64 = 64 << 10;
/// Below this a stream waits on the DataNodes' acknowledgements too often (8 x 64 KiB = 512 KiB).
const MIN_PACKETS: u64 = 8;
/// The Hadoop client's own heap (its caches, RPC buffers, a listing's batch), with room to spare.
const CLIENT_BASE: u64 = 32 << 20;
/// The heap a transfer's calls hold, counted as the transfer loop's buffer (1 MiB, data.rs's
/// BUFFER_SIZE), what libhdfs's hdfsWrite allocated per call. On the safe side now: writes go through
/// one 64 KiB array per stream (ffi's jni.c, hdfsftpd_write) and HDFS reads through none.
const CALL_ARRAY: u64 = 1 << 20;
/// The heap the gateway asks for when `--jvm-opts` names none, unless `--max-clients` needs more.
const DEFAULT_HEAP: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// The classes of reads and writes (with the classes nested in them) that Hadoop initializes on first
/// use. Should that first use meet a full heap, the class's static initializer fails and the class stays
/// unusable for the JVM's life: every later upload would fail ("Could not initialize class
/// DataTransferProtos$ClientOperationHeaderProto"). Initialized at start, they cannot fail later.
const CLASSES_OF_TRANSFERS: &[&str] = &[
    "org.apache.hadoop.hdfs.protocol.proto.DataTransferProtos",
    "org.apache.hadoop.hdfs.protocol.proto.ClientNamenodeProtocolProtos",
    "org.apache.hadoop.hdfs.protocol.proto.HdfsProtos",
    "org.apache.hadoop.hdfs.protocol.datatransfer.PacketHeader",
    "org.apache.hadoop.hdfs.protocol.datatransfer.PipelineAck",
    "org.apache.hadoop.hdfs.protocol.datatransfer.Sender",
    "org.apache.hadoop.hdfs.DataStreamer",
    "org.apache.hadoop.hdfs.DFSOutputStream",
    "org.apache.hadoop.hdfs.DFSPacket",
    "org.apache.hadoop.hdfs.DFSInputStream",
    "org.apache.hadoop.hdfs.client.impl.BlockReaderRemote",
];

/// Initializes [`CLASSES_OF_TRANSFERS`] (a class another Hadoop version lacks is only logged).
pub fn initialize_transfer_classes() {
    let started = std::time::Instant::now();
    let mut count = 0;
    for class in CLASSES_OF_TRANSFERS {
        match hdfs::initialize_classes(class) {
            Ok(initialized) => count += initialized,
            Err(e) => log::warn!("HDFS: {e}"),
        }
    }
    log::debug!("HDFS: {count} classes of transfers initialized in {:.3?}", started.elapsed());
}

/// The heap one session may need while it uploads with `packets` packets of `packet_size` in flight.
/// A Hadoop packet also carries its checksums (4 bytes per 512) and a header.
fn per_session(packets: u64, packet_size: u64) -> u64 {
    packets * (packet_size + packet_size / 128 + 64) + CALL_ARRAY
}

/// The heap `max_clients` sessions all uploading at once need.
fn needed(max_clients: usize, packets: u64, packet_size: u64) -> u64 {
    CLIENT_BASE + max_clients as u64 * per_session(packets, packet_size)
}

/// `-Xmx` for `--jvm-opts` that names none: Hadoop's default queue for every session, and at least 1 GiB.
pub fn default_heap_option(max_clients: usize) -> String {
    let bytes = needed(max_clients, DEFAULT_PACKETS, DEFAULT_PACKET_SIZE).max(DEFAULT_HEAP);
    format!("-Xmx{}m", bytes.div_ceil(MIB))
}

/// How many packets each upload may have in flight in a heap of `max_heap` bytes: the most up to
/// Hadoop's default that fits, or an error that says what is needed when not even the minimal queue
/// fits. A queue the administrator chose (`given`) is kept: it is only warned about when it may not fit.
pub fn packets_in_flight(
    max_heap: u64,
    max_clients: usize,
    packet_size: u64,
    given: Option<u64>,
) -> Result<u64, ConfigError> {
    let fits = |packets| needed(max_clients, packets, packet_size) <= max_heap;
    if let Some(given) = given {
        if !fits(given) {
            log::warn!("HDFS: {}", too_small(max_heap, max_clients, packet_size, Some(given)).message);
        }
        return Ok(given);
    }
    (MIN_PACKETS..=DEFAULT_PACKETS)
        .rev()
        .find(|&packets| fits(packets))
        .ok_or_else(|| too_small(max_heap, max_clients, packet_size, None))
}

fn too_small(max_heap: u64, max_clients: usize, packet_size: u64, packets: Option<u64>) -> ConfigError {
    let queue = packets.unwrap_or(MIN_PACKETS);
    let session = per_session(queue, packet_size);
    let message = format!(
        "the JVM's heap ({} MiB) cannot hold --max-clients {max_clients} uploads at once: each needs {:.1} MiB \
         ({queue} packets of {} KiB in flight, {PACKETS_KEY} x {PACKET_SIZE_KEY}, plus a {} MiB transfer \
         array), and the Hadoop client {} MiB: {} MiB in all. Give a larger -Xmx in --jvm-opts{} fewer \
         --max-clients{}",
        max_heap / MIB,
        session as f64 / MIB as f64,
        packet_size >> 10,
        CALL_ARRAY / MIB,
        CLIENT_BASE / MIB,
        needed(max_clients, queue, packet_size).div_ceil(MIB),
        if packets.is_some() { "," } else { " or" },
        if packets.is_some() { format!(", or a smaller {PACKETS_KEY}") } else { String::new() },
    );
    JVM_OPTS.error(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_heap_holds_hadoop_s_queue_for_every_session_and_is_at_least_1_gib() {
        assert_eq!(default_heap_option(16), "-Xmx1024m");
        let heap = |clients| default_heap_option(clients).trim_start_matches("-Xmx").trim_end_matches('m').parse();
        let mib: u64 = heap(500).unwrap();
        assert!(mib << 20 >= needed(500, DEFAULT_PACKETS, DEFAULT_PACKET_SIZE), "{mib}");
        assert_eq!(packets_in_flight(mib << 20, 500, DEFAULT_PACKET_SIZE, None).unwrap(), DEFAULT_PACKETS);
    }

    #[test]
    fn a_small_heap_gets_a_shorter_queue_or_is_refused_with_the_numbers() {
        assert_eq!(packets_in_flight(1 << 30, 16, DEFAULT_PACKET_SIZE, None).unwrap(), DEFAULT_PACKETS);
        let shorter = packets_in_flight(512 << 20, 200, DEFAULT_PACKET_SIZE, None).unwrap();
        assert!((MIN_PACKETS..DEFAULT_PACKETS).contains(&shorter), "{shorter}");
        assert!(needed(200, shorter, DEFAULT_PACKET_SIZE) <= 512 << 20);
        let refused = packets_in_flight(64 << 20, 200, DEFAULT_PACKET_SIZE, None).unwrap_err();
        assert_eq!(refused.key, "jvm-opts");
        assert!(refused.message.starts_with("the JVM's heap (64 MiB) cannot hold --max-clients 200 uploads"));
        assert!(refused.message.contains("8 packets of 64 KiB"), "{}", refused.message);
        let given = too_small(1 << 30, 16, 1 << 20, Some(80)).message;
        assert!(given.contains("80 packets of 1024 KiB"), "{given}");
        assert!(given.ends_with("or a smaller dfs.client.write.max-packets-in-flight"), "{given}");
    }

    #[test]
    fn a_queue_the_administrator_chose_is_kept_even_when_it_may_not_fit() {
        assert_eq!(packets_in_flight(1 << 30, 16, DEFAULT_PACKET_SIZE, Some(20)).unwrap(), 20);
        assert_eq!(packets_in_flight(64 << 20, 16, 1 << 20, Some(80)).unwrap(), 80);
    }
}
