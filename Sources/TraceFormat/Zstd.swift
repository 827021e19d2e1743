//! A thin wrapper over libzstd: one frame in, one frame out.

import CZstd

/// A libzstd failure, with zstd's own message.
public struct ZstdError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { "zstd: \(message)" }

    static func check(_ code: Int) throws(ZstdError) -> Int {
        if ZSTD_isError(code) != 0 { throw ZstdError(message: String(cString: ZSTD_getErrorName(code))) }
        return code
    }
}

/// Compresses buffers into single zstd frames carrying their content size
/// and, unless told not to, zstd's XXH64 content checksum (about two
/// instructions a byte: a fifth of level 1's work on a recording's chunks,
/// redundant where a CRC-32 of the frame is kept, as a trace's index does).
public final class ZstdCompressor {
    let context: OpaquePointer
    public let level: Int32

    var currentLevel: Int32

    public init(level: Int32, contentChecksum: Bool = true) {
        context = ZSTD_createCCtx()
        self.level = level
        currentLevel = level
        ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)
        ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, contentChecksum ? 1 : 0)
        ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, 1)
    }

    deinit { ZSTD_freeCCtx(context) }

    /// The level of the frames compressed from now on.
    public func setLevel(_ newLevel: Int32) {
        if newLevel != currentLevel {
            ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, newLevel)
            currentLevel = newLevel
        }
    }

    /// The match finder of the frames compressed from now on (``MatchFinderChooser``).
    public func setFinder(_ finder: MatchFinderChooser.Finder) {
        if finder != currentFinder {
            ZSTD_CCtx_setParameter(context, ZSTD_c_strategy, finder == .doubleFast ? Int32(ZSTD_dfast.rawValue) : 0)
            currentFinder = finder
        }
    }

    var currentFinder = MatchFinderChooser.Finder.levelDefault

    /// Levels libzstd accepts.
    public static var levels: ClosedRange<Int32> { ZSTD_minCLevel()...ZSTD_maxCLevel() }

    /// One frame holding `source`.
    public func compress(_ source: UnsafeRawBufferPointer) throws(ZstdError) -> [UInt8] {
        var out: [UInt8] = []
        let written = try compress(source, into: &out)
        out.removeSubrange(written...)
        return out
    }

    /// Compresses `source` into the front of `out`, which is grown to zstd's
    /// bound when smaller and otherwise reused as it is (no allocation, no
    /// zeroing, chunk after chunk); returns the compressed size.
    public func compress(_ source: UnsafeRawBufferPointer, into out: inout [UInt8]) throws(ZstdError) -> Int {
        let bound = ZSTD_compressBound(source.count)
        if out.count < bound { out = [UInt8](repeating: 0, count: bound) }
        var failure: ZstdError?
        let written = out.withUnsafeMutableBytes { dst -> Int in
            do throws(ZstdError) {
                return try ZstdError.check(ZSTD_compress2(context, dst.baseAddress, dst.count, source.baseAddress, source.count))
            } catch {
                failure = error
                return 0
            }
        }
        if let failure { throw failure }
        return written
    }
}

/// Decompresses single frames with a hard output limit (a hostile frame
/// cannot make it allocate more than the limit).
public final class ZstdDecompressor {
    let context: OpaquePointer

    public init() { context = ZSTD_createDCtx() }
    deinit { ZSTD_freeDCtx(context) }

    /// Whether each frame's XXH64 content checksum is verified (the default).
    /// A reader that has already checked the compressed bytes against the
    /// index's CRC-32 may skip it: the content of a frame whose bytes are
    /// intact is determined by them. Returns false if libzstd refused.
    @discardableResult
    public func verifyContentChecksum(_ on: Bool) -> Bool {
        // ZSTD_d_forceIgnoreChecksum is ZSTD_d_experimentalParam3 (libzstd ≥ 1.4.7).
        ZSTD_isError(ZSTD_DCtx_setParameter(context, ZSTD_d_experimentalParam3, on ? 0 : 1)) == 0
    }

    /// The content size a frame declares, if it declares one.
    public static func contentSize(_ frame: UnsafeRawBufferPointer) -> UInt64? {
        let size = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
        return size >= 0xFFFF_FFFF_FFFF_FFFE ? nil : UInt64(size)  // ZSTD_CONTENTSIZE_UNKNOWN / _ERROR
    }

    /// Decompresses `frame`, which must declare exactly `out.count` bytes of content, into `out`.
    public func decompress(_ frame: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) throws(ZstdError) {
        guard let declared = Self.contentSize(frame) else { throw ZstdError(message: "frame does not declare its size") }
        guard declared == UInt64(out.count) else {
            throw ZstdError(message: "frame declares \(declared) bytes, the index says \(out.count)")
        }
        let n = try ZstdError.check(ZSTD_decompressDCtx(context, out.baseAddress, out.count, frame.baseAddress, frame.count))
        guard n == out.count else { throw ZstdError(message: "frame held \(n) bytes, expected \(out.count)") }
    }
}
