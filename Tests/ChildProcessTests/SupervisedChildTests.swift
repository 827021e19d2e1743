import ChildProcess
import Foundation
import Testing

/// A supervised child: its end as a shell reports it, its whole process
/// group ended with it, and never outliving the thread that started it.
@Suite("Supervised child processes")
struct SupervisedChildTests {
    static func shell(_ script: String) throws -> SupervisedChild {
        try SupervisedChild(executable: "/bin/sh", arguments: ["sh", "-c", script], takeTerminal: false, standardOutputToStandardError: false)
    }

    /// Whether `pid` is a live process (a zombie nobody reaped yet is not).
    static func isAlive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(close, offsetBy: 2)] != "Z"
    }

    /// Whether `pid` is gone within two seconds (a SIGKILL takes effect asynchronously).
    static func ends(_ pid: Int32) -> Bool {
        for _ in 0..<200 where isAlive(pid) { usleep(10_000) }
        return !isAlive(pid)
    }

    /// A file the child writes a pid into, and that pid once it is there.
    static func pid(in file: String) throws -> Int32 {
        for _ in 0..<200 {
            if let text = try? String(contentsOfFile: file, encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                return pid
            }
            usleep(10_000)
        }
        throw CocoaError(.fileReadNoSuchFile)
    }

    static func scratch(_ name: String) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("child-\(getpid())-\(name)").path
        try? FileManager.default.removeItem(atPath: path)
        return path
    }

    @Test func exitStatusesAndSignalsAsAShellReportsThem() throws {
        let three = try Self.shell("exit 3")
        #expect(three.wait(orReadable: [], milliseconds: -1) == .ended(.exited(3)))
        #expect(three.termination?.shellStatus == 3 && three.termination?.description == "exited 3")
        let segv = try Self.shell("kill -SEGV $$")
        #expect(segv.wait(orReadable: [], milliseconds: -1) == .ended(.killed(signal: 11)))
        #expect(segv.termination?.shellStatus == 139 && segv.termination?.description == "killed by SIGSEGV")
        #expect(ChildTermination.killed(signal: 40).description == "killed by SIG40")
    }

    @Test func theChildLeadsAProcessGroupOfItsOwn() throws {
        let child = try Self.shell("sleep 30")
        #expect(getpgid(child.pid) == child.pid && getpgid(child.pid) != getpgrp())
        #expect(child.stop(graceMilliseconds: 2000) == .killed(signal: SIGTERM))
    }

    @Test func stopEndsAChildThatIgnoresSIGTERMWithSIGKILL() throws {
        let ready = Self.scratch("ready")
        let child = try Self.shell("trap '' TERM; echo $$ > \(ready); while :; do sleep 1; done")
        _ = try Self.pid(in: ready)
        let start = Date()
        #expect(child.stop(graceMilliseconds: 300) == .killed(signal: SIGKILL))
        #expect(Date().timeIntervalSince(start) >= 0.3)
    }

    @Test func whatTheChildStartedEndsWithIt() throws {
        // Ended on request: its background job too.
        let file = Self.scratch("grandchild1")
        let child = try Self.shell("sleep 300 & echo $! > \(file); wait")
        let grandchild = try Self.pid(in: file)
        #expect(Self.isAlive(grandchild))
        child.stop(graceMilliseconds: 2000)
        #expect(Self.ends(grandchild))
        // Exited by itself, leaving a job behind: the job is killed when the child is reaped.
        let file2 = Self.scratch("grandchild2")
        let leaver = try Self.shell("sleep 300 & echo $! > \(file2); exit 5")
        let orphan = try Self.pid(in: file2)
        #expect(leaver.wait(orReadable: [], milliseconds: -1) == .ended(.exited(5)))
        #expect(Self.ends(orphan))
    }

    @Test func waitWakesForADoorbellAndTimesOut() throws {
        let child = try Self.shell("sleep 30")
        let bell = try Doorbell()
        #expect(child.wait(orReadable: [bell.fd], milliseconds: 50) == .timedOut)
        #expect(!bell.hasRung)
        bell.ring()
        bell.ring()
        #expect(bell.hasRung)
        #expect(child.wait(orReadable: [bell.fd], milliseconds: -1) == .readable(0))
        bell.answer()
        #expect(!bell.hasRung)
        #expect(child.wait(orReadable: [bell.fd], milliseconds: 0) == .timedOut)
        #expect(child.termination == nil)
        child.stop(graceMilliseconds: 2000)
        // Once ended, every wait says so at once.
        #expect(child.wait(orReadable: [bell.fd], milliseconds: -1) == .ended(.killed(signal: SIGTERM)))
    }

    @Test func aProgramThatCannotRunSaysWhy() {
        let error = #expect(throws: SpawnError.self) {
            _ = try SupervisedChild(executable: "/nonexistent/qemu", arguments: ["qemu"], takeTerminal: false, standardOutputToStandardError: false)
        }
        #expect(error?.errno == ENOENT && error?.description == "cannot run /nonexistent/qemu: No such file or directory")
    }

    /// Linux sends the death signal when the *thread* that started the child
    /// ends: here a thread that returns at once.
    @Test func theChildDiesWithTheThreadThatStartedIt() throws {
        final class Box: @unchecked Sendable { var child: SupervisedChild?; var error: Error? }
        let box = Box()
        let started = DispatchSemaphore(value: 0)
        let thread = Thread {
            do { box.child = try Self.shell("sleep 300") } catch { box.error = error }
            started.signal()
        }
        thread.start()
        started.wait()
        let child = try #require(box.child, "\(String(describing: box.error))")
        #expect(child.wait(orReadable: [], milliseconds: 5000) == .ended(.killed(signal: SIGKILL)))
    }

    @Test func aChildLeftRunningIsEndedWhenItsValueGoes() throws {
        let file = Self.scratch("dropped")
        var child: SupervisedChild? = try Self.shell("echo $$ > \(file); sleep 300")
        let pid = try Self.pid(in: file)
        #expect(Self.isAlive(pid))
        child = nil
        #expect(child == nil && Self.ends(pid))
    }

    @Test func programsAreFoundAsExecvpFindsThem() {
        #expect(ExecutableSearch.find("sh", path: "/nonexistent:/bin") == "/bin/sh")
        #expect(ExecutableSearch.find("sh", path: "/nonexistent") == nil)
        #expect(ExecutableSearch.find("/bin/sh", path: nil) == "/bin/sh")
        let plain = Self.scratch("plain")
        _ = FileManager.default.createFile(atPath: plain, contents: Data(), attributes: [.posixPermissions: 0o644])
        #expect(ExecutableSearch.find(plain, path: nil) == nil)   // not executable
        #expect(ExecutableSearch.find("", path: "/bin") == nil)
        #expect(ExecutableSearch.find("tmp", path: "/") == nil)             // a directory
    }
}
