// The two random streams the degradation pipelines draw from, bit for bit:
//   - CPython's `random` (Modules/_randommodule.c, CPython 3.11): MT19937 seeded from an integer
//     by `init_by_array` of its 32-bit words; `random()` = genrand_res53.
//   - numpy's legacy `RandomState` (numpy 1.24 `random/_mt19937.pyx`, `_legacy_seeding`;
//     `src/legacy/legacy-distributions.c`): an integer seed below 2³² goes through
//     `init_genrand`; `random_sample` is the same 53-bit double; `uniform(a, b)` = a + (b−a)·u;
//     `standard_normal` is the polar method, returning f·x2 and caching f·x1 for the next call
//     (the cache lives until the next seeding).
// MT19937 itself: Matsumoto and Nishimura 1998 (mt19937ar.c).

import Foundation

/// The Mersenne Twister MT19937 (32-bit outputs).
public struct MT19937: Sendable {
    private var state = [UInt32](repeating: 0, count: 624)
    private var index = 624

    /// `init_genrand(seed)`.
    public init(seed: UInt32) {
        state[0] = seed
        for i in 1..<624 {
            let prev = state[i - 1]
            state[i] = 1_812_433_253 &* (prev ^ (prev >> 30)) &+ UInt32(i)
        }
        index = 624
    }

    /// `init_by_array(key)`.
    public init(key: [UInt32]) {
        self.init(seed: 19_650_218)
        let key = key.isEmpty ? [0] : key
        var i = 1, j = 0
        for _ in 0..<max(624, key.count) {
            let prev = state[i - 1]
            state[i] = (state[i] ^ ((prev ^ (prev >> 30)) &* 1_664_525)) &+ key[j] &+ UInt32(truncatingIfNeeded: j)
            i += 1; j += 1
            if i >= 624 { state[0] = state[623]; i = 1 }
            if j >= key.count { j = 0 }
        }
        for _ in 0..<623 {
            let prev = state[i - 1]
            state[i] = (state[i] ^ ((prev ^ (prev >> 30)) &* 1_566_083_941)) &- UInt32(i)
            i += 1
            if i >= 624 { state[0] = state[623]; i = 1 }
        }
        state[0] = 0x8000_0000
        index = 624
    }

    private mutating func twist() {
        state.withUnsafeMutableBufferPointer { s in
            @inline(__always) func mix(_ a: UInt32, _ b: UInt32) -> UInt32 {
                let y = (a & 0x8000_0000) | (b & 0x7fff_ffff)
                return (y >> 1) ^ ((y & 1) &* 0x9908_b0df)
            }
            for k in 0..<227 { s[k] = s[k + 397] ^ mix(s[k], s[k + 1]) }
            for k in 227..<623 { s[k] = s[k - 227] ^ mix(s[k], s[k + 1]) }
            s[623] = s[396] ^ mix(s[623], s[0])
        }
        index = 0
    }

    /// `genrand_int32`.
    public mutating func next() -> UInt32 {
        if index >= 624 { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9d2c_5680
        y ^= (y << 15) & 0xefc6_0000
        y ^= y >> 18
        return y
    }

    /// `genrand_res53`: a double in [0, 1) with 53 random bits.
    public mutating func nextDouble() -> Double {
        let a = Double(next() >> 5), b = Double(next() >> 6)
        return (a * 67_108_864 + b) / 9_007_199_254_740_992
    }
}

/// CPython's `random` module state after `random.seed(n)` for an integer n.
public struct PythonRandom: Sendable {
    private var mt: MT19937

    /// `random.seed(n)`: the absolute value's 32-bit words, least significant first.
    public init(seed: Int) {
        var n = seed.magnitude
        var key: [UInt32] = []
        repeat {
            key.append(UInt32(truncatingIfNeeded: n))
            n >>= 32
        } while n > 0
        mt = MT19937(key: key)
    }

    /// `random.random()`.
    public mutating func random() -> Double { mt.nextDouble() }

    /// `random.choices(population, weights)[0]`'s index: one `random()` against the cumulative
    /// weights (bisect right).
    public mutating func choice(weights: [Double]) -> Int {
        var cumulative: [Double] = []
        var total = 0.0
        for w in weights { total += w; cumulative.append(total) }
        let x = random() * total
        return min(cumulative.firstIndex { x < $0 } ?? weights.count - 1, weights.count - 1)
    }
}

/// numpy's legacy global `RandomState` after `np.random.seed(n)`.
public struct NumpyRandom: Sendable {
    private var mt: MT19937
    private var cachedGauss: Double?

    /// `np.random.seed(n)` for 0 ≤ n < 2³².
    public init(seed: UInt32) { mt = MT19937(seed: seed) }

    /// `np.random.random_sample()` / `np.random.uniform()`.
    public mutating func uniform() -> Double { mt.nextDouble() }

    /// `np.random.uniform(low, high)`.
    public mutating func uniform(_ low: Double, _ high: Double) -> Double { low + (high - low) * mt.nextDouble() }

    /// `np.random.standard_normal()` (legacy polar method with its cached second value).
    public mutating func gauss() -> Double {
        if let g = cachedGauss {
            cachedGauss = nil
            return g
        }
        var x1 = 0.0, x2 = 0.0, r2 = 0.0
        repeat {
            x1 = 2 * mt.nextDouble() - 1
            x2 = 2 * mt.nextDouble() - 1
            r2 = x1 * x1 + x2 * x2
        } while r2 >= 1 || r2 == 0
        let f = (-2 * log(r2) / r2).squareRoot()
        cachedGauss = f * x1
        return f * x2
    }

    /// `np.random.randn(count)` flattened in C order, each as `np.float32(…)` converts it.
    public mutating func randnFloat32(count: Int) -> [Float] {
        (0..<count).map { _ in Float(gauss()) }
    }
}
