//! A counter's index in the trace: the canonical order of the 16 counters.

import TraceFormat
import VirtioCore

extension NetCounter {
    /// Position in the canonical order (the trace's counter index), 0...15.
    @inlinable
    public var ordinal: Int {
        switch self {
        case .txPackets: return 0
        case .txBytes: return 1
        case .rxPackets: return 2
        case .rxBytes: return 3
        case .txDroppedNoRxBuffer: return 4
        case .txDroppedRxPoisoned: return 5
        case .txChainInvalid: return 6
        case .txOversizeDropped: return 7
        case .rxChainInvalid: return 8
        case .rxWriteFailed: return 9
        case .txAddUsedFailures: return 10
        case .rxAddUsedFailures: return 11
        case .invalidAvailIdxCount: return 12
        case .ctrlMqSet: return 13
        case .ctrlChainInvalid: return 14
        case .ctrlAddUsedFailures: return 15
        }
    }

    /// The counter at a trace counter index.
    public init?(ordinal: Int) {
        guard (0..<NetCounter.allCases.count).contains(ordinal) else { return nil }
        self = NetCounter.allCases[ordinal]
    }
}
