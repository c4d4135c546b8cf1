// PyTorch's CPU random stream, so that a seeded run reproduces upstream's fresh-noise mode:
// `torch.manual_seed(s)` then `tensor.normal_()` on float32 tensors of ≥ 16 contiguous elements.
// Ports the algorithms of torch 1.13 (`aten/src/ATen/core/MT19937RNGEngine.h`,
// `core/TransformationHelper.h` uniform_real, `native/cpu/DistributionTemplates.h` normal_fill):
//   1. fill the tensor with uniforms u = (mt19937() & (2²⁴ − 1)) · 2⁻²⁴;
//   2. for each block of 16: for j < 8, r = √(−2·ln(1 − u[j])), θ = 2π·u[j+8],
//      x[j] = r·cos θ, x[j+8] = r·sin θ;
//   3. if the size is not a multiple of 16, redraw the last 16 uniforms and transform them again.
// Upstream's AVX2 build evaluates log/cos/sin with SLEEF (≤ 1 ulp), so values agree to ~1e-6.
// MT19937 itself (Matsumoto and Nishimura 1998, mt19937ar.c) is shared with the evaluation's
// Python and numpy streams, which also seed it by `init_by_array` and draw 53-bit doubles.

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

/// MT19937 seeded as `torch.manual_seed` seeds its CPU generator (`init_genrand` of the seed's
/// low 32 bits).
public struct TorchGenerator: Sendable {
    private var mt: MT19937

    public init(seed: UInt64) { mt = MT19937(seed: UInt32(truncatingIfNeeded: seed)) }

    public mutating func next() -> UInt32 { mt.next() }

    /// A float uniform in [0, 1) as torch's `uniform_real_distribution<float>` draws it.
    public mutating func uniformFloat() -> Float {
        Float(Double(next() & 0xFF_FFFF) / Double(1 << 24))
    }

    /// `count` standard normal floats as `torch.empty(count).normal_()` fills them (count ≥ 16).
    public mutating func normal(count: Int) -> [Float] {
        precondition(count >= 16, "torch's vectorized normal_ needs at least 16 elements")
        var data = (0..<count).map { _ in uniformFloat() }
        func transform16(_ base: Int) {
            for j in 0..<8 {
                let u1 = 1 - data[base + j], u2 = data[base + j + 8]
                let radius = (-2 * Foundation.log(u1)).squareRoot()
                let theta = 2 * Float.pi * u2
                data[base + j] = radius * Foundation.cos(theta)
                data[base + j + 8] = radius * Foundation.sin(theta)
            }
        }
        for base in stride(from: 0, to: count - 15, by: 16) { transform16(base) }
        if count % 16 != 0 {
            let base = count - 16
            for i in 0..<16 { data[base + i] = uniformFloat() }
            transform16(base)
        }
        return data
    }
}
