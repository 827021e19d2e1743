// swift-tools-version:6.1
//
// vtrace: record-and-replay traces of a virtio-net device.
//
// Dependency direction (arrow = imports), kept one-way on purpose:
//
//   vtrace (CLI) ──► Scenarios ──► GuestDriver ──► VirtioCore
//   vtrace-bench ──► GuestDriver ──► VirtioCore
//
// VirtioCore is the pure device core: standard library only, no clock,
// no randomness, no environment. Later targets (trace format, replay,
// KVM host) sit beside and above it.
import PackageDescription

/// Whole-module, cross-module optimisation for the device core: the device is
/// generic over its guest memory and observer, and the benchmark, the replayer
/// and the recorder instantiate it from other modules. Without CMO those
/// instantiations would go through witness tables on every guest access.
let coreSettings: [SwiftSetting] = [
    .unsafeFlags(["-cross-module-optimization"], .when(configuration: .release)),
]

/// The recorder and replayer run once per event through a few class
/// instances; their dynamic exclusivity checks were 14% of replay time
/// (perf). The code keeps accesses disjoint by construction (one thread per
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
        .library(name: "TraceFormat", targets: ["TraceFormat"]),
        .library(name: "Tracing", targets: ["Tracing"]),
        .library(name: "KVMHost", targets: ["KVMHost"]),
        .library(name: "VhostUser", targets: ["VhostUser"]),
        .executable(name: "vtrace", targets: ["vtrace"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
    ],
    targets: [
        .target(name: "VirtioCore", swiftSettings: coreSettings),
        .target(name: "GuestDriver", dependencies: ["VirtioCore"], swiftSettings: coreSettings),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .target(name: "TraceFormat", dependencies: ["CZstd"], swiftSettings: tracingSettings),
        .target(name: "Tracing", dependencies: ["VirtioCore", "TraceFormat"], swiftSettings: tracingSettings),
        .target(name: "CKVM"),
        .target(name: "KVMHost", dependencies: ["CKVM", "VirtioCore", "TraceFormat", "Tracing"], swiftSettings: tracingSettings),
        .target(name: "CVhost"),
        .target(name: "VhostUser", dependencies: ["CVhost", "VirtioCore", "Tracing"], swiftSettings: tracingSettings),
        .target(name: "Scenarios", dependencies: ["VirtioCore", "GuestDriver", "TraceFormat", "Tracing"], swiftSettings: coreSettings),
        .executableTarget(
            name: "vtrace",
            dependencies: [
                "VirtioCore", "GuestDriver", "Scenarios", "TraceFormat", "Tracing", "KVMHost", "VhostUser",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "vtrace-bench", dependencies: ["VirtioCore", "GuestDriver", "TraceFormat", "Tracing"]),
        .testTarget(name: "VirtioCoreTests", dependencies: ["VirtioCore", "GuestDriver"]),
        .testTarget(name: "ScenariosTests", dependencies: ["Scenarios", "VirtioCore", "GuestDriver"]),
        .testTarget(name: "TraceFormatTests", dependencies: ["TraceFormat", "Tracing", "Scenarios", "VirtioCore", "GuestDriver"]),
        .testTarget(name: "KVMHostTests", dependencies: ["KVMHost", "CKVM", "VirtioCore", "TraceFormat", "Tracing"]),
        .testTarget(name: "VhostUserTests", dependencies: ["VhostUser", "CVhost", "VirtioCore", "TraceFormat", "Tracing", "vtrace"]),
        .testTarget(name: "CLITests", dependencies: ["vtrace", "Tracing"]),
    ],
    swiftLanguageModes: [.v6]
)
