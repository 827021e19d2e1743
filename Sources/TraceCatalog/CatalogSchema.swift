//! The catalogue's tables, defined once: the SQL that creates them, the
//! column order inserts and exports use. docs/fleet.md describes every column.

import VirtioCore

/// The catalogue's schema (version ``version``).
public enum CatalogSchema {
    /// Stored in `PRAGMA user_version`. A catalogue with a larger number was
    /// written by a newer vtrace and is refused, naming the version.
    public static let version: Int32 = 1

    /// `PRAGMA application_id`: "vtrc", so another program's SQLite file is
    /// told apart from a catalogue.
    public static let applicationID: Int32 = 0x7674_7263

    /// Points of each trace's counter timeline (the `timeline` table): the
    /// first event, the last, and evenly spaced events between. 32 shows a
    /// trend's shape in a sparkline and keeps 100,000 traces at 3.2 M rows.
    public static let timelinePoints = 32

    /// The aggregate counter columns (`traces`, `timeline`), in canonical order.
    public static var counterColumns: [String] { NetCounter.allCases.map(\.name) }

    /// `traces`: one row per trace content, in insert order.
    public static let traceColumns: [(name: String, type: String)] = [
        ("path", "TEXT NOT NULL"), ("file_bytes", "INTEGER NOT NULL"), ("mtime_ns", "INTEGER NOT NULL"),
        ("content_sha256", "TEXT UNIQUE"), ("catalogued_at_ns", "INTEGER NOT NULL"),
        ("status", "TEXT NOT NULL"), ("error", "TEXT"),
        ("format_version", "TEXT"), ("transport", "TEXT"), ("recorder_version", "TEXT"), ("recorder_commit", "TEXT"),
        ("host", "TEXT"), ("start_time_ns", "INTEGER"), ("start_time", "TEXT"), ("command", "TEXT"),
        ("scenario", "TEXT"), ("guest", "TEXT"), ("faults", "TEXT"), ("fault_count", "INTEGER"),
        ("keep_window", "TEXT"), ("trigger_condition", "TEXT"), ("snaplen", "INTEGER"),
        ("nics", "INTEGER"), ("queue_pairs", "INTEGER"),
        ("complete", "INTEGER"), ("bytes_lost", "INTEGER"),
        ("events", "INTEGER"), ("first_event", "INTEGER"), ("chunks", "INTEGER"), ("checkpoint_chunks", "INTEGER"),
        ("duration_ns", "INTEGER"),
    ] + counterColumns.map { ($0, "INTEGER") } + [
        ("first_poison_event", "INTEGER"), ("first_poison_nic", "INTEGER"), ("first_poison_queue", "INTEGER"),
        ("first_poison_reason", "TEXT"),
        ("check_ok", "INTEGER"), ("check_event", "INTEGER"), ("check_rule", "TEXT"), ("check_detail", "TEXT"),
        ("replay_status", "TEXT"), ("replay_event", "INTEGER"), ("replay_nic", "INTEGER"), ("replay_counter", "TEXT"),
        ("replay_expected", "TEXT"), ("replay_actual", "TEXT"), ("replay_faults", "TEXT"), ("replayed_by", "TEXT"),
    ]

    /// `counters`: per trace, NIC and counter that moved or ends non-zero.
    public static let counterStatColumns: [(name: String, type: String)] = [
        ("trace_id", "INTEGER NOT NULL REFERENCES traces(id) ON DELETE CASCADE"), ("nic", "INTEGER NOT NULL"),
        ("counter", "TEXT NOT NULL"), ("final_value", "INTEGER NOT NULL"), ("moves", "INTEGER NOT NULL"),
        ("first_move_event", "INTEGER"), ("last_move_event", "INTEGER"),
    ]

    /// `timeline`: per trace, ``timelinePoints`` samples of the aggregate counters.
    public static let timelineColumns: [(name: String, type: String)] = [
        ("trace_id", "INTEGER NOT NULL REFERENCES traces(id) ON DELETE CASCADE"), ("point", "INTEGER NOT NULL"),
        ("event", "INTEGER NOT NULL"), ("time_ns", "INTEGER NOT NULL"),
    ] + counterColumns.map { ($0, "INTEGER NOT NULL") }

    /// The tables, in export order, with the order their rows are exported in.
    public static let tables: [(name: String, orderBy: String)] = [
        ("traces", "id"), ("counters", "trace_id, nic, counter"), ("timeline", "trace_id, point"),
    ]

    /// The statements that create an empty catalogue.
    static var creation: String {
        func columns(_ list: [(name: String, type: String)]) -> String { list.map { "\($0.name) \($0.type)" }.joined(separator: ",\n  ") }
        return """
            CREATE TABLE traces (
              id INTEGER PRIMARY KEY,
              \(columns(traceColumns))
            );
            CREATE INDEX traces_path ON traces(path);
            CREATE INDEX traces_commit ON traces(recorder_commit);
            CREATE TABLE counters (
              \(columns(counterStatColumns)),
              PRIMARY KEY (trace_id, nic, counter)
            ) WITHOUT ROWID;
            CREATE INDEX counters_counter ON counters(counter);
            CREATE TABLE timeline (
              \(columns(timelineColumns)),
              PRIMARY KEY (trace_id, point)
            ) WITHOUT ROWID;
            PRAGMA application_id = \(applicationID);
            PRAGMA user_version = \(version);
            """
    }
}
