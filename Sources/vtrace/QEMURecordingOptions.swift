import ArgumentParser

/// The options of `vtrace record -- QEMU ...` alone.
struct QEMURecordingOptions: ParsableArguments {
    @Flag(help: "Print the QEMU command line vtrace would run (shell-quoted; the socket's directory as XXXXXX) and exit 0, starting nothing.")
    var dryRun = false

    @Flag(help: "Print what vtrace adds to QEMU's command line and why, QEMU's pid, and the backend's progress, on standard error.")
    var verbose = false

    @Flag(help: "Delete the trace when QEMU exits 0 and `vtrace check` passes, saying so on standard error (the default keeps every trace).")
    var onlyFailures = false

    @Option(help: "Seconds QEMU has to connect to vtrace's socket; then it is stopped and vtrace exits 1.")
    var connectTimeout: Double = 60

    @Flag(help: "Serve QEMU's NIC without recording (no -o): the same run for a baseline, or for the counters alone.")
    var noRecord = false

    @Flag(name: .customLong("assume-qemu"), help: "Take the program for QEMU whatever its name (a wrapper script that passes its arguments on, RHEL's /usr/libexec/qemu-kvm).")
    var assumeQEMU = false

    /// The first of these options given, as written (for `--scenario`, which takes none).
    var given: String? {
        [(dryRun, "--dry-run"), (verbose, "--verbose"), (onlyFailures, "--only-failures"), (connectTimeout != 60, "--connect-timeout"),
         (noRecord, "--no-record"), (assumeQEMU, "--assume-qemu")].first { $0.0 }?.1
    }

    /// Exits 2 (a ValidationError) for options that do not go together.
    func check(output: String?) throws {
        if !(connectTimeout > 0) { throw ValidationError("--connect-timeout must be positive") }
        if noRecord && output != nil { throw ValidationError("--no-record writes no trace: leave out -o") }
        if noRecord && onlyFailures { throw ValidationError("--only-failures decides whether to keep a trace; --no-record writes none") }
        if !noRecord && !dryRun && output == nil { throw ValidationError("recording QEMU needs -o OUT.vtrace (or --no-record)") }
    }
}
