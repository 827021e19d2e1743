import HostPrimitives
import Testing

@Suite("Threads, locks and the clock")
struct HostPrimitivesTests {
    final class Box: @unchecked Sendable { var value = 0 }

    @Test func aMutexSerialisesTwoThreads() throws {
        let mutex = Mutex(), box = Box()
        let threads = try (0..<2).map { _ in
            try #require(BackgroundThread { for _ in 0..<100_000 { mutex.withLock { box.value += 1 } } })
        }
        for t in threads { t.join() }
        #expect(box.value == 200_000)
    }

    @Test func aConditionWakesItsWaiterAndATimedWaitReturns() throws {
        let mutex = Mutex(), condition = Condition(), box = Box()
        let t = try #require(BackgroundThread {
            mutex.withLock { box.value = 1; condition.signal() }
        })
        mutex.lock()
        while box.value == 0 { condition.wait(mutex) }
        // Nobody signals now: the timed wait comes back on its own.
        let before = monotonicNanoseconds()
        condition.wait(mutex, milliseconds: 20)
        mutex.unlock()
        t.join()
        #expect(box.value == 1)
        #expect(monotonicNanoseconds() - before >= 10_000_000)
    }

    @Test func theClockNeverGoesBackwards() {
        var last = monotonicNanoseconds()
        for _ in 0..<10_000 {
            let now = monotonicNanoseconds()
            #expect(now >= last)
            last = now
        }
    }
}
