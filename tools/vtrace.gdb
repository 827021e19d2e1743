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
run
vtrace-state
bt 12
