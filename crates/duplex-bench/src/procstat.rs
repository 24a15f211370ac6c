//! Readings from Linux's /proc for the idle-connection runs: the memory
//! a held connection costs lives partly in the server process (its RSS) and
//! partly in the kernel (socket, inode, file and epoll slab objects, and
//! TCP buffer pages), and the run must watch the machine's available memory
//! so that it stops ramping before anything is OOM-killed.
//!
//! Each reading has a pure parser (tested on sample text) and a reader that
//! returns `None` where the file is missing or unreadable, so the harness
//! runs (with fewer figures) outside Linux or without root.

/// The figures of /proc/meminfo an idle run watches, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemInfo {
    /// `MemAvailable`: what can still be allocated without swapping.
    pub available_kib: u64,
    /// `Slab`: all kernel slab caches.
    pub slab_kib: u64,
    /// `SUnreclaim`: the slab the kernel cannot give back (sockets are here).
    pub sunreclaim_kib: u64,
}

/// Parses /proc/meminfo.
pub fn parse_meminfo(text: &str) -> Option<MemInfo> {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
    };
    Some(MemInfo {
        available_kib: field("MemAvailable")?,
        slab_kib: field("Slab")?,
        sunreclaim_kib: field("SUnreclaim")?,
    })
}

/// The machine's memory figures now.
pub fn meminfo() -> Option<MemInfo> {
    parse_meminfo(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

/// The `TCP:` line of /proc/net/sockstat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpSockstat {
    /// Sockets in use (both ends of a loopback connection count).
    pub inuse: u64,
    /// Closed by the process, not yet by TCP.
    pub orphan: u64,
    /// In TIME_WAIT.
    pub tw: u64,
    /// Allocated (in use, orphans and those not yet accepted).
    pub alloc: u64,
    /// Pages charged to TCP buffers (queues), what `net.ipv4.tcp_mem`
    /// limits.
    pub mem_pages: u64,
}

/// Parses /proc/net/sockstat.
pub fn parse_sockstat(text: &str) -> Option<TcpSockstat> {
    let line = text.lines().find_map(|l| l.strip_prefix("TCP:"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let field = |name: &str| {
        let at = words.iter().position(|w| *w == name)?;
        words.get(at + 1)?.parse().ok()
    };
    Some(TcpSockstat {
        inuse: field("inuse")?,
        orphan: field("orphan")?,
        tw: field("tw")?,
        alloc: field("alloc")?,
        mem_pages: field("mem")?,
    })
}

/// The kernel's TCP socket counts now.
pub fn sockstat() -> Option<TcpSockstat> {
    parse_sockstat(&std::fs::read_to_string("/proc/net/sockstat").ok()?)
}

/// One slab cache from /proc/slabinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlabCache {
    /// The cache's name (`TCP`, `sock_inode_cache`, ...).
    pub name: String,
    /// Objects in use.
    pub active_objs: u64,
    /// Bytes per object.
    pub objsize: u64,
    /// Bytes of the slabs the cache holds (slabs × pages per slab × 4 KiB),
    /// which is what the cache takes from the machine.
    pub bytes: u64,
}

/// The page size slabinfo's page counts are in (x86-64 and most arm64
/// kernels).
const PAGE: u64 = 4096;

/// Parses /proc/slabinfo (version 2.1): name, active_objs, num_objs,
/// objsize, objperslab, pagesperslab, `: tunables` three numbers,
/// `: slabdata` active_slabs num_slabs sharedavail.
pub fn parse_slabinfo(text: &str) -> Vec<SlabCache> {
    text.lines()
        .filter(|l| !l.starts_with("slabinfo") && !l.starts_with('#'))
        .filter_map(|line| {
            let w: Vec<&str> = line.split_whitespace().collect();
            let num = |i: usize| w.get(i)?.parse::<u64>().ok();
            let slabdata = w.iter().position(|x| *x == "slabdata")?;
            Some(SlabCache {
                name: (*w.first()?).to_string(),
                active_objs: num(1)?,
                objsize: num(3)?,
                bytes: num(slabdata + 2)? * num(5)? * PAGE,
            })
        })
        .collect()
}

/// Every slab cache now; `None` without root (the file is mode 0400).
pub fn slabinfo() -> Option<Vec<SlabCache>> {
    Some(parse_slabinfo(
        &std::fs::read_to_string("/proc/slabinfo").ok()?,
    ))
}

/// The slab caches a held TCP connection adds objects to: the socket, its
/// inode, its `struct file` and dentry, and the epoll item and wait entry
/// that register it with the runtime.
pub const SOCKET_SLABS: [&str; 6] = [
    "TCP",
    "sock_inode_cache",
    "filp",
    "dentry",
    "eventpoll_epi",
    "eventpoll_pwq",
];

/// The resident set size of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The file descriptors process `pid` holds open (its sockets among them).
pub fn fd_count(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// Connections netfilter tracks, if conntrack is loaded: loopback
/// connections count against `nf_conntrack_max` once it hooks in.
pub fn conntrack_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn fd_count_reads_a_live_process_and_none_for_a_missing_one() {
        // Exact counts are not compared: other tests open files meanwhile.
        let own = fd_count(std::process::id());
        assert!(own.is_some_and(|n| n >= 3), "stdio at least: {own:?}");
        assert_eq!(fd_count(u32::MAX), None);
    }

    #[test]
    fn meminfo_fields() {
        let text = "MemTotal:       24684000 kB\nMemFree:        23000000 kB\n\
                    MemAvailable:   23600000 kB\nSlab:             200000 kB\n\
                    SReclaimable:     150000 kB\nSUnreclaim:        50000 kB\n";
        assert_eq!(
            parse_meminfo(text),
            Some(MemInfo {
                available_kib: 23_600_000,
                slab_kib: 200_000,
                sunreclaim_kib: 50_000,
            })
        );
        assert_eq!(parse_meminfo("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn sockstat_tcp_line() {
        let text =
            "sockets: used 14\nTCP: inuse 7 orphan 1 tw 3 alloc 9 mem 294\nUDP: inuse 0 mem 0\n";
        assert_eq!(
            parse_sockstat(text),
            Some(TcpSockstat {
                inuse: 7,
                orphan: 1,
                tw: 3,
                alloc: 9,
                mem_pages: 294,
            })
        );
        assert_eq!(parse_sockstat("UDP: inuse 0 mem 0\n"), None);
    }

    #[test]
    fn slabinfo_caches() {
        let text = "slabinfo - version: 2.1\n\
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n\
TCP                   79    130   2368   13    8 : tunables    0    0    0 : slabdata     10     10      0\n\
filp                 596    609    192   21    1 : tunables    0    0    0 : slabdata     29     29      0\n";
        let caches = parse_slabinfo(text);
        assert_eq!(caches.len(), 2);
        assert_eq!(
            caches[0],
            SlabCache {
                name: "TCP".into(),
                active_objs: 79,
                objsize: 2368,
                bytes: 10 * 8 * 4096,
            }
        );
        assert_eq!(caches[1].bytes, 29 * 4096);
    }
}
