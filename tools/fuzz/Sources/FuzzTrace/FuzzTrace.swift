// Fuzzes the trace reader: any bytes must open as a trace or fail with a
// TraceError; every chunk that opens must decode or fail with an error; a
// trace that decodes is replayed segment by segment. Memory stays bounded by
// the format's limits (-rss_limit_mb catches a breach). Inputs starting with
// "RPLY" are a chunk's records replayed both directly and event by event,
// which must agree.

#if canImport(Glibc)
import Glibc
#endif
import FuzzSupport
import TraceFormat
import TraceAnalysis
import TraceMapping

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    // Inputs starting with "CHNK" skip the container (and its checksums) and
    // go straight to the chunk decoder, so mutations reach the event codec;
    // the decoded events feed the pcapng frame extractor (hostile chains,
    // accesses and counters) and every frame goes through the pcapng writer.
    if bytes.starts(with: Array("CHNK".utf8)) {
        let nics = bytes.count > 4 ? Int(bytes[4] % 3) + 1 : 1, minor = formatMinor(bytes)
        var extractor = PacketExtractor(nics: nics, queuePairs: bytes.count > 5 ? Int(bytes[5] % 4) + 1 : 1)
        var pcap = PcapngWriter()
        do throws(ChunkDecodeError) {
            var d = try ChunkDecoder(buffer: ChunkBuffer(Array(bytes.dropFirst(5))), nics: nics, formatMinor: minor)
            while let e = try d.next() {
                extractor.consume(e, decoder: d) { p in
                    precondition(p.bytes.count <= 65_557 && p.nic < nics)
                    pcap.packet(interface: UInt32(p.nic), nanoseconds: p.time, data: p.bytes, comment: "event \(p.chainEvent)")
                }
                if pcap.bytes.count > 1 << 20 { pcap.bytes.removeAll(keepingCapacity: true) }
            }
        } catch {
            precondition(!error.message.isEmpty)
        }
        return 0
    }
    // "RPLY": the content (laid out as after "CHNK") as the one chunk of a
    // trace, past the container's checksums, replayed directly and event by
    // event: the same outcome, report and error, whatever the records.
    if bytes.starts(with: Array("RPLY".utf8)) {
        replayBothWays(Array(bytes.dropFirst(5)), nics: bytes.count > 4 ? Int(bytes[4] % 3) + 1 : 1, minor: formatMinor(bytes))
        return 0
    }
    // "PCNG": the pcapng reader must read or refuse any bytes.
    if bytes.starts(with: Array("PCNG".utf8)) {
        do throws(PcapngFile.FormatError) {
            let f = try PcapngFile(Array(bytes.dropFirst(4)))
            precondition(f.packets.allSatisfy { Int($0.interface) < f.interfaces.count })
        } catch {
            precondition(!error.message.isEmpty)
        }
        return 0
    }
    do throws(TraceError) {
        let reader = try TraceReader(source: MemoryTraceSource(bytes))
        var decodable = true
        for i in reader.chunks.indices {
            do throws(TraceError) {
                var d = try reader.decoder(i)
                while true {
                    do throws(ChunkDecodeError) { if try d.next() == nil { break } } catch { decodable = false; break }
                }
            } catch {
                decodable = false
            }
        }
        if decodable, let first = reader.chunks.indices.first(where: { reader.chunks[$0].hasCheckpoint }) {
            _ = try? TraceReplayer(reader: reader).replaySegment(from: first)
        }
    } catch {
        precondition(!error.description.isEmpty)
    }
    return 0
}

/// The format a "CHNK" or "RPLY" input's records are read as, from its fifth
/// byte `b` (whose `b % 3` is the NIC count less one): `b / 3 % 8` 0 is 1.5,
/// 1 is 1.4, 2 is 1.3 (no repeat records), 3 is 1.6 (the order the versions
/// came in), 4 to 7 are 1.7 (content an older seed held as 1.3 to 1.6 reads
/// the same as 1.7 unless it holds a record 1.7 added).
func formatMinor(_ bytes: [UInt8]) -> UInt16 {
    guard bytes.count > 4 else { return TraceVersion.minor }
    return [5, 4, 3, 6, 7, 7, 7, 7][Int(bytes[4] / 3 % 8)]
}

/// `content` as the one chunk of a trace (`TraceWriter.writeOneChunk`) of
/// format 1.`minor`, replayed both ways.
func replayBothWays(_ content: [UInt8], nics: Int, minor: UInt16) {
    do throws(TraceError) {
        guard try TraceWriter.writeOneChunk(content: content, nics: nics, minor: minor, to: replayPath) else { return }
    } catch {
        return
    }
    func replay(directly: Bool) -> String {
        do throws(TraceError) {
            let replayer = TraceReplayer(reader: try TraceReader(path: replayPath))
            replayer.replaysDirectly = directly
            let o = try replayer.replayAll(keepGoing: false)
            return "\(o.divergences) \(o.counters) \(o.segments) \(String(describing: o.cut)) \(String(describing: o.firstContext))"
        } catch {
            return "error \(error)"
        }
    }
    let direct = replay(directly: true), eventByEvent = replay(directly: false)
    precondition(direct == eventByEvent, "direct replay: \(direct)\nevent by event: \(eventByEvent)")
}

/// Where "RPLY" inputs are written (one file per fuzzing process, in memory where there is /dev/shm).
let replayPath = (access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp") + "/vtrace-fuzz-replay-\(getpid()).vtrace"

@_cdecl("FuzzTrace_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { fuzz($0, $1) }
}
