// swift-tools-version:6.1
//
// vtrace: record-and-replay traces of a virtio-net device.
//
// Dependency direction (arrow = imports), kept one-way on purpose:
//
//   VirtioCore        the device: stdlib only, no clock, no randomness
//   GuestDriver     ─► VirtioCore                      (a model driver)
//   HostPrimitives    threads, locks, the monotonic clock (Glibc only)
//   TraceFormat     ─► CZstd, CChecksum, HostPrimitives (the .vtrace bytes)
//   TraceMapping    ─► VirtioCore, TraceFormat         (device values as trace values)
//   TraceRecording  ─► TraceMapping, HostPrimitives    (what a recording VMM links)
//   TraceAnalysis   ─► TraceMapping, HostPrimitives    (replay, diff, bisect, plot, pcapng)
//   KVMHost         ─► TraceRecording, CKVM            (the KVM recording VMM)
//   VhostUser       ─► TraceRecording, CVhost          (the vhost-user backend)
//   Scenarios       ─► GuestDriver, TraceRecording      (the scenario language; trace → scenario)
//   ScenarioReduction ─► Scenarios, TraceAnalysis      (vtrace reduce)
//   TraceCatalog    ─► TraceAnalysis, CSQLite, CLibCrypto  (vtrace catalog: traces as SQLite rows)
//   QEMULaunch        a QEMU command line read and extended (Foundation only)
//   ChildProcess    ─► CSpawn, HostPrimitives          (a child that cannot outlive us)
//   vtrace (CLI)    ─► all of the above; vtrace-bench ─► Scenarios' layers
//
// (Each also imports what its arrow's targets build on: VirtioCore,
// TraceFormat.) KVMHost and VhostUser never see the analysis.
import PackageDescription

/// Whole-module, cross-module optimisation for the device core: the device is
/// generic over its guest memory and observer, and the benchmark, the replayer
/// and the recorder instantiate it from other modules. Without CMO those
/// instantiations would go through witness tables on every guest access.
let coreSettings: [SwiftSetting] = [
    .unsafeFlags(["-cross-module-optimization"], .when(configuration: .release)),
]

/// The recorder and replayer run once per event through a few class
/// instances, where dynamic exclusivity checks cost a measurable share of a
/// replay (docs/performance.md). The code keeps accesses disjoint by construction (one thread per
/// replayer; the recorder's lock serialises accesses), so release builds skip
/// the runtime checks; debug builds and the tests keep them.
let tracingSettings: [SwiftSetting] = coreSettings + [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "vtrace",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "VirtioCore", targets: ["VirtioCore"]),
        .library(name: "GuestDriver", targets: ["GuestDriver"]),
        .library(name: "Scenarios", targets: ["Scenarios"]),
        .library(name: "ScenarioReduction", targets: ["ScenarioReduction"]),
        .library(name: "TraceFormat", targets: ["TraceFormat"]),
        .library(name: "HostPrimitives", targets: ["HostPrimitives"]),
        .library(name: "TraceMapping", targets: ["TraceMapping"]),
        .library(name: "TraceRecording", targets: ["TraceRecording"]),
        .library(name: "TraceAnalysis", targets: ["TraceAnalysis"]),
        .library(name: "KVMHost", targets: ["KVMHost"]),
        .library(name: "VhostUser", targets: ["VhostUser"]),
        .library(name: "QEMULaunch", targets: ["QEMULaunch"]),
        .library(name: "ChildProcess", targets: ["ChildProcess"]),
        .library(name: "TraceCatalog", targets: ["TraceCatalog"]),
        .executable(name: "vtrace", targets: ["vtrace"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
    ],
    targets: [
        .target(name: "VirtioCore", swiftSettings: coreSettings),
        .target(name: "GuestDriver", dependencies: ["VirtioCore"], swiftSettings: coreSettings),
        .target(name: "HostPrimitives", swiftSettings: tracingSettings),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .target(name: "CChecksum"),
        .target(name: "TraceFormat", dependencies: ["CZstd", "CChecksum", "HostPrimitives"], swiftSettings: tracingSettings),
        .target(name: "TraceMapping", dependencies: ["VirtioCore", "TraceFormat"], swiftSettings: tracingSettings),
        .target(name: "TraceRecording", dependencies: ["HostPrimitives", "VirtioCore", "TraceFormat", "TraceMapping"],
                swiftSettings: tracingSettings),
        .target(name: "TraceAnalysis", dependencies: ["HostPrimitives", "VirtioCore", "TraceFormat", "TraceMapping"], swiftSettings: tracingSettings),
        .target(name: "CKVM"),
        .target(name: "KVMHost", dependencies: ["CKVM", "HostPrimitives", "VirtioCore", "TraceRecording"], swiftSettings: tracingSettings),
        .target(name: "CVhost"),
        .target(name: "VhostUser", dependencies: ["CVhost", "HostPrimitives", "VirtioCore", "TraceRecording"], swiftSettings: tracingSettings),
        .target(name: "QEMULaunch"),
        .target(name: "CSpawn"),
        .target(name: "ChildProcess", dependencies: ["CSpawn", "HostPrimitives"]),
        .target(name: "Scenarios", dependencies: ["VirtioCore", "GuestDriver", "TraceFormat", "TraceMapping", "TraceRecording"], swiftSettings: coreSettings),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CLibCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .target(name: "TraceCatalog", dependencies: ["TraceAnalysis", "TraceMapping", "TraceFormat", "VirtioCore", "HostPrimitives",
                                                    "CSQLite", "CLibCrypto"]),
        .target(name: "ScenarioReduction", dependencies: ["Scenarios", "TraceAnalysis", "TraceRecording", "TraceFormat", "HostPrimitives", "VirtioCore", "GuestDriver"]),
        .executableTarget(
            name: "vtrace",
            dependencies: [
                "VirtioCore", "GuestDriver", "Scenarios", "ScenarioReduction", "TraceFormat", "TraceRecording", "TraceAnalysis",
                "KVMHost", "VhostUser", "QEMULaunch", "ChildProcess", "TraceCatalog",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "vtrace-bench", dependencies: ["VirtioCore", "GuestDriver", "TraceFormat", "TraceRecording", "TraceAnalysis"]),
        .testTarget(name: "VirtioCoreTests", dependencies: ["VirtioCore", "GuestDriver"]),
        .testTarget(name: "GuestDriverTests", dependencies: ["GuestDriver", "VirtioCore"]),
        .testTarget(name: "HostPrimitivesTests", dependencies: ["HostPrimitives"]),
        .testTarget(name: "ScenariosTests", dependencies: ["Scenarios", "VirtioCore", "GuestDriver"]),
        .testTarget(name: "TraceFormatTests", dependencies: ["TraceFormat", "GuestDriver"]),
        .testTarget(name: "TraceMappingTests", dependencies: ["TraceMapping", "TraceFormat", "VirtioCore"]),
        // Recordings for the recorder's and the analysis' tests.
        .target(name: "TraceTestSupport", dependencies: ["Scenarios", "TraceFormat", "TraceRecording"], path: "Tests/TraceTestSupport"),
        .testTarget(name: "TraceRecordingTests",
                    dependencies: ["TraceRecording", "TraceMapping", "TraceFormat", "TraceTestSupport", "Scenarios", "VirtioCore", "GuestDriver",
                                   "TraceAnalysis"]),
        .testTarget(name: "TraceAnalysisTests",
                    dependencies: ["TraceAnalysis", "TraceRecording", "TraceMapping", "TraceFormat", "TraceTestSupport", "Scenarios",
                                   "VirtioCore", "GuestDriver"]),
        .testTarget(name: "KVMHostTests", dependencies: ["KVMHost", "CKVM", "VirtioCore", "TraceFormat", "TraceRecording", "TraceAnalysis"]),
        .testTarget(name: "VhostUserTests", dependencies: ["VhostUser", "CVhost", "VirtioCore", "TraceFormat", "TraceRecording", "TraceAnalysis", "vtrace"]),
        .testTarget(name: "TraceCatalogTests",
                    dependencies: ["TraceCatalog", "TraceAnalysis", "TraceRecording", "TraceFormat", "TraceTestSupport", "Scenarios",
                                   "VirtioCore", "GuestDriver"]),
        .testTarget(name: "QEMULaunchTests", dependencies: ["QEMULaunch"]),
        .testTarget(name: "ChildProcessTests", dependencies: ["ChildProcess"]),
        .testTarget(name: "CLITests", dependencies: ["vtrace", "TraceAnalysis"]),
    ],
    swiftLanguageModes: [.v6]
)
