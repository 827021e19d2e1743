/// The commands `vtrace debug` reads: names, usage and help, in one table
/// (the `help` command, `--help` and tab completion all come from it).
struct DebugCommand {
    /// The name, then its short forms.
    let names: [String]
    let usage: String
    let summary: String
    let details: String

    static let all: [DebugCommand] = [
        .init(names: ["step", "s"], usage: "step [N]", summary: "replay the next N events (default 1), stopping anywhere, also inside a drain",
              details: "Lists the events replayed. Inside a queue kick the device is paused in the middle of its drain, exactly before event N."),
        .init(names: ["next", "n"], usage: "next [N]", summary: "replay to the start of the Nth next access (default 1)",
              details: "An access is one MMIO access or vhost-user operation with everything it caused (a kick's whole drain)."),
        .init(names: ["continue", "c"], usage: "continue", summary: "run to the next breakpoint or watch hit, a divergence or the end",
              details: "Every event on the way is replayed and checked against the recording."),
        .init(names: ["reverse-step", "rs"], usage: "reverse-step [N]", summary: "go back N events (default 1)",
              details: "Restores the nearest checkpoint before the target and replays forward to it (at most one chunk)."),
        .init(names: ["reverse-next", "rn"], usage: "reverse-next [N]", summary: "back to the start of the current access (N: that many accesses back)",
              details: "Between accesses, `reverse-next` goes to the start of the previous one."),
        .init(names: ["reverse-continue", "rc"], usage: "reverse-continue", summary: "back to the previous breakpoint or watch hit (or the start)",
              details: "Watch hits are found in the recorded counter transitions, which the replay matches event for event."),
        .init(names: ["goto", "g"], usage: "goto N", summary: "go to event N (forwards or backwards)",
              details: "Restores the nearest checkpoint at or before event N and replays to it; stops exactly before event N."),
        .init(names: ["break", "b"], usage: "break N", summary: "stop before event N",
              details: "`continue` stops exactly at event N, even in the middle of a drain; `info breakpoints` lists them."),
        .init(names: ["watch", "w"], usage: "watch COUNTER|EXPR [nic=N]", summary: "stop when a counter changes, or when a predicate becomes true",
              details: """
                  `watch rx_write_failed` stops after every change of that counter on any NIC (nic=N: on one);
                  `watch 'rx_packets + 1 < tx_packets'` stops after the event at which the predicate (the language
                  of `vtrace bisect`, over the sum of all NICs or nic=N's counters) becomes true.
                  """),
        .init(names: ["delete", "d"], usage: "delete [ID...]", summary: "delete breakpoints and watchpoints (all without IDs)", details: ""),
        .init(names: ["info", "i"], usage: "info breakpoints", summary: "list breakpoints and watchpoints with their hits", details: "Also `info b`, `i b`."),
        .init(names: ["where"], usage: "where", summary: "where the replay is: the access, queue, chain and descriptor, the counters so far", details: ""),
        .init(names: ["why"], usage: "why COUNTER [nic=N]", summary: "why the counter last changed before this point",
              details: "The access, chain, device path and guest memory reads that moved it (as `vtrace why FILE COUNTER --at N`)."),
        .init(names: ["counters"], usage: "counters", summary: "every NIC's counters at this point", details: ""),
        .init(names: ["queues"], usage: "queues", summary: "each NIC's status and queues at this point", details: ""),
        .init(names: ["event", "e"], usage: "event", summary: "the next recorded event", details: ""),
        .init(names: ["chain"], usage: "chain", summary: "the chain being processed, or the last one popped", details: ""),
        .init(names: ["help", "h", "?"], usage: "help [COMMAND]", summary: "list the commands, or explain one", details: ""),
        .init(names: ["quit", "q", "exit"], usage: "quit", summary: "leave", details: ""),
    ]

    /// The command a word names, if any.
    static func named(_ word: String) -> DebugCommand? { all.first { $0.names.contains(word) } }

    /// Every command's full name (tab completion).
    static var names: [String] { all.map { $0.names[0] } }

    /// The command list (`help`, `--help`): usage, then the summary wrapped
    /// to 78 columns under its own column.
    static var list: String {
        let column = (all.map(\.usage.count).max() ?? 0) + 4
        return all.map { c in
            var lines: [String] = []
            var line = "  " + c.usage.padding(toLength: column - 2, withPad: " ", startingAt: 0)
            var empty = true
            for word in c.summary.split(separator: " ") {
                if !empty && line.count + 1 + word.count > 78 {
                    lines.append(line)
                    line = String(repeating: " ", count: column)
                    empty = true
                }
                line += (empty ? "" : " ") + word
                empty = false
            }
            lines.append(line)
            return lines.joined(separator: "\n")
        }.joined(separator: "\n")
    }

    /// `help COMMAND`.
    var help: String {
        var text = "\(usage)\n  \(summary)"
        if !details.isEmpty { text += "\n  " + details.split(separator: "\n").joined(separator: "\n  ") }
        if names.count > 1 { text += "\n  also: " + names.dropFirst().joined(separator: ", ") }
        return text
    }
}
