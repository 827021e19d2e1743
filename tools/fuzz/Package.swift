// swift-tools-version:6.1
// libFuzzer targets for vtrace. Build and run with tools/fuzz/run.sh.
import PackageDescription

let package = Package(
    name: "vtrace-fuzz",
    dependencies: [.package(name: "vtrace", path: "../..")],
    targets: [
        .target(name: "FuzzSupport"),
        .executableTarget(
            name: "FuzzDevice",
            dependencies: [
                "FuzzSupport",
                .product(name: "VirtioCore", package: "vtrace"),
                .product(name: "GuestDriver", package: "vtrace"),
            ],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
        .executableTarget(
            name: "FuzzScenario",
            dependencies: ["FuzzSupport", .product(name: "Scenarios", package: "vtrace")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
        .executableTarget(
            name: "FuzzRecording",
            dependencies: ["FuzzSupport", .product(name: "Scenarios", package: "vtrace"), .product(name: "TraceRecording", package: "vtrace"),
                           .product(name: "TraceFormat", package: "vtrace"), .product(name: "TraceAnalysis", package: "vtrace")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
        .executableTarget(
            name: "FuzzPredicate",
            dependencies: ["FuzzSupport", .product(name: "TraceAnalysis", package: "vtrace"), .product(name: "VirtioCore", package: "vtrace")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
        .executableTarget(
            name: "FuzzTrace",
            dependencies: ["FuzzSupport", .product(name: "TraceFormat", package: "vtrace"), .product(name: "TraceAnalysis", package: "vtrace"),
                           .product(name: "TraceMapping", package: "vtrace")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
        .executableTarget(
            name: "FuzzGuest",
            dependencies: ["FuzzSupport", .product(name: "KVMHost", package: "vtrace"), .product(name: "VirtioCore", package: "vtrace")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
        .executableTarget(
            name: "FuzzVhost",
            dependencies: ["FuzzSupport", .product(name: "VhostUser", package: "vtrace"), .product(name: "VirtioCore", package: "vtrace")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
    ],
    swiftLanguageModes: [.v6]
)
