//! The vCPU run loop: a thread per vCPU, each routing its exits to its own
//! NICs' devices, the serial port and the done port, until the run ends.

import HostPrimitives
import TraceRecording
import VirtioCore
#if canImport(Glibc)
import Glibc
#endif

/// What one vCPU's loop saw.
struct VCPUOutcome {
    var end: RunEnd = .failed("not run")
    /// The vCPU stopped because another one ended the run.
    var stoppedByOther = false
    var mmioExits: UInt64 = 0
    var ioExits: UInt64 = 0
    var strayAccesses: UInt64 = 0
    var log: [String] = []
    /// What this vCPU wrote to the serial port.
    var serial = SerialPort()
    var cpuSeconds: Double = 0
}

extension Machine {
    /// Runs the guest until every vCPU is done, or one halts, shuts down,
    /// fails or times out (which stops the others).
    ///
    /// Specialised for the two observers the CLI uses: unspecialised, every
    /// device call would look up generic metadata.
    @_specialize(exported: true, where Observer == NoObserver)
    @_specialize(exported: true, where Observer == RecordingObserver)
    @_specialize(exported: true, where Observer == DeferredRecordingObserver)
    public func run() -> RunResult {
        let start = Self.now()
        let watchdog = Watchdog(seconds: options.timeoutSeconds, vcpus: vcpus.count)
        let requestedEarly = mutex.withLock {
            self.watchdog = watchdog
            return stopRequested
        }
        if requestedEarly { stopAll(watchdog) }
        defer { mutex.withLock { self.watchdog = nil } }
        var outcomes = [VCPUOutcome](repeating: VCPUOutcome(), count: vcpus.count)
        let results = OutcomeSlots(count: vcpus.count)
        var threads: [BackgroundThread] = []
        for k in 1..<max(1, vcpus.count) {
            if let t = BackgroundThread({ [self] in results.set(k, loop(k, watchdog: watchdog)) }) {
                threads.append(t)
            } else {
                var o = VCPUOutcome()
                o.end = .failed("cannot start the thread of vCPU \(k)")
                results.set(k, o)
                stopAll(watchdog)
            }
        }
        outcomes[0] = loop(0, watchdog: watchdog)
        for t in threads { t.join() }
        watchdog.cancel()
        for k in 1..<max(1, vcpus.count) { outcomes[k] = results.get(k) }

        var result = RunResult(end: .done(status: 0), serial: "")
        for o in outcomes {
            result.mmioExits += o.mmioExits
            result.ioExits += o.ioExits
            result.strayAccesses += o.strayAccesses
            result.vcpuSeconds += o.cpuSeconds
            result.log += o.log
        }
        result.log = Array(result.log.prefix(32))
        // The vCPU that ended otherwise than done (not one stopped because of it) names the end; else the worst status.
        func abnormal(_ o: VCPUOutcome) -> Bool { if case .done = o.end { return false } else { return true } }
        if let cause = outcomes.first(where: { abnormal($0) && !$0.stoppedByOther }) ?? outcomes.first(where: abnormal) {
            result.end = cause.end
        } else {
            let worst = outcomes.compactMap { o -> UInt32? in if case .done(let s) = o.end { return s } else { return nil } }.max() ?? 0
            result.end = .done(status: worst)
        }
        // Each vCPU's lines, vCPU by vCPU (a line is written by one vCPU).
        result.serial = outcomes.map(\.serial.text).joined()
        result.seconds = Self.now() - start
        result.counters = boxes.map(\.device.counters)
        return result
    }

    /// Asks every vCPU to stop (one ended abnormally).
    func stopAll(_ watchdog: Watchdog) {
        mutex.withLock { stopping = true }
        watchdog.kickAll()
    }

    var isStopping: Bool { mutex.withLock { stopping } }

    /// Ends the run at every vCPU's next exit (safe from any thread, also
    /// from a device observer on a vCPU thread): it ends as `.stopped`.
    public func requestStop() {
        let watchdog = mutex.withLock {
            stopRequested = true
            stopping = true
            return self.watchdog
        }
        watchdog?.kickAll()
    }

    /// One vCPU's exit loop.
    @_specialize(exported: true, where Observer == NoObserver)
    @_specialize(exported: true, where Observer == RecordingObserver)
    @_specialize(exported: true, where Observer == DeferredRecordingObserver)
    func loop(_ index: Int, watchdog: Watchdog) -> VCPUOutcome {
        let vcpu = vcpus[index]
        watchdog.register(index, vcpu)
        var o = VCPUOutcome()
        let cpuStart = Self.threadCPUSeconds()
        func note(_ text: String) { if o.log.count < 32 { o.log.append(text) } }
        loop: while true {
            let exit: VCPUExit
            do throws(KVMError) { exit = try vcpu.runOnce() } catch {
                o.end = .failed((vcpus.count > 1 ? "vCPU \(index): " : "") + "\(error)")
                stopAll(watchdog)
                break
            }
            switch exit {
            case .mmio(let address, let isWrite, let length, let data):
                o.mmioExits += 1
                let offset = address &- GuestLayout.mmioBase
                let nic = Int(truncatingIfNeeded: offset / GuestLayout.mmioWindow)
                if address >= GuestLayout.mmioBase, nic < boxes.count, nic % vcpus.count == index, length <= 8, length.nonzeroBitCount == 1 {
                    let register = offset % GuestLayout.mmioWindow
                    let box = boxes[nic]
                    if isWrite {
                        var value: UInt64 = 0
                        withUnsafeMutableBytes(of: &value) { $0.baseAddress!.copyMemory(from: data, byteCount: length) }
                        _ = box.device.write(offset: register, width: length, value: UInt64(littleEndian: value))
                    } else {
                        var value = box.device.read(offset: register, width: length).littleEndian
                        withUnsafeBytes(of: &value) { data.update(from: $0.bindMemory(to: UInt8.self).baseAddress!, count: length) }
                    }
                } else {
                    o.strayAccesses += 1
                    if !isWrite { data.update(repeating: 0xFF, count: min(length, 8)) }
                    let owner = nic < boxes.count && address >= GuestLayout.mmioBase ? " (NIC \(nic) belongs to vCPU \(nic % vcpus.count))" : ""
                    note("stray MMIO \(isWrite ? "write" : "read") of \(length) bytes at 0x\(String(address, radix: 16))\(vcpus.count > 1 ? " from vCPU \(index)" : "")\(owner)")
                }
            case .io(let port, let isWrite, let size, let count, let data):
                o.ioExits += 1
                if isWrite && port == GuestLayout.donePort && size == 4 {
                    var status: UInt32 = 0
                    withUnsafeMutableBytes(of: &status) { $0.baseAddress!.copyMemory(from: data, byteCount: 4) }
                    o.end = .done(status: UInt32(littleEndian: status))
                    break loop
                }
                if GuestLayout.serialPorts.contains(port) {
                    if isWrite {
                        o.serial.write(port: port, data, count: count * size) { line in
                            if options.console { mutex.withLock { SerialPort.echo(line) } }
                        }
                    } else {
                        SerialPort.read(port: port, into: data, count: size * count)
                    }
                } else {
                    o.strayAccesses += 1
                    if !isWrite { data.update(repeating: 0xFF, count: size * count) }
                    note("stray port \(isWrite ? "write" : "read") at 0x\(String(port, radix: 16))")
                }
            case .halt:
                o.end = .halted
                stopAll(watchdog)
                break loop
            case .shutdown:
                o.end = .shutdown
                stopAll(watchdog)
                break loop
            case .failEntry(let reason):
                o.end = .failed("entry failed, hardware reason 0x\(String(reason, radix: 16))")
                stopAll(watchdog)
                break loop
            case .internalError(let sub):
                o.end = .failed("internal error, suberror \(sub)")
                stopAll(watchdog)
                break loop
            case .systemEvent(let type):
                o.end = type == 1 || type == 2 ? .shutdown : .failed("system event \(type)")
                stopAll(watchdog)
                break loop
            case .interrupted:
                if watchdog.fired {
                    o.end = .timeout(seconds: options.timeoutSeconds)
                    break loop
                }
                if isStopping {
                    if mutex.withLock({ stopRequested }) {
                        o.end = .stopped
                    } else {
                        o.end = .failed("stopped: another vCPU ended the run")
                        o.stoppedByOther = true
                    }
                    break loop
                }
            case .other(let reason):
                o.end = .failed("unexpected exit reason \(reason)")
                stopAll(watchdog)
                break loop
            }
        }
        // No kicks to this thread once it has left its loop (it may be joined and gone).
        watchdog.unregister(index)
        o.cpuSeconds = Self.threadCPUSeconds() - cpuStart
        return o
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// CPU time of the calling thread.
    static func threadCPUSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// Results handed from vCPU threads to the caller.
final class OutcomeSlots: @unchecked Sendable {
    let mutex = Mutex()
    var slots: [VCPUOutcome]
    init(count: Int) { slots = Array(repeating: VCPUOutcome(), count: count) }
    func set(_ k: Int, _ o: VCPUOutcome) { mutex.withLock { slots[k] = o } }
    func get(_ k: Int) -> VCPUOutcome { mutex.withLock { slots[k] } }
}
