//! Where a reader gets bytes: a file, or memory (tests count what is read).

#if canImport(Glibc)
import Glibc
#endif

/// Random-access bytes of a trace.
public protocol TraceSource: AnyObject {
    var size: Int { get }
    /// Reads `count` bytes at `offset`; fewer only at the end of the source.
    func read(at offset: Int, count: Int) throws(TraceError) -> [UInt8]
    /// An independent handle on the same bytes, for another thread (nil:
    /// this source cannot give one, and is read by one thread only).
    func reopened() throws(TraceError) -> TraceSource?
}

extension TraceSource {
    public func reopened() throws(TraceError) -> TraceSource? { nil }
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
        var out = [UInt8](repeating: 0, count: n)
        var done = 0
        while done < n {
            let got = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, n - done, off_t(offset + done)) }
            if got < 0 {
                if errno == EINTR { continue }
                throw .io(path: path, String(cString: strerror(errno)))
            }
            if got == 0 { break }
            done += got
        }
        bytesRead += done
        if done < n { out.removeSubrange(done...) }
        return out
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
