import FaceRestorePipeline
import Testing

@Suite struct RestoreTimingsTests {
    @Test func measuresAndSums() throws {
        var t = RestoreTimings()
        let v = t.measure(\.network) { (0..<10_000).reduce(0, +) }
        #expect(v == 49_995_000)
        #expect(t.network > 0 && t.decode == 0)
        t.decode = 0.002
        let both = t + t
        #expect(both.decode == 0.004)
        #expect(abs(both.total - 2 * t.total) < 1e-12)
    }

    @Test func summaryIsOneLine() {
        var t = RestoreTimings()
        t.decode = 0.0021
        t.network = 1.9
        #expect(t.summary == "decode 2.1 ms · detect 0.0 ms · align 0.0 ms · network 1.90 s · background 0.0 ms · masks 0.0 ms · paste 0.0 ms · encode 0.0 ms · total 1.90 s")
    }
}
