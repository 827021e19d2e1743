//! Where a reader gets bytes: a file, or memory (tests count what is read).

#if canImport(Glibc)
import Glibc
#endif

/// Random-access bytes of a trace.
public protocol TraceSource: AnyObject {
    var size: Int { get }
    /// Reads `count` bytes at `offset`; fewer only at the end of the source.
    func read(at offset: Int, count: Int) throws(TraceError) -> [UInt8]
    /// Reads up to `buffer.count` bytes at `offset` into `buffer`: how many
    /// (fewer only where the source ends). The default copies what
    /// ``read(at:count:)`` returns.
    func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws(TraceError) -> Int
    /// An independent handle on the same bytes, for another thread (nil:
    /// this source cannot give one, and is read by one thread only).
    func reopened() throws(TraceError) -> TraceSource?
}

extension TraceSource {
    public func reopened() throws(TraceError) -> TraceSource? { nil }

    public func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws(TraceError) -> Int {
        let bytes = try read(at: offset, count: buffer.count)
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
        return bytes.count
    }
}

/// A trace file, read with pread(2).
public final class FileTraceSource: TraceSource {
    public let path: String
    let fd: Int32
    public let size: Int
    /// Bytes read so far (for tests and `info`).
    public private(set) var bytesRead = 0

    public init(path: String) throws(TraceError) {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw .io(path: path, String(cString: strerror(errno))) }
        var st = stat()
        if fstat(fd, &st) != 0 {
            let message = String(cString: strerror(errno))
            close(fd)
            throw .io(path: path, message)
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw .io(path: path, "is a directory")
        }
        size = Int(st.st_size)
    }

    deinit { close(fd) }

    /// The same file, opened again (its own descriptor and count of bytes read).
    public func reopened() throws(TraceError) -> TraceSource? { try FileTraceSource(path: path) }

    public func read(at offset: Int, count: Int) throws(TraceError) -> [UInt8] {
        let n = max(0, min(count, size - offset))
        var failure: TraceError?
        let out = [UInt8](unsafeUninitializedCapacity: n) { raw, initialized in
            do throws(TraceError) {
                initialized = try read(at: offset, into: UnsafeMutableRawBufferPointer(raw))
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        return out
    }

    /// With pread(2), straight into `buffer` (the reader's chunk after chunk).
    public func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws(TraceError) -> Int {
        let n = max(0, min(buffer.count, size - offset))
        var done = 0
        while done < n {
            let got = pread(fd, buffer.baseAddress! + done, n - done, off_t(offset + done))
            if got < 0 {
                if errno == EINTR { continue }
                throw .io(path: path, String(cString: strerror(errno)))
            }
            if got == 0 { break }
            done += got
        }
        bytesRead += done
        return done
    }
}

/// A trace in memory.
public final class MemoryTraceSource: TraceSource {
    public let bytes: [UInt8]
    public private(set) var bytesRead = 0
    public private(set) var reads: [Range<Int>] = []
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var size: Int { bytes.count }
    /// The same bytes (shared, never written), with its own counts.
    public func reopened() throws(TraceError) -> TraceSource? { MemoryTraceSource(bytes) }
    public func read(at offset: Int, count: Int) throws(TraceError) -> [UInt8] {
        let start = min(max(offset, 0), bytes.count)
        let end = min(start + max(count, 0), bytes.count)
        bytesRead += end - start
        reads.append(start..<end)
        return Array(bytes[start..<end])
    }
}
