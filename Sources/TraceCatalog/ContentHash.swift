//! A file's identity in the catalogue: SHA-256 of its bytes (libcrypto).

import CLibCrypto
import Glibc

/// SHA-256 of whole files, read in 1 MiB blocks.
public enum ContentHash {
    /// The hex SHA-256 of the file at `path`.
    /// - Throws: `CatalogError.io` naming the file when it cannot be read.
    public static func sha256(path: String) throws(CatalogError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(path: path, String(cString: strerror(errno))) }
        defer { close(fd) }
        guard let context = EVP_MD_CTX_new() else { throw .io(path: path, "libcrypto could not allocate a digest") }
        defer { EVP_MD_CTX_free(context) }
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
        var block = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = block.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw .io(path: path, String(cString: strerror(errno))) }
            if n == 0 { break }
            block.withUnsafeBytes { _ = EVP_DigestUpdate(context, $0.baseAddress, n) }
        }
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &digest, &length)
        return digest.prefix(Int(length)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
