//! The trace header of a device configuration, and back.

import TraceFormat
import VirtioCore

extension TraceHeader {
    /// A header describing `nics` devices built from `config` over `regions`.
    public init(config: NetConfig, nics: Int, offeredFeatures: UInt64, regions: [MemoryRegion]) {
        self.init()
        self.nics = nics
        queuePairs = Int(config.effectiveQueuePairs)
        mac = config.mac.array
        self.offeredFeatures = offeredFeatures
        maxQueueSize = Int(config.effectiveQueueMaxSize)
        memory = regions.map { TraceMemoryRegion(base: $0.base, size: $0.size) }
    }

    /// The device configuration the header describes.
    public var netConfig: NetConfig {
        NetConfig(mac: mac.count == 6 ? MACAddress(mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]) : .default, queuePairs: queuePairs,
                  queueMaxSize: UInt16(clamping: maxQueueSize))
    }
}
