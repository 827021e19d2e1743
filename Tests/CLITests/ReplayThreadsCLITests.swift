import Foundation
import Testing

/// `vtrace replay --threads N`: the report is the same on one thread and two.
@Suite("vtrace replay --threads")
struct ReplayThreadsCLITests {
    @Test func twoThreadsPrintTheSameReportAsOne() throws {
        for name in ["loopback-basic", "kvm-mq", "vhost-linux"] {
            let path = ContractTests.golden(name)
            for extra in [["--json"], ["--json", "--fault", "drop-rx:2"], ["--keep-going", "--fault", "drop-rx:2"], []] {
                let one = try CLI.runArguments(["replay", "--threads", "1", path] + extra)
                let two = try CLI.runArguments(["replay", "--threads", "2", path] + extra)
                #expect(one.status == two.status && one.stdout == two.stdout && one.stderr == two.stderr, "\(name) \(extra)")
            }
        }
        let diverged = try CLI.run("replay", "--threads", "2", "--fault", "drop-rx:2", ContractTests.golden("loopback-basic"))
        #expect(diverged.status == 1 && diverged.stdout.hasPrefix("DIVERGED at event "), "\(diverged.stdout)")
    }

    @Test func zeroThreadsIsBadUsage() throws {
        let r = try CLI.run("replay", "--threads", "0", ContractTests.golden("loopback-basic"))
        #expect(r.status == 2 && r.stderr.contains("--threads must be 1 or more"), "\(r.stderr)")
    }
}
