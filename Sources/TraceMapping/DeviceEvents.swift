//! The trace event of each device action: what a recorder writes and a
//! replayer expects, defined once.

import TraceFormat
import VirtioCore

extension EventFields {
    /// `queue` poisoned by `error`.
    @inlinable
    public static func poisoned(queue: UInt16, _ error: QueueError) -> Self {
        let (code, details) = PoisonCode.encode(error)
        return .poison(queue: queue, code: code, details: details)
    }

    /// A warning the device logged.
    @inlinable
    public static func warned(_ warning: DeviceWarning) -> Self {
        let (code, details) = WarningCode.encode(warning)
        return .warning(code: code, details: details)
    }

    /// A counter's new value.
    @inlinable @inline(__always)
    public static func counterChanged(_ counter: NetCounter, _ value: UInt64) -> Self { .counter(index: counter.ordinal, value: value) }

    /// One interrupt.
    @inlinable @inline(__always)
    public static func raised(_ signals: InterruptSignals) -> Self { .interrupt(kind: signals.rawValue) }

    /// A vhost-user operation.
    @inlinable
    public static func operation(_ op: TransportOperation) -> Self {
        .transport(code: op.traceCode, queue: op.queue, values: op.traceValues)
    }
}
