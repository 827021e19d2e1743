//! The device status byte and the transitions the device accepts (spec §2.4).

/// Bits of the device status register (virtio v1.2 §2.1).
public struct DeviceStatus: OptionSet, Hashable, Sendable, Codable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let acknowledge = DeviceStatus(rawValue: 0x01)
    public static let driver = DeviceStatus(rawValue: 0x02)
    public static let driverOK = DeviceStatus(rawValue: 0x04)
    public static let featuresOK = DeviceStatus(rawValue: 0x08)
    public static let needsReset = DeviceStatus(rawValue: 0x40)
    public static let failed = DeviceStatus(rawValue: 0x80)

    /// The only transitions a non-zero Status write may make: from exactly
    /// `from`, add exactly the one bit `adds`. The order is the virtio v1.2
    /// §3.1.1 initialisation sequence; anything else (skipping a step, clearing
    /// a bit, two bits at once, writing FAILED or NEEDS_RESET, any write while
    /// FAILED or NEEDS_RESET is set) is refused and changes nothing.
    public static let transitions: [(from: DeviceStatus, adds: DeviceStatus)] = [
        ([], .acknowledge),
        ([.acknowledge], .driver),
        ([.acknowledge, .driver], .featuresOK),
        ([.acknowledge, .driver, .featuresOK], .driverOK),
    ]

    public var description: String {
        if rawValue == 0 { return "0" }
        let names: [(DeviceStatus, String)] = [
            (.acknowledge, "ACKNOWLEDGE"), (.driver, "DRIVER"), (.featuresOK, "FEATURES_OK"),
            (.driverOK, "DRIVER_OK"), (.needsReset, "NEEDS_RESET"), (.failed, "FAILED"),
        ]
        var parts = names.filter { contains($0.0) }.map(\.1)
        let known = names.reduce(UInt8(0)) { $0 | $1.0.rawValue }
        if rawValue & ~known != 0 { parts.append("0x\(String(rawValue & ~known, radix: 16))") }
        return parts.joined(separator: "|")
    }
}
