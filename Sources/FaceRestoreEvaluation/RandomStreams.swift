// The two random streams the degradation pipelines draw from, bit for bit:
//   - CPython's `random` (Modules/_randommodule.c, CPython 3.11): MT19937 seeded from an integer
//     by `init_by_array` of its 32-bit words; `random()` = genrand_res53.
//   - numpy's legacy `RandomState` (numpy 1.24 `random/_mt19937.pyx`, `_legacy_seeding`;
//     `src/legacy/legacy-distributions.c`): an integer seed below 2³² goes through
//     `init_genrand`; `random_sample` is the same 53-bit double; `uniform(a, b)` = a + (b−a)·u;
//     `standard_normal` is the polar method, returning f·x2 and caching f·x1 for the next call
//     (the cache lives until the next seeding).
// Both run on the engine's `MT19937`.

import FaceRestoreEngine
import Foundation

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
