import Testing
import TraceAnalysis

@Suite("Axis maps")
struct AxisMapTests {
    @Test func mapsThroughItsAnchorsAndBack() {
        var m = AxisMap()
        #expect(m.map(42) == 42)   // no anchors: the identity
        m.add(100, 90)
        m.add(200, 190)
        m.add(300, 350)
        #expect(m.map(100) == 90 && m.map(150) == 140 && m.map(250) == 270 && m.map(300) == 350)
        #expect(m.map(50) == 40 && m.map(400) == 450)   // beyond: the nearest anchor's offset
        #expect(m.map(5) == 0)                          // never below zero
        let back = m.inverse
        #expect(back.map(270) == 250 && back.map(90) == 100)
        m.add(250, 400)   // not increasing: ignored
        #expect(m.map(300) == 350)
    }

    @Test func keepsAtMostItsCapacityAndTheLastAnchor() {
        var m = AxisMap(capacity: 64)
        for i in 0..<10_000 { m.add(UInt64(i) * 10, UInt64(i) * 10 + 5) }
        #expect(m.count <= 66)
        #expect(m.map(99_990) == 99_995 && m.map(0) == 5 && m.map(51_230) == 51_235)
    }
}
