//! Errors in scenario files, located to the byte.

/// A problem with a scenario file: where it is and what is wrong. Parse errors
/// and run-time errors (the driver cannot do what a line asks) both carry the
/// file, line and column, and print as `FILE:LINE:COLUMN: message`.
public struct ScenarioError: Error, Hashable, Sendable, CustomStringConvertible {
    public var file: String
    /// 1-based line; 0 for whole-file problems.
    public var line: Int
    /// 1-based byte column; 0 when unknown.
    public var column: Int
    public var message: String

    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String {
        line == 0 ? "\(file): \(message)" : "\(file):\(line):\(max(column, 1)): \(message)"
    }
}

/// An `expect` (or `mem expect`, `mmio read expect=`) that did not hold.
public struct ExpectationFailure: Hashable, Sendable, CustomStringConvertible, Codable {
    public var file: String
    public var line: Int
    /// `expected …, got …`.
    public var message: String

    public var description: String { "\(file):\(line): \(message)" }
}
