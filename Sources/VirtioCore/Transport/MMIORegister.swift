//! The virtio-mmio register map (virtio v1.2 §4.2.2), version 2 only.

/// A named register of the virtio-mmio window. Raw values are window offsets.
public enum MMIORegister: UInt64, CaseIterable, Sendable {
    case magicValue = 0x000
    case version = 0x004
    case deviceID = 0x008
    case vendorID = 0x00c
    case deviceFeatures = 0x010
    case deviceFeaturesSel = 0x014
    case driverFeatures = 0x020
    case driverFeaturesSel = 0x024
    case queueSel = 0x030
    case queueNumMax = 0x034
    case queueNum = 0x038
    case queueReady = 0x044
    case queueNotify = 0x050
    case interruptStatus = 0x060
    case interruptACK = 0x064
    case status = 0x070
    case queueDescLow = 0x080
    case queueDescHigh = 0x084
    case queueDriverLow = 0x090
    case queueDriverHigh = 0x094
    case queueDeviceLow = 0x0a0
    case queueDeviceHigh = 0x0a4
    case configGeneration = 0x0fc

    /// The register's name as in the virtio spec, e.g. `QueueNotify`.
    public var specName: String {
        switch self {
        case .magicValue: return "MagicValue"
        case .version: return "Version"
        case .deviceID: return "DeviceID"
        case .vendorID: return "VendorID"
        case .deviceFeatures: return "DeviceFeatures"
        case .deviceFeaturesSel: return "DeviceFeaturesSel"
        case .driverFeatures: return "DriverFeatures"
        case .driverFeaturesSel: return "DriverFeaturesSel"
        case .queueSel: return "QueueSel"
        case .queueNumMax: return "QueueNumMax"
        case .queueNum: return "QueueNum"
        case .queueReady: return "QueueReady"
        case .queueNotify: return "QueueNotify"
        case .interruptStatus: return "InterruptStatus"
        case .interruptACK: return "InterruptACK"
        case .status: return "Status"
        case .queueDescLow: return "QueueDescLow"
        case .queueDescHigh: return "QueueDescHigh"
        case .queueDriverLow: return "QueueDriverLow"
        case .queueDriverHigh: return "QueueDriverHigh"
        case .queueDeviceLow: return "QueueDeviceLow"
        case .queueDeviceHigh: return "QueueDeviceHigh"
        case .configGeneration: return "ConfigGeneration"
        }
    }

    /// Human name of any window offset: a register, `config+N`, or the hex offset.
    public static func describe(offset: UInt64) -> String {
        if let r = MMIORegister(rawValue: offset) { return r.specName }
        if offset >= MMIOLayout.configOffset { return "config+0x\(String(offset - MMIOLayout.configOffset, radix: 16))" }
        return "0x\(String(offset, radix: 16))"
    }
}

/// Fixed facts of the virtio-mmio window (spec §2.1, §7).
public enum MMIOLayout {
    /// Size of one device's window.
    public static let windowSize: UInt64 = 0x1000
    /// First offset of device config space.
    public static let configOffset: UInt64 = 0x100
    /// "virt", little-endian.
    public static let magic: UInt32 = 0x7472_6976
    /// Modern (non-legacy) virtio-mmio.
    public static let version: UInt32 = 2
    /// Device ID of a network card.
    public static let netDeviceID: UInt32 = 1
    public static let vendorID: UInt32 = 0
}
