import ArgumentParser
import Foundation
import TraceFormat
import TraceAnalysis
import VirtioCore

/// `vtrace info FILE`
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Describe a trace: header, completeness, chunks, sizes, bytes per event by kind, final counters.",
        discussion: """
            Reads the whole trace once (one chunk in memory at a time). A trace whose \
            recorder died is described up to its last complete chunk, with how much was lost.

            Examples:
              vtrace info run.vtrace
              vtrace info run.vtrace.partial
              vtrace info run.vtrace --json
            """
    )

    @OptionGroup var input: TraceInput
    @OptionGroup var output: OutputOptions

    struct KindStats: Encodable {
        var kind: String
        var events: UInt64 = 0
        var uncompressedBytes: UInt64 = 0
        var estimatedCompressedBytes: Double = 0
        var compressedBytesPerEvent: Double { events == 0 ? 0 : estimatedCompressedBytes / Double(events) }
        enum CodingKeys: String, CodingKey { case kind, events, uncompressedBytes = "uncompressed_bytes", estimatedCompressedBytes = "compressed_bytes" }
    }

    struct Report: Encodable {
        var path: String
        var format: String
        var complete: Bool
        var completeness: String
        var nics: Int
        var queuePairs: Int
        var mac: String
        var offeredFeatures: UInt64
        var memory: [TraceMemoryRegion]
        var recorder: String
        var gitCommit: String?
        var host: String?
        var startTime: UInt64
        var commandLine: String
        var scenario: String?
        var guest: String?
        var faults: [String]
        var transport: String
        var chunks: Int
        var checkpointChunks: Int
        /// Events in the file (from `firstEvent`).
        var events: UInt64
        /// The first event's number: 0, or where a --keep window starts.
        var firstEvent: UInt64
        /// The window a flight recorder kept, as asked.
        @NullWhenNil var window: String?
        /// The counter condition a --trigger waited for.
        @NullWhenNil var trigger: String?
        /// Frame payload bytes stored per frame (--snaplen).
        @NullWhenNil var snaplen: UInt32?
        /// Payload bytes the trace does not hold (a snaplen's), and the memory events missing some.
        var payloadBytesNotStored: UInt64
        var partialMemoryEvents: UInt64
        /// Marker events (a trigger that fired with --trigger-action mark): event number and text.
        var markers: [Marker]
        var fileBytes: Int
        var uncompressedBytes: UInt64
        var compressedChunkBytes: UInt64
        var ratio: Double
        var bytesPerEvent: Double
        var nonPayloadBytesPerEvent: Double
        var durationNanoseconds: UInt64
        var kinds: [KindStats]
        var counters: [NetCounters]
        var aggregate: NetCounters
        /// The recording ends inside this access (the recorder stopped mid-drain; format 1.2 says so).
        var cutAccess: CutAccess?
    }

    struct Marker: Encodable {
        var event: UInt64
        var text: String
    }

    struct CutAccess: Encodable {
        /// The event that began the access, its NIC, and how many of its events were recorded.
        var event: UInt64
        var nic: Int
        var eventsRecorded: UInt64
    }

    func run() throws {
        let reader = try input.open()
        let h = reader.header
        var kinds: [TraceEventKind: KindStats] = [:]
        var counters = Array(repeating: NetCounters(), count: h.nics)
        var uncompressed: UInt64 = 0, compressed: UInt64 = 0
        var lastTime = reader.chunks.first?.firstTime ?? 0
        // Payload bytes are set aside per chunk and compressed alone: what the
        // chunk costs beyond them is the cost of the non-payload fields.
        var nonPayloadCompressed = 0.0
        let payloadCompressor = ZstdCompressor(level: 3)
        var payload: [UInt8] = []
        // The access the last event belongs to: its cause, or the drain a checkpoint resumes.
        var lastAccess: (event: UInt64, nic: Int) = (0, 0)
        var markers: [Marker] = []
        var notStored: (bytes: UInt64, events: UInt64) = (0, 0)
        for i in reader.chunks.indices {
            var d: ChunkDecoder
            do throws(TraceError) { d = try reader.decoder(i) } catch {
                printError("vtrace: \(input.trace): \(error)")
                throw ExitCode(VTrace.usageExitCode)
            }
            let entry = reader.chunks[i]
            uncompressed += UInt64(entry.uncompressedSize)
            compressed += UInt64(entry.compressedSize)
            let scale = Double(entry.compressedSize) / Double(max(1, entry.uncompressedSize))
            for (n, v) in d.startCounters.enumerated() { counters[n] = NetCounters(values: v) ?? counters[n] }
            if let n = d.checkpoint?.firstIndex(where: { $0.drain != nil }) { lastAccess = (d.checkpoint![n].drain!.accessEvent, n) }
            payload.removeAll(keepingCapacity: true)
            var before = d.position
            while true {
                let e: TraceEvent?
                do throws(ChunkDecodeError) { e = try d.next() } catch {
                    printError("vtrace: \(input.trace): \(TraceError.corrupt(offset: Int(entry.offset), chunk: i, error.description))")
                    throw ExitCode(VTrace.usageExitCode)
                }
                guard let e else { break }
                let size = d.position - before
                before = d.position
                var k = kinds[e.kind] ?? KindStats(kind: e.kind == .mmioRead ? "mmio-read" : e.kind == .mmioWrite ? "mmio-write" : e.kind.name)
                k.events += 1
                k.uncompressedBytes += UInt64(size)
                k.estimatedCompressedBytes += Double(size) * scale
                kinds[e.kind] = k
                if e.isCause { lastAccess = (e.number, e.nic) }
                if e.bytesNotStored > 0 { notStored = (notStored.bytes + UInt64(e.bytesNotStored), notStored.events + 1) }
                switch e.body {
                case .counter(let index, let value):
                    if let c = NetCounter(ordinal: index) { counters[e.nic][c] = value }
                case .marker(let code, let details):
                    if markers.count < 1000 { markers.append(Marker(event: e.number, text: EventFormatting.markerText(code, details))) }
                case .memoryRead(_, _, _, let r), .memoryWrite(_, _, _, let r):
                    // A write that refers to an earlier read's bytes, a repeat and an incremented
                    // index (bytes materialised past the content) carry no payload of their own.
                    if r.lowerBound >= before - size && r.upperBound <= before { payload += d.bytes(r) }
                default: break
                }
                lastTime = max(lastTime, e.time)
            }
            let payloadCost = payload.isEmpty ? 0 : ((try? payload.withUnsafeBytes { try payloadCompressor.compress($0) })?.count ?? 0)
            nonPayloadCompressed += max(0, Double(entry.compressedSize) - Double(payloadCost))
        }
        let events = reader.eventCount &- reader.firstEvent
        let allKinds = TraceEventKind.allCases.compactMap { kinds[$0] }
        let report = Report(
            path: input.trace, format: "\(h.majorVersion).\(h.minorVersion)", complete: reader.completeness == .complete,
            completeness: reader.completeness.text, nics: h.nics, queuePairs: h.queuePairs, mac: h.netConfig.mac.description,
            offeredFeatures: h.offeredFeatures, memory: h.memory, recorder: h.recorderVersion, gitCommit: h.gitCommit,
            host: h.hostName, startTime: h.startTimeNanoseconds, commandLine: h.commandLine, scenario: h.scenario,
            guest: h.guestDescription, faults: h.faults, transport: h.transport, chunks: reader.chunks.count,
            checkpointChunks: reader.chunks.filter(\.hasCheckpoint).count, events: events, firstEvent: reader.firstEvent,
            window: h.window, trigger: h.trigger, snaplen: h.snaplen, payloadBytesNotStored: notStored.bytes, partialMemoryEvents: notStored.events, markers: markers, fileBytes: reader.source.size,
            uncompressedBytes: uncompressed, compressedChunkBytes: compressed,
            // The same ratio `record` prints: the events' uncompressed content over the file.
            ratio: reader.source.size == 0 ? 0 : Double(uncompressed) / Double(reader.source.size),
            bytesPerEvent: events == 0 ? 0 : Double(reader.source.size) / Double(events),
            nonPayloadBytesPerEvent: events == 0 ? 0 : nonPayloadCompressed / Double(events),
            durationNanoseconds: lastTime &- (reader.chunks.first?.firstTime ?? lastTime),
            kinds: allKinds, counters: counters, aggregate: NetCounters.aggregate(counters) ?? NetCounters(),
            cutAccess: reader.chunks.last?.endsInsideAccess == true
                ? CutAccess(event: lastAccess.event, nic: lastAccess.nic, eventsRecorded: reader.eventCount &- lastAccess.event) : nil)
        if output.json {
            print(try JSONText.encode(report))
            return
        }
        print("trace      \(terminalSafe(input.trace))")
        print("format     \(report.format), \(report.completeness)")
        print("transport  \(terminalSafe(h.transport))")
        print("device     \(h.nics) NIC\(h.nics == 1 ? "" : "s"), \(h.queuePairs) queue pair\(h.queuePairs == 1 ? "" : "s"), MAC \(report.mac), features offered 0x\(String(h.offeredFeatures, radix: 16))")
        print("memory     " + (h.memory.isEmpty && h.transport == "vhost-user" ? "shared by the frontend (SET_MEM_TABLE)"
            : h.memory.map { "[0x\(String($0.base, radix: 16)), +0x\(String($0.size, radix: 16)))" }.joined(separator: " ")))
        print("recorded   by vtrace \(h.recorderVersion.isEmpty ? "?" : terminalSafe(h.recorderVersion))\(h.gitCommit.map { " (\(terminalSafe($0)))" } ?? "") on \(terminalSafe(h.hostName ?? "?"))\(h.startTimeNanoseconds > 0 ? " at " + ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(h.startTimeNanoseconds) / 1e9)) : "")")
        if !h.commandLine.isEmpty { print("command    \(terminalSafe(h.commandLine))") }
        if let s = h.scenario { print("scenario   \(terminalSafe(s))") }
        if let g = h.guestDescription { print("guest      \(terminalSafe(g))") }
        if !h.faults.isEmpty { print("faults     \(terminalSafe(h.faults.joined(separator: ", ")))") }
        if reader.firstEvent != 0 {
            print("window     events \(reader.firstEvent)…\(max(reader.eventCount, 1) - 1)\(h.window.map { " (--keep: \(terminalSafe($0)))" } ?? ""); events before \(reader.firstEvent) were dropped")
        } else if let w = h.window {
            print("window     --keep: \(terminalSafe(w)); nothing dropped (the recording fit)")
        }
        if let t = h.trigger { print("trigger    '\(terminalSafe(t))'") }
        if let n = h.snaplen {
            print("snaplen    \(n): payload past each frame's first \(n) bytes not stored (\(notStored.bytes) bytes in \(notStored.events) memory events)")
        }
        for m in markers.prefix(20) { print("marker     #\(m.event) \(m.text)") }
        print("events     \(events) in \(report.chunks) chunk\(report.chunks == 1 ? "" : "s") (\(report.checkpointChunks) with checkpoints), \(String(format: "%.6f", Double(report.durationNanoseconds) / 1e9)) s")
        if let c = report.cutAccess {
            print("cut        the recording ends inside the access at event \(c.event) (nic\(c.nic)), after \(c.eventsRecorded) of its events: the recorder stopped mid-drain; replay stops there")
        }
        print("size       \(report.fileBytes) bytes on disk, \(uncompressed) uncompressed, ratio \(String(format: "%.2f", report.ratio)), \(String(format: "%.2f", report.bytesPerEvent)) bytes/event (\(String(format: "%.2f", report.nonPayloadBytesPerEvent)) without payload bytes)")
        print("")
        print("kind          events   bytes/event (uncompressed → compressed, est.)")
        for k in allKinds {
            let raw = Double(k.uncompressedBytes) / Double(max(1, k.events))
            print("\(k.kind.padding(toLength: 12, withPad: " ", startingAt: 0)) \(String(k.events).leftPad(8))   \(String(format: "%7.2f", raw)) → \(String(format: "%6.2f", k.compressedBytesPerEvent))")
        }
        print("")
        var columns = counters.enumerated().map { ("nic\($0.offset)", $0.element) }
        if counters.count > 1 { columns.append(("total", report.aggregate)) }
        print(CounterTable.render(columns, onlyNonZero: false))
    }
}

extension String {
    func leftPad(_ n: Int) -> String { String(repeating: " ", count: max(0, n - count)) + self }
}
