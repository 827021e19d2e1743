import Testing
import TraceCatalog

@Suite("Row formats")
struct RowFormatTests {
    let result = QueryResult(columns: ["path", "n", "ratio", "note"], rows: [
        [.text("a,b.vtrace"), .integer(12), .real(0.5), .null],
        [.text("say \"hi\"\nthere"), .integer(-3), .real(2), .text("x")],
    ])

    @Test func csvQuotesWhatNeedsIt() {
        let f = RowFormat.csv
        #expect(f.header(result.columns) == "path,n,ratio,note\n")
        #expect(result.rows.map { f.line($0, columns: result.columns) } == ["\"a,b.vtrace\",12,0.5,\n", "\"say \"\"hi\"\"\nthere\",-3,2.0,x\n"])
    }

    @Test func jsonLinesKeepTypes() {
        let f = RowFormat.jsonl
        #expect(f.header(result.columns) == nil)
        #expect(result.rows.map { f.line($0, columns: result.columns) } == [
            "{\"path\":\"a,b.vtrace\",\"n\":12,\"ratio\":0.5,\"note\":null}\n",
            "{\"path\":\"say \\\"hi\\\"\\nthere\",\"n\":-3,\"ratio\":2.0,\"note\":\"x\"}\n",
        ])
    }

    @Test func tableAlignsNumbersRight() {
        let short = QueryResult(columns: ["status", "traces"], rows: [[.text("complete"), .integer(1990)], [.text("corrupt"), .integer(3)], [.null, .integer(7)]])
        #expect(RowFormat.table(short) == """
            status    traces
            --------  ------
            complete    1990
            corrupt        3
            NULL           7
            (3 rows)

            """)
    }
}
