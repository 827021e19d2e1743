import ArgumentParser

/// Options shared by commands that print results.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print JSON for machines instead of text.")
    var json = false
}
