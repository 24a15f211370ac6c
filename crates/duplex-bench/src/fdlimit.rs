//! Raising this process's file-descriptor limit: an idle run holds one
//! descriptor per connection in the server and one in the client, far above
//! the usual soft limit of 1,024 (or a harness's 20,000).

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// The kernel's ceiling on any process's descriptor limit (`fs.nr_open`).
pub fn nr_open() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The soft and hard `RLIMIT_NOFILE` (`None`: unlimited).
pub fn nofile() -> (Option<u64>, Option<u64>) {
    let limit = getrlimit(Resource::Nofile);
    (limit.current, limit.maximum)
}

/// Raises the soft `RLIMIT_NOFILE` to `want` (capped at `fs.nr_open`), or
/// to the hard limit when `want` is `None`. Raising the hard limit as well
/// takes `CAP_SYS_RESOURCE` (root); without it the soft limit stops at the
/// hard one. Returns the limits in force afterwards.
pub fn raise_nofile(want: Option<u64>) -> (Option<u64>, Option<u64>) {
    let (_, hard) = nofile();
    let ceiling = nr_open();
    let want = match (want, ceiling) {
        (Some(w), Some(c)) => Some(w.min(c)),
        (w, _) => w,
    };
    let fits = |w: u64| hard.is_none_or(|h| w <= h);
    match want {
        Some(w) if !fits(w) => {
            let raised = setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(w),
                    maximum: Some(w),
                },
            );
            if raised.is_err() {
                // Not privileged: the hard limit is as far as it goes.
                let _ = setrlimit(
                    Resource::Nofile,
                    Rlimit {
                        current: hard,
                        maximum: hard,
                    },
                );
            }
        }
        w => {
            let _ = setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: w.or(hard),
                    maximum: hard,
                },
            );
        }
    }
    nofile()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asking for no more than the hard limit always succeeds.
    #[test]
    fn soft_limit_rises_to_the_hard_limit() {
        let (_, hard) = nofile();
        let (soft, hard_after) = raise_nofile(None);
        assert_eq!(hard_after, hard);
        assert_eq!(soft, hard);
    }
}
