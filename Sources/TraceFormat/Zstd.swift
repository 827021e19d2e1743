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

/// Compresses buffers into single zstd frames carrying their content size and
/// a content checksum, so `zstd -t` verifies every chunk.
public final class ZstdCompressor {
    let context: OpaquePointer
    public let level: Int32

    public init(level: Int32) {
        context = ZSTD_createCCtx()
        self.level = level
        ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)
        ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1)
        ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, 1)
    }

    deinit { ZSTD_freeCCtx(context) }

    /// Levels libzstd accepts.
    public static var levels: ClosedRange<Int32> { ZSTD_minCLevel()...ZSTD_maxCLevel() }

    /// One frame holding `source`.
    public func compress(_ source: UnsafeRawBufferPointer) throws(ZstdError) -> [UInt8] {
        let bound = ZSTD_compressBound(source.count)
        var out = [UInt8](repeating: 0, count: bound)
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
        out.removeSubrange(written...)
        return out
    }
}

/// Decompresses single frames with a hard output limit (a hostile frame
/// cannot make it allocate more than the limit).
public final class ZstdDecompressor {
    let context: OpaquePointer

    public init() { context = ZSTD_createDCtx() }
    deinit { ZSTD_freeDCtx(context) }

    /// The content size a frame declares, if it declares one.
    public static func contentSize(_ frame: UnsafeRawBufferPointer) -> UInt64? {
        let size = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
        return size >= 0xFFFF_FFFF_FFFF_FFFE ? nil : UInt64(size)  // ZSTD_CONTENTSIZE_UNKNOWN / _ERROR
    }

    /// Decompresses `frame`, which must declare exactly `expectedSize` bytes of content.
    public func decompress(_ frame: UnsafeRawBufferPointer, expectedSize: Int, into out: inout [UInt8]) throws(ZstdError) {
        guard let declared = Self.contentSize(frame) else { throw ZstdError(message: "frame does not declare its size") }
        guard declared == UInt64(expectedSize) else {
            throw ZstdError(message: "frame declares \(declared) bytes, the index says \(expectedSize)")
        }
        if out.count < expectedSize { out = [UInt8](repeating: 0, count: expectedSize) }
        var failure: ZstdError?
        let n = out.withUnsafeMutableBytes { dst -> Int in
            do throws(ZstdError) {
                return try ZstdError.check(ZSTD_decompressDCtx(context, dst.baseAddress, expectedSize, frame.baseAddress, frame.count))
            } catch {
                failure = error
                return 0
            }
        }
        if let failure { throw failure }
        guard n == expectedSize else { throw ZstdError(message: "frame held \(n) bytes, expected \(expectedSize)") }
    }
}
