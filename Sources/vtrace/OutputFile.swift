//! Files the CLI writes: never one of its inputs, never half written, every
//! write checked.

import ArgumentParser
import Foundation

/// Refuses (exit 2, before any work) an output that is the same file as one
/// of `inputs` (same device and inode: through `./`, another spelling or a
/// symlink too), or a directory; with `renamedIntoPlace` (a recording, written
/// as NAME.partial and renamed), anything there but a regular file (a device
/// like /dev/full must not be replaced by a trace).
func refuseClobbering(_ output: String, inputs: [String], option: String = "-o", renamedIntoPlace: Bool = false) throws {
    guard output != "-" else { return }
    var out = stat()
    guard stat(output, &out) == 0 else { return }   // nothing there yet
    if out.st_mode & S_IFMT == S_IFDIR {
        printError("vtrace: \(option) \(output): is a directory")
        throw ExitCode(VTrace.usageExitCode)
    }
    if renamedIntoPlace && out.st_mode & S_IFMT != S_IFREG {
        printError("vtrace: \(option) \(output): not a regular file (a trace is written beside it and renamed into place)")
        throw ExitCode(VTrace.usageExitCode)
    }
    for input in inputs {
        var st = stat()
        if stat(input, &st) == 0, st.st_dev == out.st_dev, st.st_ino == out.st_ino {
            printError("vtrace: \(option) \(output) is the input \(input); refusing to overwrite it")
            throw ExitCode(VTrace.usageExitCode)
        }
    }
}

/// An output file written to `.NAME.vtrace-tmp-PID` beside it and renamed
/// into place by ``commit()``: a failed or interrupted run leaves the old file
/// (or none), never half of a new one. `-` is standard output; a device, FIFO
/// or socket already there is written in place (never replaced by a file). A
/// failed write names the file and the error and exits 2; the temporary file
/// is removed. A closed pipe on standard output ends the process quietly, as
/// SIGPIPE does.
final class OutputFile {
    let path: String
    private let fd: Int32
    private let temporary: String?
    private var committed = false

    /// Opens `path` for writing, after ``refuseClobbering(_:inputs:option:)``.
    init(_ path: String, inputs: [String]) throws {
        try refuseClobbering(path, inputs: inputs)
        self.path = path
        if path == "-" {
            fflush(nil)
            fd = STDOUT_FILENO
            temporary = nil
            return
        }
        var existing = stat()
        let special = stat(path, &existing) == 0 && existing.st_mode & S_IFMT != S_IFREG
        let url = URL(fileURLWithPath: path)
        let tmp = special ? nil : url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).vtrace-tmp-\(getpid())").path
        let opened = tmp.map { open($0, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) } ?? open(path, O_WRONLY | O_CLOEXEC)
        guard opened >= 0 else {
            printError("vtrace: cannot write \(path): \(String(cString: strerror(errno)))")
            throw ExitCode(VTrace.usageExitCode)
        }
        fd = opened
        temporary = tmp
    }

    deinit {
        guard !committed, fd != STDOUT_FILENO else { return }
        close(fd)
        if let temporary { unlink(temporary) }
    }

    /// Writes all of `bytes`.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var at = 0
        while at < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + at, bytes.count - at)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { try fail(errno) }
            at += n
        }
    }

    func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    func write(_ text: String) throws {
        var text = text
        try text.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }

    /// Flushes and closes the file and renames it into place.
    func commit() throws {
        guard let temporary else {
            if fd != STDOUT_FILENO && close(fd) != 0 { try fail(errno) }
            committed = true
            return
        }
        if fsync(fd) != 0 && errno != EINVAL && errno != EROFS { try fail(errno) }
        if close(fd) != 0 { try fail(errno) }
        guard rename(temporary, path) == 0 else { try fail(errno) }
        committed = true
    }

    private func fail(_ error: Int32) throws -> Never {
        if path == "-" && error == EPIPE { endQuietlyOnClosedPipe() }
        printError("vtrace: cannot write \(path == "-" ? "standard output" : path): \(String(cString: strerror(error)))")
        throw ExitCode(VTrace.usageExitCode)
    }
}

/// A reader went away (`| head`): end as SIGPIPE would have, without a word.
func endQuietlyOnClosedPipe() -> Never {
    signal(SIGPIPE, SIG_DFL)
    raise(SIGPIPE)
    exit(141)
}

/// Standard output, once a command is done: what `print` buffered is
/// flushed, and a failed write anywhere in it (a full disk, `/dev/full`) is
/// an error naming standard output, exit 2, instead of a silent exit 0.
func checkStandardOutput() {
    // C's `stdout` is a mutable global Swift 6 will not read; its address is
    // a symbol like any other.
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "stdout") else { return }
    let out = symbol.load(as: UnsafeMutablePointer<FILE>.self)
    let flushed = fflush(out) == 0
    let error = errno
    guard !flushed || ferror(out) != 0 else { return }
    if !flushed && error == EPIPE { endQuietlyOnClosedPipe() }
    // An earlier write failed (the flags keep that, not why).
    let why = flushed ? "a write failed" : String(cString: strerror(error))
    FileHandle.standardError.write(Data("vtrace: cannot write standard output: \(why)\n".utf8))
    exit(VTrace.usageExitCode)
}
