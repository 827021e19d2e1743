import Foundation
import Testing

/// `vtrace record -o OUT -- qemu-system-x86_64 ...`: the command line it
/// runs, what it refuses, and real boots (microvm and pc, Debian's kernel
/// under TCG) ended every way a CI run can end. The boots skip, saying why,
/// where QEMU or the guest kernel cannot be had (VhostUserCLITests' rule).
@Suite("vtrace record -- QEMU", .serialized)
struct RecordQEMUTests {
    static var vtrace: String { CLI.productsDirectory.appendingPathComponent("vtrace").path }

    /// Runs vtrace with `arguments` and extra `environment`, the two output streams apart.
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> CLI.Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: vtrace)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardInput = FileHandle.nullDevice
        let out = try temporaryFile("record-qemu-\(UUID().uuidString).out", []), err = out + ".err"
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        try process.run()
        process.waitUntilExit()
        return CLI.Result(status: process.terminationStatus, stdout: try String(contentsOfFile: out, encoding: .utf8),
                          stderr: try String(contentsOfFile: err, encoding: .utf8))
    }

    /// A directory for this test's files, empty.
    static func scratch(_ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vtrace-record-qemu-\(getpid())/\(name)")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.path
    }

    /// An executable script named `name` in `dir` (a stand-in for QEMU).
    static func script(_ dir: String, _ name: String, _ body: String) throws -> String {
        let path = "\(dir)/\(name)"
        try Data("#!/bin/sh\n\(body)\n".utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o755)
        return path
    }

    // MARK: - The command line

    static let microvm = ["qemu-system-x86_64", "-M", "microvm,x-option-roms=off,rtc=off", "-m", "256M", "-nographic",
                          "-kernel", "vmlinuz", "-append", "console=ttyS0 quiet"]

    @Test func dryRunPrintsTheCommandLineAndStartsNothing() throws {
        let r = try Self.run(["record", "--dry-run", "--"] + Self.microvm, environment: ["TMPDIR": "/tmp/x y"])
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
        #expect(r.stdout == "qemu-system-x86_64 -M microvm,x-option-roms=off,rtc=off -m 256M -nographic -kernel vmlinuz "
                + "-append 'console=ttyS0 quiet' -chardev 'socket,id=vtrace-chr0,path=/tmp/x y/vtrace-qemu.XXXXXX/vhost.sock' "
                + "-netdev vhost-user,id=vtrace0,chardev=vtrace-chr0 -device virtio-net-device,netdev=vtrace0 "
                + "-object memory-backend-memfd,id=vtrace-mem,size=256M,share=on -machine memory-backend=vtrace-mem "
                + "-global virtio-mmio.force-legacy=false\n")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/x y"))
        // For machines: the same, as JSON.
        let j = try Self.run(["record", "--dry-run", "--json", "--"] + Self.microvm, environment: ["TMPDIR": "/tmp/x y"])
        let plan = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any] ?? [:]
        #expect(plan["line"] as? String == String(r.stdout.dropLast()) && (plan["command"] as? [String])?.count == 22)
        #expect(plan["machine"] as? String == "microvm" && plan["accelerator"] as? String == "tcg" && plan["nic"] as? String == "virtio-net-device")
        #expect((plan["additions"] as? [[String: Any]])?.map { ($0["arguments"] as? [String])?.first } == ["-chardev", "-netdev", "-device", "-object", "-global"])
    }

    @Test func verboseSaysWhatIsAddedAndWhy() throws {
        let r = try Self.run(["record", "--dry-run", "--verbose", "--", "qemu-system-x86_64", "-M", "pc", "-accel", "tcg"],
                             environment: ["TMPDIR": "/tmp"])
        #expect(r.status == 0)
        #expect(r.stdout == "qemu-system-x86_64 -M pc -accel tcg -chardev socket,id=vtrace-chr0,path=/tmp/vtrace-qemu.XXXXXX/vhost.sock "
                + "-netdev vhost-user,id=vtrace0,chardev=vtrace-chr0 -device virtio-net-pci,netdev=vtrace0,vectors=0 "
                + "-object memory-backend-memfd,id=vtrace-mem,size=128M,share=on -machine memory-backend=vtrace-mem\n")
        let lines: [String] = [
            "vtrace: machine pc, accelerator tcg, NIC virtio-net-pci",
            "vtrace: adds -chardev socket,id=vtrace-chr0,path=/tmp/vtrace-qemu.XXXXXX/vhost.sock: the vhost-user socket vtrace serves "
                + "(private: in a directory of this run's own)",
            "vtrace: adds -netdev vhost-user,id=vtrace0,chardev=vtrace-chr0: a network backend on that socket: vtrace's device core",
            "vtrace: adds -device virtio-net-pci,netdev=vtrace0,vectors=0: the NIC on that backend, on PCI (pc); vectors=0 (INTx, no MSI-X) "
                + "because under TCG Debian 12's QEMU 7.2 segfaults when the guest starts a vhost-user virtio-net-pci with MSI-X "
                + "(msix_set_vector_notifiers from vhost_net_start; docs/vhost-user.md)",
            "vtrace: adds -object memory-backend-memfd,id=vtrace-mem,size=128M,share=on -machine memory-backend=vtrace-mem: guest RAM "
                + "vtrace's backend can map: vhost-user shares guest memory as file descriptors (size from no -m: QEMU's default, 128M)",
        ]
        #expect(r.stderr == lines.joined(separator: "\n") + "\n")
        // A note about the user's own PCI NIC prints without --verbose too.
        let own = try Self.run(["record", "--dry-run", "--", "qemu-system-x86_64", "-M", "q35", "-device", "virtio-net-pci,netdev=vtrace0"])
        #expect(own.status == 0 && own.stderr == "vtrace: note: -device virtio-net-pci,netdev=vtrace0: under TCG, Debian 12's QEMU 7.2 segfaults "
                + "when the guest starts a virtio-net-pci with MSI-X over vhost-user; vectors=0 on the device (INTx) avoids it (docs/vhost-user.md)\n")
    }

    @Test func badCommandLinesExitTwoNamingTheArgumentBeforeAnythingStarts() throws {
        let out = try Self.scratch("bad") + "/never.vtrace"
        let cases: [([String], String)] = [
            (["-o", out, "--", "qemu-system-x86_64", "-netdev", "user,id=vtrace0"],
             "vtrace: -netdev user,id=vtrace0: the id vtrace0 is the one vtrace gives its vhost-user netdev; give yours another\n"),
            (["-o", out, "--", "qemu-system-x86_64", "-m", "lots"],
             "vtrace: -m lots: not a memory size (256M, 1G, size=512M,..., or a number of MiB)\n"),
            (["-o", out, "--", "qemu-system-x86_64", "-M", "microvm,memory-backend=m", "-object", "memory-backend-ram,id=m,size=1G"],
             "vtrace: -object memory-backend-ram,id=m,size=1G: memory-backend-ram cannot be shared with vtrace's backend: "
                + "use memory-backend-memfd, or memory-backend-file with share=on\n"),
            (["-o", out, "--", "qemu-system-x86_64", "-M", "microvm,memory-backend=m"],
             "vtrace: -M microvm,memory-backend=m: no -object with id=m\n"),
            (["-o", out, "--", "bash", "-c", "make test"],
             "vtrace: bash: not a QEMU system emulator (qemu-system-*): vtrace would add QEMU arguments to it "
                + "(--assume-qemu if it is QEMU under another name, or a wrapper that passes them on)\n"),
            (["-o", out, "--", "qemu-system-nowhere", "-M", "microvm"],
             "vtrace: qemu-system-nowhere: no such program in PATH (QEMU: apt-get install qemu-system-x86)\n"),
            (["--", "qemu-system-x86_64"], "Error: recording QEMU needs -o OUT.vtrace (or --no-record)\n"),
            (["-o", out, "--no-record", "--", "qemu-system-x86_64"], "Error: --no-record writes no trace: leave out -o\n"),
            (["--no-record", "--only-failures", "--", "qemu-system-x86_64"],
             "Error: --only-failures decides whether to keep a trace; --no-record writes none\n"),
            (["-o", out, "--connect-timeout", "0", "--", "qemu-system-x86_64"], "Error: --connect-timeout must be positive\n"),
            (["-o", out, "--scenario", "s.scenario", "--", "qemu-system-x86_64"],
             "Error: --scenario and a QEMU command (after --) exclude each other\n"),
            (["-o", out, "--scenario", "s.scenario", "--dry-run"],
             "Error: --dry-run is for recording QEMU (vtrace record -o OUT.vtrace -- qemu-system-x86_64 ...)\n"),
            (["-o", out], "Error: record what? --scenario FILE -o OUT.vtrace, or -o OUT.vtrace -- qemu-system-x86_64 ARGS...\n"),
            (["-o", out, "--keep", "1K", "--", "qemu-system-x86_64"], "Error: --keep 1K is smaller than two chunks"),
            (["-o", out, "--trigger", "rx_packets >", "--", "qemu-system-x86_64"], "Error: --trigger 'rx_packets >': "),
        ]
        for (arguments, message) in cases {
            let r = try Self.run(["record"] + arguments)
            #expect(r.status == 2 && r.stdout.isEmpty, "\(arguments): \(r.status) \(r.stdout)")
            #expect(r.stderr.hasPrefix(message), "\(arguments): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: out) && !FileManager.default.fileExists(atPath: out + ".partial"))
    }

    @Test func qemusExitStatusIsVtracesAsAShellReportsIt() throws {
        let dir = try Self.scratch("status")
        for (body, status) in [("exit 3", Int32(3)), ("kill -SEGV $$", 139), ("exit 0", 0)] {
            let fake = try Self.script(dir, "qemu-system-x86_64", body)
            let trace = "\(dir)/t\(status).vtrace"
            let r = try Self.run(["record", "-o", trace, "--json", "--", fake])
            #expect(r.status == status, "\(body): \(r.stderr)")
            let report = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
            let qemu = report["qemu"] as? [String: Any] ?? [:]
            #expect(report["status"] as? Int == Int(status) && qemu["exit_status"] as? Int == Int(status) && qemu["connected"] as? Bool == false)
            #expect(report["trace"] as? String == trace && FileManager.default.fileExists(atPath: trace))
        }
        // --only-failures keeps the trace of a failed run, saying why.
        let failed = try Self.script(dir, "qemu-system-x86_64", "exit 3")
        let kept = try Self.run(["record", "-o", "\(dir)/kept.vtrace", "--only-failures", "--", failed])
        #expect(kept.status == 3 && kept.stderr.hasPrefix("vtrace: QEMU exited 3 without connecting to vtrace's socket\n"
                                                          + "vtrace: kept \(dir)/kept.vtrace: QEMU exited 3\n"), "\(kept.stderr)")
        #expect(FileManager.default.fileExists(atPath: "\(dir)/kept.vtrace"))
        // Another name, on the user's word.
        let wrapper = try Self.script(dir, "my-qemu", "exit 4")
        #expect(try Self.run(["record", "--no-record", "--assume-qemu", "--", wrapper]).status == 4)
    }

    @Test func aQEMUThatNeverConnectsIsStoppedAndItsOutputShown() throws {
        let dir = try Self.scratch("never")
        let fake = try Self.script(dir, "qemu-system-x86_64", "echo 'fake QEMU: waiting for a disk'; exec sleep 100")
        let start = Date()
        let r = try Self.run(["record", "-o", "\(dir)/t.vtrace", "--connect-timeout", "0.5", "--", fake, "-M", "microvm"])
        #expect(r.status == 1 && Date().timeIntervalSince(start) < 10)
        #expect(r.stdout == "fake QEMU: waiting for a disk\n")
        #expect(r.stderr.hasPrefix("vtrace: QEMU did not connect to vtrace's socket within 0.5 s (--connect-timeout); stopped it\n"
                                   + "vtrace: QEMU killed by SIGTERM after 0."), "\(r.stderr)")
        let info = try JSONSerialization.jsonObject(with: Data(try CLI.run("info", "\(dir)/t.vtrace", "--json").stdout.utf8)) as? [String: Any]
        #expect(info?["complete"] as? Bool == true && info?["events"] as? Int == 0, "\(String(describing: info))")
    }

    /// On a terminal QEMU's group is the foreground one while it runs: a
    /// QEMU that sets the terminal up (stty, as `-serial stdio` does) would
    /// otherwise stop on SIGTTOU and hang.
    @Test func onATerminalQEMUGetsTheTerminal() throws {
        let dir = try Self.scratch("terminal")
        let fake = try Self.script(dir, "qemu-system-x86_64", "stty -echo && stty echo && echo 'fake QEMU: terminal set up'")
        let command = ["timeout", "--foreground", "20", Self.vtrace, "record", "--no-record", "--", fake].map(quoted).joined(separator: " ")
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/script") else {
            print("SKIPPED: no /usr/bin/script to give vtrace a pseudo-terminal")
            return
        }
        let r = try runCombined("/usr/bin/script", ["-qec", command + "; echo status $?", "/dev/null"])
        #expect(r.output.contains("fake QEMU: terminal set up") && r.output.contains("status 0"), "\(r.output)")
    }

    // MARK: - Real boots

    /// The Linux guest's kernel and initramfs (tools/linux-guest/build.sh), or nil having said why not.
    static let linuxGuest: (kernel: String, initrd: String)? = {
        if let (skip, why) = VhostUserCLITests.linuxUnavailable {
            if skip { print("SKIPPED: Linux boots through vtrace record -- QEMU: \(why)") } else { Issue.record("\(why)") }
            return nil
        }
        let build = try? runCombined(repositoryRoot.appendingPathComponent("tools/linux-guest/build.sh").path, [])
        let paths = build?.output.split(separator: "\n").suffix(2).map(String.init) ?? []
        return paths.count == 2 ? (paths[0], paths[1]) : nil
    }()

    /// QEMU booting the guest on `machine` with `frames` small pktgen frames (a few seconds under TCG).
    static func qemu(_ guest: (kernel: String, initrd: String), machine: String, frames: Int) -> [String] {
        let khz = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n")
            .first { $0.hasPrefix("cpu MHz") }.flatMap { Double($0.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)) }
            .map { Int($0 * 1000) } ?? 2_000_000
        return ["qemu-system-x86_64", "-M", machine, "-m", "256M", "-smp", "1", "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
                "-serial", "stdio", "-kernel", guest.kernel, "-initrd", guest.initrd,
                "-append", "console=ttyS0 reboot=t panic=-1 quiet ipv6.disable=1 tsc_early_khz=\(khz) vtrace.arp=1 vtrace.frames=\(frames) vtrace.large=5"]
    }

    /// The guest's own eth0 statistics from its console.
    static func guestStats(_ console: String) -> [String: Int] {
        guard let line = console.split(separator: "\n").first(where: { $0.contains("vtrace-guest: stats ") }) else { return [:] }
        let fields = line.split(separator: " ").dropFirst(2).map { $0.split(separator: "=") }
        return Dictionary(uniqueKeysWithValues: fields.compactMap { $0.count == 2 ? (String($0[0]), Int($0[1]) ?? -1) : nil })
    }

    /// A boot recorded with --json: QEMU's exit, the guest's statistics, the
    /// trace's final counters and the report's agree; the trace replays.
    @Test(arguments: [("microvm,x-option-roms=off,isa-serial=on,rtc=off", "virtio-net-device,netdev=vtrace0"),
                      ("pc", "virtio-net-pci,netdev=vtrace0,vectors=0")])
    func aRecordedBootAgreesWithTheGuestAndReplays(machine: String, nic: String) throws {
        guard let guest = Self.linuxGuest else { return }
        let dir = try Self.scratch("boot-\(machine.prefix(3))")
        let trace = "\(dir)/boot.vtrace"
        let r = try Self.run(["record", "-o", trace, "--json", "--"] + Self.qemu(guest, machine: machine, frames: 100))
        #expect(r.status == 0, "\(r.stderr.suffix(3000))")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
        let qemu = report["qemu"] as? [String: Any] ?? [:]
        #expect((qemu["command"] as? [String])?.contains(nic) == true && qemu["exit_status"] as? Int == 0 && qemu["connected"] as? Bool == true)
        #expect((report["sessions"] as? [[String: Any]])?.count == 1)
        // The console went to standard error (--json keeps standard output for the report).
        let stats = Self.guestStats(r.stderr)
        let counters = report["counters"] as? [String: Int] ?? [:]
        let info = try JSONSerialization.jsonObject(with: Data(try CLI.run("info", trace, "--json").stdout.utf8)) as? [String: Any]
        let final = (info?["counters"] as? [[String: Int]])?.first ?? [:]
        #expect(stats["tx_packets"] == 106, "\(r.stderr.suffix(2000))")   // 1 ARP, 100 small, 5 MTU-sized
        for k in ["tx_packets", "rx_packets", "tx_bytes", "rx_bytes"] {
            #expect(stats[k] != nil && stats[k] == final[k] && final[k] == counters[k], "\(k): guest \(stats[k] ?? -1), trace \(final[k] ?? -1), report \(counters[k] ?? -1)")
        }
        try Self.expectReplayMatches(trace)
        #expect(try CLI.run("check", trace).status == 0)
    }

    @Test func onlyFailuresLeavesNoTraceOfACleanBoot() throws {
        guard let guest = Self.linuxGuest else { return }
        let dir = try Self.scratch("only-failures")
        let trace = "\(dir)/clean.vtrace"
        let r = try Self.run(["record", "-o", trace, "--only-failures", "--"] + Self.qemu(guest, machine: "microvm,rtc=off", frames: 10))
        #expect(r.status == 0, "\(r.stderr.suffix(2000))")
        #expect(r.stdout.contains("vtrace-guest: stats tx_packets=16 "), "\(r.stdout.suffix(2000))")
        #expect(r.stderr.contains("vtrace: QEMU exited 0 and the trace passes vtrace check: deleted \(trace) (--only-failures)\n"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == [])
    }

    /// Runs vtrace in the background, its output collected as it comes.
    final class Running: @unchecked Sendable {
        let process = Process()
        private let lock = NSLock()
        private var collected = ""

        /// `temporary`: vtrace's TMPDIR (a vtrace killed with SIGKILL leaves its socket's directory there).
        init(_ arguments: [String], temporary: String) throws {
            process.executableURL = URL(fileURLWithPath: RecordQEMUTests.vtrace)
            process.arguments = arguments
            process.environment = ProcessInfo.processInfo.environment.merging(["TMPDIR": temporary]) { $1 }
            process.standardInput = FileHandle.nullDevice
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            pipe.fileHandleForReading.readabilityHandler = { [self] handle in
                let data = handle.availableData
                if data.isEmpty { handle.readabilityHandler = nil }
                lock.withLock { collected += String(decoding: data, as: UTF8.self) }
            }
            try process.run()
        }

        var output: String { lock.withLock { collected } }

        /// Waits up to `seconds` for `text` in the output.
        func waitFor(_ text: String, seconds: Double = 60) -> Bool {
            let end = Date().addingTimeInterval(seconds)
            while Date() < end {
                if output.contains(text) { return true }
                usleep(20_000)
            }
            return false
        }

        /// QEMU's pid, from --verbose.
        func qemuPID() -> Int32? {
            guard waitFor("vtrace: QEMU runs as pid ", seconds: 20), let r = output.range(of: "vtrace: QEMU runs as pid ") else { return nil }
            return Int32(output[r.upperBound...].prefix { $0.isNumber })
        }

        func wait() -> Int32 {
            process.waitUntilExit()
            return process.terminationStatus
        }
    }

    /// Whether `pid` is a live process (a zombie nobody reaped yet is not).
    static func isAlive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(close, offsetBy: 2)] != "Z"
    }

    /// A recorded boot of `frames` small frames under `record --verbose`, its
    /// trace, and QEMU's pid; with `sending`, once the guest's eth0 is up
    /// (its pktgen burst under way).
    static func boot(_ guest: (kernel: String, initrd: String), _ name: String, frames: Int, sending: Bool) throws -> (Running, Int32, String) {
        let dir = try scratch(name)
        let trace = "\(dir)/\(name).vtrace"
        let run = try Running(["record", "-o", trace, "--verbose", "--"] + qemu(guest, machine: "microvm,rtc=off", frames: frames), temporary: dir)
        let pid = try #require(run.qemuPID(), "\(run.output)")
        if sending { #expect(run.waitFor("vtrace-guest: eth0 "), "\(run.output.suffix(2000))") }
        return (run, pid, trace)
    }

    /// The trace replays, as recorded.
    static func expectReplayMatches(_ trace: String) throws {
        let replay = try CLI.run("replay", trace)
        #expect(replay.status == 0 && replay.stdout.contains("replay matches"), "\(replay.stdout)")
    }

    /// QEMU killed with SIGKILL while the guest sends: vtrace exits 137 and
    /// the trace, finished, is complete up to there and replays.
    @Test func qemuKilledMidBootLeavesAFinishedTraceAndExit137() throws {
        guard let guest = Self.linuxGuest else { return }
        let (run, pid, trace) = try Self.boot(guest, "qemu-killed", frames: 100_000, sending: true)
        usleep(300_000)
        kill(pid, SIGKILL)
        #expect(run.wait() == 137, "\(run.output.suffix(2000))")
        #expect(run.output.contains("vtrace: QEMU killed by SIGKILL after "))
        let info = try JSONSerialization.jsonObject(with: Data(try CLI.run("info", trace, "--json").stdout.utf8)) as? [String: Any]
        #expect(info?["complete"] as? Bool == true && (info?["events"] as? Int ?? 0) > 1000, "\(String(describing: info))")
        try Self.expectReplayMatches(trace)
    }

    /// vtrace told to stop (SIGTERM, as a CI timeout does) while the guest
    /// sends: QEMU is stopped and gone, the trace finished, exit 143.
    @Test func vtraceStoppedMidBootLeavesNoQEMUBehind() throws {
        guard let guest = Self.linuxGuest else { return }
        let (run, pid, trace) = try Self.boot(guest, "vtrace-stopped", frames: 100_000, sending: true)
        run.process.terminate()
        #expect(run.wait() == 143, "\(run.output.suffix(2000))")
        #expect(kill(pid, 0) == -1 && errno == ESRCH)
        // QEMU ends itself on SIGTERM, with status 0.
        #expect(run.output.contains("vtrace: stopped by SIGTERM: QEMU stopped (exited 0)\n"), "\(run.output.suffix(2000))")
        try Self.expectReplayMatches(trace)
    }

    /// --trigger with its default action: once the condition holds (and a
    /// chunk's worth of events more), the trace is finished and QEMU stopped;
    /// exit 1, since QEMU's own status (it exits 0 on SIGTERM) is 0.
    @Test func aTriggerFinishesTheTraceAndStopsQEMU() throws {
        guard let guest = Self.linuxGuest else { return }
        let trace = try Self.scratch("trigger") + "/trigger.vtrace"
        let r = try Self.run(["record", "-o", trace, "--trigger", "tx_packets >= 50", "--after", "100", "--json", "--"]
                             + Self.qemu(guest, machine: "microvm,rtc=off", frames: 100_000))
        #expect(r.status == 1, "\(r.stderr.suffix(2000))")
        #expect(r.stderr.contains("vtrace: --trigger 'tx_packets >= 50' held at event "), "\(r.stderr.suffix(2000))")
        let report = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
        #expect((report["qemu"] as? [String: Any])?["exit_status"] as? Int == 0 && report["status"] as? Int == 1)
        #expect((report["recording"] as? [String: Any])?["trigger_fired_at"] is Int)
        #expect(!r.stderr.contains("vtrace-guest: stats"))   // stopped before the guest finished
        try Self.expectReplayMatches(trace)
    }

    /// Even a SIGKILL of vtrace, which runs no code of its own, takes QEMU down (its death signal).
    @Test func vtraceKilledTakesQEMUWithIt() throws {
        guard let guest = Self.linuxGuest else { return }
        let (run, pid, _) = try Self.boot(guest, "vtrace-killed", frames: 10, sending: false)
        #expect(Self.isAlive(pid))
        kill(run.process.processIdentifier, SIGKILL)
        #expect(run.wait() == SIGKILL)   // Foundation reports the signal itself
        var gone = false
        for _ in 0..<200 where !gone {
            gone = !Self.isAlive(pid)
            usleep(10_000)
        }
        #expect(gone, "QEMU \(pid) outlived vtrace")
    }
}
