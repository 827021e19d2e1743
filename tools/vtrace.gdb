# gdb script for stopping a replay inside the device core.
#
#   gdb -q -x tools/vtrace.gdb --args .build/debug/vtrace replay TRACE --break-at N
#   gdb -q -x tools/vtrace.gdb --args .build/debug/vtrace replay TRACE --break-on-divergence
#
# vtrace raises SIGTRAP at the stop; this script runs to it, prints the
# replayed devices' state and counters, and a short backtrace. Then it is
# yours: `up`, `info locals`, `break VirtioNetDevice+Queues.swift:NN`, `continue`.
set pagination off
set confirm off
handle SIGTRAP stop nopass
define vtrace-state
  call (void)vtrace_debug_print()
end
document vtrace-state
Print every replayed device's status, queues and counters (vtrace_debug_print).
end
# A backtrace with Swift's names demangled (swift-demangle ships with the
# toolchain; without it on PATH, the raw one): `vtrace-bt` for 12 frames,
# `vtrace-bt N` for N.
define vtrace-bt
  if $argc == 0
    pipe bt 12 | if command -v swift-demangle >/dev/null; then swift-demangle --simplified; else cat; fi
  else
    pipe bt $arg0 | if command -v swift-demangle >/dev/null; then swift-demangle --simplified; else cat; fi
  end
end
document vtrace-bt
Backtrace (12 frames, or N) with the Swift names demangled.
end
run
vtrace-state
vtrace-bt
