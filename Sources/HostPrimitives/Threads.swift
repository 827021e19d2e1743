//! Locks, a condition variable and joinable threads over pthreads (the trace
//! writer's compressor, the recorder's flusher, the KVM host's vCPUs).

#if canImport(Glibc)
import Glibc
#endif

/// A pthread mutex with a stable address (heap-allocated, destroyed on deinit).
public final class Mutex: @unchecked Sendable {
    let raw = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    public init() { pthread_mutex_init(raw, nil) }
    deinit {
        pthread_mutex_destroy(raw)
        raw.deallocate()
    }
    public func lock() { pthread_mutex_lock(raw) }
    public func unlock() { pthread_mutex_unlock(raw) }
    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// A condition variable used with one ``Mutex``.
public final class Condition: @unchecked Sendable {
    let raw = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    public init() { pthread_cond_init(raw, nil) }
    deinit {
        pthread_cond_destroy(raw)
        raw.deallocate()
    }
    /// Waits; `mutex` must be locked.
    public func wait(_ mutex: Mutex) { pthread_cond_wait(raw, mutex.raw) }
    /// Waits at most `milliseconds`; `mutex` must be locked.
    public func wait(_ mutex: Mutex, milliseconds: Int) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let ns = Int(ts.tv_nsec) + milliseconds * 1_000_000
        ts.tv_sec += ns / 1_000_000_000
        ts.tv_nsec = ns % 1_000_000_000
        pthread_cond_timedwait(raw, mutex.raw, &ts)
    }
    public func signal() { pthread_cond_signal(raw) }
    public func broadcast() { pthread_cond_broadcast(raw) }
}

/// A thread running one closure, joined explicitly.
public final class BackgroundThread: @unchecked Sendable {
    var thread: pthread_t?

    /// Starts `body` on a new thread; nil if the system refused one.
    public init?(_ body: @escaping @Sendable () -> Void) {
        final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
        let box = Unmanaged.passRetained(Box(body))
        var t = pthread_t()
        let rc = pthread_create(&t, nil, { arg in
            let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
            box.body()
            return nil
        }, box.toOpaque())
        if rc != 0 {
            box.release()
            return nil
        }
        thread = t
    }

    /// Waits for the thread to finish (once).
    public func join() {
        if let t = thread {
            pthread_join(t, nil)
            thread = nil
        }
    }
}
