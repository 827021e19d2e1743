//! The clock every host-side target reads.

#if canImport(Glibc)
import Glibc
#endif

/// CLOCK_MONOTONIC in nanoseconds: the trace's timestamps, the recorder's
/// chunk age, the vhost-user backend's deadlines.
@Sendable public func monotonicNanoseconds() -> UInt64 { nanoseconds(of: CLOCK_MONOTONIC) }

/// The calling thread's CPU time in nanoseconds (CLOCK_THREAD_CPUTIME_ID):
/// what a piece of the thread's own work cost, whatever else the CPU ran.
public func threadCPUNanoseconds() -> UInt64 { nanoseconds(of: CLOCK_THREAD_CPUTIME_ID) }

/// `clock`'s time in nanoseconds.
@inline(__always)
func nanoseconds(of clock: clockid_t) -> UInt64 {
    var ts = timespec()
    clock_gettime(clock, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
